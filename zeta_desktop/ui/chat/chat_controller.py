"""Sending, editing and regenerating, and the session's events shown as they come.

The one subscriber to the session in the window: every event arrives here,
on the GUI thread (through `EventBridge`), and one `match` says what each
means for the chat pane, the sidebar, the role cards and the alerts. A new
kind of event is a class in core/chat/events.py and a case here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QVBoxLayout, QWidget

from zeta_desktop.core.chat.api import (
    Alert,
    AnswerText,
    ChatApi,
    DocumentsSearched,
    RoleStateChanged,
    SentTurn,
    SessionEvent,
    TurnEnded,
    TurnEvent,
    TurnRetried,
    TurnRouted,
    TurnStarted,
)
from zeta_desktop.ui.chat.chat_pane import ChatPane
from zeta_desktop.ui.history.history_controller import HistoryController, sources_line
from zeta_desktop.ui.history.sidebar import Sidebar

log = logging.getLogger(__name__)


class ChatController(QObject):
    sig_turn_ended = Signal(object)
    """A turn's TurnEnded, once the chat shows how it ended."""

    def __init__(
        self,
        api: ChatApi,
        chat: ChatPane,
        sidebar: Sidebar,
        history: HistoryController,
        on_role_state: Callable[[RoleStateChanged], None],
        on_alert: Callable[[str], None],
        log_line: Callable[[str], None],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.api = api
        self.chat = chat
        self.sidebar = sidebar
        self.history = history
        self._on_role_state = on_role_state
        self._on_alert = on_alert
        self._log_line = log_line
        self._parent = parent
        self.decision_dialog: QDialog | None = None  # the last one opened (tests look at it)
        chat.sig_send.connect(self.send)
        chat.sig_send_edit.connect(self.edit)
        chat.sig_stop.connect(self.stop)
        chat.sig_show_decision.connect(self.show_decision)
        history.sig_regenerate.connect(self.regenerate)

    # -- what the user does -------------------------------------------------------------

    @Slot(str)
    def send(self, prompt: str) -> SentTurn:
        conversation = self.api.conversation
        sent = self.api.send(prompt, role=self.chat.target_role())
        self.history.add_message_view(conversation, sent.question)
        view = self.chat.add_pending_answer(sent.answer.id)
        self.history.set_actions(conversation, sent.answer, view)
        self.history.conversation_changed()
        self.sidebar.set_busy(self.api.busy_conversations())
        return sent

    @Slot(str, str)
    def edit(self, message_id: str, text: str) -> SentTurn:
        sent = self.api.edit(message_id, text, self.chat.target_role())
        self._shown_again()
        return sent

    @Slot(str, object)
    def regenerate(self, answer_id: str, role: str | None = None) -> SentTurn:
        sent = self.api.regenerate(answer_id, role)
        self._shown_again()
        return sent

    def _shown_again(self) -> None:
        """A new branch: the chat shows it, the sidebar moves the conversation up."""
        self.history.refresh()
        self.sidebar.upsert(self.api.conversation.info)
        self.sidebar.set_busy(self.api.busy_conversations())

    @Slot()
    def stop(self) -> None:
        self.api.stop()

    @Slot(object)
    def show_decision(self, key: object) -> None:
        """A small window with the full routing decision of one answer (old ones too)."""
        if isinstance(key, int):  # a turn id
            key = self.api.turn(key).answer_id
        dialog = QDialog(self._parent)
        dialog.setWindowTitle("Routing decision")
        view = QPlainTextEdit(self.api.decision_text(str(key)))
        view.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        layout.addWidget(view)
        layout.addWidget(buttons)
        dialog.resize(640, 320)
        dialog.show()
        self.decision_dialog = dialog

    # -- what the session says ----------------------------------------------------------

    @Slot(object)
    def on_event(self, event: SessionEvent) -> None:
        match event:
            case RoleStateChanged():
                self._on_role_state(event)
            case Alert():
                self._on_alert(event.text)
            case TurnRetried():
                self._log_line(f"failover: turn {event.turn_id} failed on {event.failed_role} "
                               f"({event.message}); retrying")
                if self._shown(event):
                    self.chat.show_retried(event.answer_id, event.failed_role, event.message)
            case TurnEnded():
                self._ended(event)
            case DocumentsSearched():
                found = f"found {event.passages} passage(s) in the documents"
                self._log_line(f"turn {event.turn_id}: {event.note or found}")
                if self._shown(event):
                    self.chat.show_routing_note(event.answer_id, f"{event.note or found}; routing…")
            case _ if not self._shown(event):
                pass  # its conversation is not the one shown: the history has it
            case TurnRouted():
                self.chat.show_routed(event.answer_id, event.decision)
            case TurnStarted():
                self.chat.show_started(event.answer_id, event.role, event.reason)
            case AnswerText():
                # The answer so far: right also for pieces queued before this
                # conversation was shown again.
                self.chat.show_text_so_far(event.answer_id, event.so_far)

    def _shown(self, event: SessionEvent) -> bool:
        return isinstance(event, TurnEvent) and event.conversation_id == self.api.conversation.id

    def _ended(self, event: TurnEnded) -> None:
        log.info("turn %d ended (stopped=%s, error=%r): %s", event.turn_id, event.stopped,
                 event.error, event.stats)
        self.sidebar.set_busy(self.api.busy_conversations())
        if self._shown(event):
            key = event.answer_id
            self._sync_text(key)
            if event.failed:
                self.chat.show_failed(key, event.error)
            else:
                self.chat.show_finished(key, event.stopped, event.stats)
            self._refresh_actions(key)
            if event.failed:
                # Nothing typed is lost: a prompt that got no answer goes back in the box.
                if not event.answer and not self.chat.input.toPlainText().strip():
                    self.chat.input.setPlainText(event.prompt)
            else:
                self._show_sources(key)
        self.sig_turn_ended.emit(event)

    def _show_sources(self, key: str) -> None:
        message = self.api.conversation.get(key)
        view = self.chat.answer_view(key)
        line = sources_line(message.meta) if message is not None else ""
        if view is not None and line:
            view.set_footer(f"{view.footer.text()}\n{line}")

    def _sync_text(self, key: str) -> None:
        message = self.api.conversation.get(key)
        view = self.chat.answer_view(key)
        if message is not None and view is not None:
            view.set_text_so_far(message.content)
            if message.meta.sources:  # asked against documents: [n] open the passages
                view.set_citations(len(message.meta.sources))

    def _refresh_actions(self, key: str) -> None:
        conversation = self.api.conversation
        message = conversation.get(key)
        view = self.chat.answer_view(key)
        if message is not None and view is not None:
            self.history.set_actions(conversation, message, view)
