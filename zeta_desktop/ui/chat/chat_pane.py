"""The conversation: a scrolling list of messages, an input box, Send and Stop."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import ChatStats, Decision
from zeta_desktop.ui.chat.message_list import MessageList
from zeta_desktop.ui.chat.message_view import MessageView
from zeta_desktop.ui.paint_turns import PaintTurns
from zeta_desktop.ui.style import role_colour


class PromptEdit(QPlainTextEdit):
    """Enter sends; Shift+Enter starts a new line."""

    sig_submit = Signal()
    """The user pressed Enter to send the prompt."""

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.sig_submit.emit()
            return
        super().keyPressEvent(event)


# Tokens reach the labels at most this often. Three models stream well over
# 100 tokens/s together; relaying out a growing label for each one would keep
# the event loop busy, and the eye cannot follow faster than this anyway.
TEXT_REFRESH_MS = 40


class ChatPane(QWidget):
    sig_send = Signal(str)
    """The user sent a prompt."""
    sig_stop = Signal()
    """The user asked to stop every answer in progress."""
    sig_show_decision = Signal(object)
    """The user clicked an answer's badge: the answer's key (message id)."""
    sig_internal_link = Signal(object, str)
    """A citation or a past message's link in an answer: (the answer's key, the link)."""
    sig_send_edit = Signal(str, str)
    """The user sent an edited prompt: the original prompt's id, the new text."""
    sig_system_prompt = Signal()
    """The user asked to see or change the conversation's system prompt."""

    def __init__(
        self, paint_turns: PaintTurns | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._paint_turns = paint_turns
        self._answers: dict[object, MessageView] = {}  # answers with widgets now
        self._notices: list[str] = []
        self._active: set[object] = set()
        self._unshown: set[object] = set()  # answers with tokens the label lacks
        self._text_timer = QTimer(self)
        self._text_timer.setSingleShot(True)
        self._text_timer.setInterval(TEXT_REFRESH_MS)
        self._text_timer.timeout.connect(self._show_new_text)
        self._editing: str | None = None  # the prompt being edited, by id
        self.scroll = QScrollArea()
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.messages = MessageList(self.scroll)
        self.messages.sig_built.connect(self._on_view_built)
        self.messages.sig_released.connect(self._on_view_released)
        # Reading higher up while answers stream: nothing moves, and this
        # button brings the newest message back. Under the chat, not over it:
        # a widget over the chat keeps Qt from scrolling it by moving pixels.
        self.jump_button = QToolButton()
        self.jump_button.setText("↓ Jump to latest")
        self.jump_button.setToolTip("Scroll to the newest message and follow it")
        self.jump_button.setAutoRaise(True)
        self.jump_button.clicked.connect(self.messages.scroll_to_bottom)
        self.jump_button.hide()
        self.messages.sig_at_bottom.connect(self._on_at_bottom)

        self.input = PromptEdit()
        self.input.setPlaceholderText("Ask anything. Enter sends, Shift+Enter for a new line.")
        self.input.setFixedHeight(80)
        self.input.sig_submit.connect(self._on_send_clicked)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.target_box = QComboBox()
        self.target_box.addItem("Auto (router)", None)
        for role in ("coder", "embedder", "reasoner"):
            self.target_box.addItem(role, role)
        self.target_box.setToolTip(
            "Auto lets the router choose; a role sends the next prompt there"
        )
        self.system_button = QPushButton("System prompt…")
        self.system_button.setToolTip("This conversation's system prompt and saved presets")
        self.system_button.clicked.connect(self.sig_system_prompt)
        self.edit_bar = QWidget()
        edit_row = QHBoxLayout(self.edit_bar)
        edit_row.setContentsMargins(0, 0, 0, 0)
        self.edit_label = QLabel("Editing a prompt: Send keeps the old one as a branch")
        cancel_edit = QPushButton("Cancel edit")
        cancel_edit.clicked.connect(self.cancel_edit)
        edit_row.addWidget(self.edit_label, 1)
        edit_row.addWidget(cancel_edit)
        self.edit_bar.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.sig_stop)

        buttons = QVBoxLayout()
        buttons.addWidget(self.target_box)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.system_button)
        buttons.addStretch(1)
        input_row = QHBoxLayout()
        input_row.addWidget(self.input, 1)
        input_row.addLayout(buttons)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.jump_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.edit_bar)
        self._input_row_index = layout.count()
        layout.addLayout(input_row)

    # -- what the window calls ----------------------------------------------

    def add_bar_above_input(self, bar: QWidget) -> None:
        """A row over the prompt box (the conversation's document collections)."""
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(self._input_row_index, bar)
        self._input_row_index += 1

    def answer_view(self, key: object) -> MessageView | None:
        """An answer's widget, if it has one now (in or near the view, or streaming)."""
        return self._answers.get(key)

    def message_views(self) -> list[MessageView]:
        """The messages with widgets now, in order."""
        return self.messages.views()

    def make_user_view(self, text: str, key: object = None) -> MessageView:
        view = MessageView("You", text, "#6b7280")
        view.key = key
        return view

    def make_answer_view(self, key: object, text: str = "") -> MessageView:
        view = MessageView("…", text, "#9ca3af", markdown=True)
        view.key = key
        view.sig_badge_clicked.connect(lambda: self.sig_show_decision.emit(key))
        view.sig_internal_link.connect(lambda url: self.sig_internal_link.emit(key, url))
        return view

    def add_message(self, key: object, build: Callable[[], MessageView], text: str) -> None:
        """A message whose widget is built when it comes into view."""
        self.messages.add(key, build, text)

    def add_user_message(self, text: str, key: object = None) -> MessageView:
        key = key if key is not None else object()
        self.messages.add(key, lambda: self.make_user_view(text, key), text)
        self.messages.scroll_to_bottom()
        view = self.messages.build(key)
        assert view is not None
        return view

    def add_pending_answer(self, key: object) -> MessageView:
        view = self.add_answer(key)
        self.messages.build(key, keep=True)
        view.set_footer("routing…")
        view.start_streaming()
        self._active.add(key)
        self.stop_button.setEnabled(True)
        return view

    def add_answer(self, key: object, text: str = "") -> MessageView:
        """An answer's view (finished, or about to stream), known by `key`, built now."""
        self.messages.add(key, lambda: self.make_answer_view(key, text), text)
        self.messages.scroll_to_bottom()
        view = self.messages.build(key)
        assert view is not None
        return view

    def clear(self) -> None:
        """Remove every message (another conversation is about to show)."""
        self.messages.clear()
        self._answers.clear()
        self._active.clear()
        self._unshown.clear()
        self.stop_button.setEnabled(False)
        self.cancel_edit()

    @Slot(object, object)
    def _on_view_built(self, key: object, view: MessageView) -> None:
        if view.key is None:
            view.key = key
        if view.is_answer:
            self._answers[key] = view

    @Slot(object)
    def _on_view_released(self, key: object) -> None:
        self._answers.pop(key, None)
        self._unshown.discard(key)

    @Slot(bool)
    def _on_at_bottom(self, at_bottom: bool) -> None:
        self.jump_button.setVisible(not at_bottom)

    def show_text_so_far(self, key: object, text: str) -> None:
        """All of an answer so far (from the conversation model), drawn with the next batch."""
        view = self._answers.get(key)
        if view is not None:
            view.set_text_so_far(text)
            self._unshown.add(key)
            if not self._text_timer.isActive():
                self._text_timer.start(TEXT_REFRESH_MS)

    def mark_streaming(self, key: object) -> None:
        view = self.messages.build(key, keep=True)
        if view is not None:
            view.start_streaming()
            self._active.add(key)
            self.stop_button.setEnabled(True)

    def begin_edit(self, message_id: str, text: str) -> None:
        """Put a prompt back in the box; Send then makes a new branch from it."""
        self._editing = message_id
        self.input.setPlainText(text)
        self.edit_bar.show()
        self.input.setFocus()

    @Slot()
    def cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.edit_bar.hide()

    @property
    def editing(self) -> str | None:
        return self._editing

    def notice_texts(self) -> list[str]:
        """The notices shown in this chat so far (newest last)."""
        return list(self._notices)

    def add_notice(self, text: str, colour: str = "#dc2626") -> None:
        self._notices.append(text)
        key = object()
        self.messages.add(key, lambda: MessageView("Zeta", text, colour), text)
        self.messages.scroll_to_bottom()
        self.messages.build(key)

    def _show_role(self, view: MessageView, role: str, reason: str) -> None:
        colour = role_colour(role)
        view.header.setText(role)
        view.header.setToolTip(reason)
        view.set_colour(colour)
        view.set_footer(reason)

    def show_routing_note(self, key: object, note: str) -> None:
        """What happens before the answer is routed (its documents searched)."""
        view = self._answers.get(key)
        if view is not None:
            view.set_footer(note, "#4b5563")

    def show_routed(self, key: object, decision: Decision) -> None:
        view = self._answers.get(key)
        if view is not None:
            self._show_role(view, decision.role, decision.reason)
            label = f"{decision.role} · {decision.kind.value}"
            if decision.policy == "override":
                label += " · override"
            elif decision.spilled:
                label += " · spilled"
            view.set_badge(label, role_colour(decision.role))

    def show_retried(self, key: object, failed_role: str, message: str) -> None:
        view = self._answers.get(key)
        if view is not None:
            view.clear_text()
            view.retry_note = f"↻ {failed_role} failed ({message}); retried"
            view.set_footer(view.retry_note, "#b45309")

    def show_started(self, key: object, role: str, reason: str) -> None:
        view = self._answers.get(key)
        if view is not None:
            self._show_role(view, role, reason)

    def append_text(self, key: object, text: str) -> None:
        view = self._answers.get(key)
        if view is not None:
            view.append(text)
            self._unshown.add(key)
            if not self._text_timer.isActive():
                self._text_timer.start(TEXT_REFRESH_MS)

    @Slot()
    def _show_new_text(self) -> None:
        # A plot just redrawn: paint after it, not with it.
        if self._paint_turns and not self._paint_turns.take_or_defer("chat", self._text_timer):
            return
        for key in self._unshown:
            view = self._answers.get(key)
            if view is not None:
                view.show_text()
        self._unshown.clear()

    def show_finished(self, key: object, stopped: bool, stats: ChatStats | None) -> None:
        view = self._answers.get(key)
        if view is not None and stats is not None:
            thinking = f" ({stats.thinking_tokens} thinking)" if stats.thinking_tokens else ""
            summary = (
                f"{stats.n_tokens} tokens{thinking} · {stats.tokens_per_s:.1f} tok/s · "
                f"first token {stats.ttft_s * 1000:.0f} ms"
            )
            if view.retry_note:
                summary = f"{view.retry_note} · {summary}"
            if stopped:
                view.set_footer(f"■ stopped · {summary}", "#b45309")
            else:
                view.set_footer(f"{view.header.toolTip()}\n{summary}")
        self._finish(key)

    def show_failed(self, key: object, message: str) -> None:
        view = self._answers.get(key)
        if view is not None:
            view.set_footer(f"✕ {message}", "#dc2626")
        self._finish(key)

    def _finish(self, key: object) -> None:
        view = self._answers.get(key)
        if view is not None:
            view.finish_streaming()
        self.messages.let_go_when_out_of_view(key)
        self._unshown.discard(key)
        self._active.discard(key)
        self.stop_button.setEnabled(bool(self._active))

    # -- internals ------------------------------------------------------------

    def scroll_to(self, key: object) -> None:
        """Bring a message into view (a search hit)."""
        self.messages.scroll_to(key)

    def target_role(self) -> str | None:
        """The role chosen for the next prompt, or None for the router."""
        return self.target_box.currentData()

    def set_chat_roles(self, roles: list[str]) -> None:
        """The roles a prompt may be sent to (an embedding-only model is not one)."""
        chosen = self.target_box.currentData()
        self.target_box.clear()
        self.target_box.addItem("Auto (router)", None)
        for role in roles:
            self.target_box.addItem(role, role)
        self.target_box.setCurrentIndex(max(0, self.target_box.findData(chosen)))

    @Slot()
    def _on_send_clicked(self) -> None:
        text = self.input.toPlainText().strip()
        if not text:
            return
        self.input.clear()
        if self._editing is not None:
            original, self._editing = self._editing, None
            self.edit_bar.hide()
            self.sig_send_edit.emit(original, text)
            return
        self.sig_send.emit(text)
