"""Conversations in the window: the sidebar, the store and the chat pane kept in step.

It opens the conversation last shown when the app starts, switches, renames,
deletes (with Undo), searches, exports and imports, and puts the visible
branch of the conversation model into the chat pane with each message's
actions (copy, edit, regenerate, retry, ◀ n/m ▶). Every read from disk goes
through the store's writer thread and comes back through `TaskManager`, so
the GUI thread never waits on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QMenu,
    QWidget,
)

from zeta_desktop.core.chat.api import (
    ChatApi,
    MessageHit,
    SearchHit,
    Source,
    TurnEnded,
    exchange,
)
from zeta_desktop.core.conversation.model import (
    AnswerMeta,
    Conversation,
    ConversationInfo,
    Message,
    MessageStatus,
)
from zeta_desktop.ui.chat.chat_pane import ChatPane
from zeta_desktop.ui.chat.message_view import MessageView
from zeta_desktop.ui.history.sidebar import Sidebar
from zeta_desktop.ui.history.system_prompt_dialog import SystemPromptDialog
from zeta_desktop.ui.style import role_colour
from zeta_desktop.ui.tasks import TaskManager

log = logging.getLogger(__name__)

LAST_OPEN_KEY = "last_conversation"
PURGE_EVERY_MS = 5000
# A message shown as close in meaning to a search needs at least this cosine.
MEANING_MIN = 0.3
STATUS_NOTES = {
    MessageStatus.STOPPED: ("■ stopped", "#b45309"),
    MessageStatus.FAILED: ("✕ failed", "#dc2626"),
    MessageStatus.INTERRUPTED: ("⚠ interrupted: the app ended before this answer did",
                                "#b45309"),
}


def token_count(tokens: int, thinking: int | None) -> str:
    """`312 tokens (204 thinking)`: thinking counts as tokens, shown apart."""
    return f"{tokens} tokens" + (f" ({thinking} thinking)" if thinking else "")


def answer_footer(message: Message) -> tuple[str, str | None]:
    """The small print under a stored answer: why it went where, and how fast."""
    meta: AnswerMeta = message.meta
    parts = []
    if meta.answer_tokens:
        parts.append(token_count(meta.answer_tokens, meta.thinking_tokens))
    if meta.tokens_per_s:
        parts.append(f"{meta.tokens_per_s:.1f} tok/s")
    if meta.ttft_s is not None and meta.answer_tokens:
        parts.append(f"first token {meta.ttft_s * 1000:.0f} ms")
    if meta.model_file:
        parts.append(meta.model_file)
    summary = " · ".join(parts)
    note, colour = STATUS_NOTES.get(message.status, ("", None))
    if meta.error:
        note = f"{note}: {meta.error}" if note else meta.error
    lines = [x for x in (note, meta.reason, summary, sources_line(meta)) if x]
    return "\n".join(lines), colour


def sources_line(meta: AnswerMeta) -> str:
    """`Sources: [1] report.pdf, page 2 · [2] …` (click a number in the answer to read it)."""
    sources = [Source.from_dict(s) for s in meta.sources]
    labels = [f"[{s.number}] {s.label()}" for s in sources if s is not None]
    if labels:
        return "Sources: " + " · ".join(labels)
    return meta.grounding


class HistoryController(QObject):
    sig_shown = Signal(object)
    """A conversation is now the one shown (its Conversation)."""
    sig_regenerate = Signal(str, object)
    """The user asked for another answer: answer id, role or None (the router)."""

    def __init__(
        self,
        api: ChatApi,
        sidebar: Sidebar,
        chat: ChatPane,
        tasks: TaskManager,
        notice: Callable[[str], None],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.api = api
        self.store = api.history
        self.sidebar = sidebar
        self.chat = chat
        self.tasks = tasks
        self._notice = notice
        self._window = parent
        self._shown_id: str | None = None  # the conversation in the chat pane
        # Where the user was in each conversation this session: (message, px into it).
        self._positions: dict[str, tuple[object, int] | None] = {}
        self.system_dialog: SystemPromptDialog | None = None
        self.restored = False  # set once the start-up conversation is shown

        sidebar.sig_new.connect(self.new_chat)
        sidebar.sig_open.connect(self.open)
        sidebar.sig_rename.connect(self.rename)
        sidebar.sig_delete.connect(self.delete)
        sidebar.sig_undo_delete.connect(self.undo_delete)
        sidebar.sig_search.connect(self.search)
        chat.sig_system_prompt.connect(self.edit_system_prompt)
        self._purge_timer = QTimer(self)
        self._purge_timer.setInterval(PURGE_EVERY_MS)
        self._purge_timer.timeout.connect(self._purge)

    @property
    def conversation(self) -> Conversation:
        return self.api.conversation

    # -- start ---------------------------------------------------------------------

    def restore(self) -> None:
        """Reopen where the user left off: answers cut short by a crash are marked first."""
        if self.store is None:
            self._show(self.conversation)
            self.restored = True
            return
        self.tasks.when_done(self.store.opened, self._on_store_open)
        self.store.mark_interrupted()
        self.store.purge_deleted()
        self._purge_timer.start()
        self.tasks.when_done(self.store.get_state(LAST_OPEN_KEY), self._on_last_open)

    def stop(self) -> None:
        """The window is closing: no more purges of the (closing) store."""
        self._purge_timer.stop()

    def _on_store_open(self, problems: list[str]) -> None:
        for problem in problems:
            self._notice(problem)
        if self.store is not None and not self.store.persistent:
            self.sidebar.show_status("History is not being saved (see the chat).")

    def _on_last_open(self, conversation_id: str | None) -> None:
        def shown(infos: list[ConversationInfo]) -> None:
            self.sidebar.set_conversations(infos)
            ids = {i.id for i in infos}
            target = conversation_id if conversation_id in ids else (
                infos[0].id if infos else None)
            if target is None:
                self._show(self.conversation)
                self.restored = True
            else:
                self.open(target, "", then=lambda: setattr(self, "restored", True))

        self.tasks.when_done(self.store.list_conversations(), shown)  # type: ignore[union-attr]

    # -- switching -------------------------------------------------------------------

    @Slot()
    def new_chat(self) -> None:
        self.sidebar.clear_search()
        self._show(self.api.new_conversation())
        self.chat.input.setFocus()

    @Slot(str, str)
    def open(self, conversation_id: str, message_id: str = "",
             then: Callable[[], None] | None = None) -> None:
        """Show a conversation (read in the background), jumping to `message_id` if given."""
        live = self.api.conversation_by_id(conversation_id)
        if live is not None or self.store is None:
            if live is not None:
                self._show(self.api.show(live), message_id)
            if then:
                then()
            return

        def loaded(conversation: Conversation) -> None:
            self._show(self.api.show(conversation), message_id)
            if then:
                then()

        def failed(exc: BaseException) -> None:
            self._notice(f"Could not open that conversation: {exc}")
            if then:
                then()

        self.tasks.when_done(self.store.load_conversation(conversation_id), loaded, failed)

    def _show(self, conversation: Conversation, jump_to: str = "") -> None:
        if self._shown_id is not None:
            self._positions[self._shown_id] = self.chat.messages.position()
        self.chat.clear()
        self._shown_id = conversation.id
        for message in conversation.visible():
            self.chat.add_message(message.id, self._view_maker(conversation, message),
                                  message.content)
            if message.is_answer and message.status.unfinished and self.api.has_turn(message.id):
                self.chat.mark_streaming(message.id)
        self.sidebar.set_current(conversation.id)
        self.sidebar.set_busy(self.api.busy_conversations())
        self.sig_shown.emit(conversation)
        if self.store is not None and len(conversation):
            self.store.set_state(LAST_OPEN_KEY, conversation.id)
        if jump_to and conversation.get(jump_to) is not None:
            self.chat.scroll_to(jump_to)
        else:
            self.chat.messages.restore(self._positions.get(conversation.id))

    def refresh(self) -> None:
        """Rebuild the branch shown (after a branch change or a new version)."""
        self._show(self.conversation)

    def _view_maker(self, conversation: Conversation,
                    message: Message) -> Callable[[], MessageView]:
        return lambda: self._make_view(conversation, message)

    def add_message_view(self, conversation: Conversation, message: Message) -> MessageView:
        """A message just added to the conversation shown: its widget, built now."""
        self.chat.add_message(message.id, lambda: self._make_view(conversation, message),
                              message.content)
        self.chat.messages.scroll_to_bottom()
        view = self.chat.messages.build(message.id)
        assert view is not None
        return view

    def _make_view(self, conversation: Conversation, message: Message) -> MessageView:
        """A message's widget, as it is now (built when it comes into view)."""
        if not message.is_answer:
            view = self.chat.make_user_view(message.content, key=message.id)
        else:
            view = self.chat.make_answer_view(message.id)
            meta = message.meta
            view.answer.thinking_seconds = meta.thinking_s
            view.answer.citations = len(meta.sources)
            view.set_text_so_far(message.content)
            if meta.role:
                colour = role_colour(meta.role)
                view.header.setText(meta.role)
                view.header.setToolTip(meta.reason)
                view.set_colour(colour)
                view.set_badge(f"{meta.role} · {meta.kind}" if meta.kind else meta.role, colour)
            if message.status.unfinished and self.api.has_turn(message.id):
                view.start_streaming()
                view.show_text()
                view.set_footer(meta.reason or "routing…")
            else:
                view.finish_streaming()
                text, footer_colour = answer_footer(message)
                if text:
                    view.set_footer(text, footer_colour)
        self.set_actions(conversation, message, view)
        return view

    def set_actions(self, conversation: Conversation, message: Message,
                    view: MessageView) -> None:
        actions: list[tuple[str, str, object]] = [
            ("Copy", "Copy this message's text", lambda: self.copy(message.id)),
        ]
        if message.is_answer:
            if message.status in (MessageStatus.INTERRUPTED, MessageStatus.FAILED):
                actions.append(("Retry", "Answer this prompt again",
                                lambda: self.regenerate(message.id)))
            menu = QMenu(view)
            menu.addAction("Through the router", lambda: self.regenerate(message.id))
            for role in self.api.chat_roles():
                menu.addAction(f"On {role}", self._regenerate_on(message.id, role))
            actions.append(("Regenerate", "Another answer to the same prompt", menu))
        else:
            actions.append(("Edit", "Edit this prompt and send it again (the old one stays)",
                            lambda: self.chat.begin_edit(message.id, message.content)))
        view.set_actions(actions)
        siblings = conversation.siblings(message.id)
        if len(siblings) > 1:
            index = siblings.index(message.id)
            view.set_pager(
                index + 1, len(siblings),
                lambda: self.select(siblings[index - 1]),
                lambda: self.select(siblings[min(index + 1, len(siblings) - 1)]),
            )

    # -- message actions --------------------------------------------------------------

    def copy(self, message_id: str) -> None:
        message = self.conversation.get(message_id)
        if message is not None:
            QGuiApplication.clipboard().setText(message.content)

    def select(self, message_id: str) -> None:
        """Show another version (◀ ▶) of a message and the branch below it."""
        self.api.select_branch(message_id)
        self.refresh()

    def _regenerate_on(self, answer_id: str, role: str) -> Callable[[], None]:
        return lambda: self.regenerate(answer_id, role)

    def regenerate(self, answer_id: str, role: str | None = None) -> None:
        self.sig_regenerate.emit(answer_id, role)

    # -- sidebar actions ----------------------------------------------------------------

    @Slot(str, str)
    def rename(self, conversation_id: str, title: str) -> None:
        live = self.api.conversation_by_id(conversation_id)
        if live is not None:
            live.info.title = title
        if self.store is not None:
            self.store.rename(conversation_id, title)

    @Slot(str)
    def delete(self, conversation_id: str) -> None:
        if self.store is not None:
            self.store.delete_conversation(conversation_id)
        if conversation_id == self.conversation.id:
            self.api.stop_conversation(conversation_id)
            self._show(self.api.new_conversation())

    @Slot(str)
    def undo_delete(self, conversation_id: str) -> None:
        if self.store is None:
            return
        self.store.undelete_conversation(conversation_id)
        self.tasks.when_done(self.store.list_conversations(), self.sidebar.set_conversations)

    @Slot()
    def _purge(self) -> None:
        if self.store is not None:
            self.store.purge_deleted()

    @Slot(str)
    def search(self, text: str) -> None:
        if self.store is None:
            return
        if not text:  # the search was cleared: the whole list again
            self.tasks.when_done(self.store.list_conversations(), self.sidebar.set_conversations)
            return

        def show(hits: list[SearchHit]) -> None:
            self.sidebar.show_hits(text, hits)
            library = self.api.documents
            if library is None:
                return

            def by_meaning(found: list[MessageHit]) -> None:
                # After the words' hits, the messages close in meaning (≈).
                listed = {h.message_id for h in hits}
                extra = [SearchHit(h.conversation_id, h.conversation_title, h.message_id,
                                   f"≈ {h.snippet}")
                         for h in found if h.message_id not in listed and h.score >= MEANING_MIN]
                if extra:
                    self.sidebar.show_hits(text, hits + extra)

            self.tasks.run_in_background(lambda: library.search_messages(text, 10), by_meaning,
                                         lambda exc: log.info("search by meaning: %s", exc))

        self.tasks.when_done(self.store.search(text), show)

    @Slot(object)
    def on_turn_ended(self, event: TurnEnded) -> None:
        """An API client's request kept in the history is listed once it ends;
        the chat shown stays as it is."""
        if (self.store is None or not event.conversation_id
                or event.conversation_id == self.conversation.id
                or not self.api.client_of(event.turn_id)):
            return
        self.tasks.when_done(self.store.list_conversations(), self.sidebar.set_conversations)

    def conversation_changed(self) -> None:
        """A prompt was sent: the conversation moves to the top of the list."""
        self.sidebar.upsert(self.conversation.info)

    # -- system prompt -------------------------------------------------------------------

    @Slot()
    def edit_system_prompt(self) -> None:
        conversation = self.conversation
        dialog = SystemPromptDialog(conversation.info.system_prompt, self._window)
        dialog.sig_saved.connect(lambda text: self.api.set_system_prompt(text, conversation))
        if self.store is not None:
            dialog.sig_preset_saved.connect(self.store.save_preset)
            self.tasks.when_done(self.store.presets(), dialog.add_presets)
        dialog.show()
        self.system_dialog = dialog

    # -- export and import ---------------------------------------------------------------

    def export_to(self, path: Path, as_json: bool) -> None:
        conversation = self.conversation
        body = exchange.dumps(conversation) if as_json else exchange.to_markdown(conversation)

        def write() -> None:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(body, encoding="utf-8")
            tmp.replace(path)

        self.tasks.run_in_background(
            write,
            lambda _r: self._notice_ok(f"Exported “{conversation.info.title}” to {path}"),
            lambda exc: self._notice(f"Could not export to {path}: {exc}"),
        )

    def _notice_ok(self, text: str) -> None:
        self.chat.add_notice(text, "#15803d")

    def import_from(self, path: Path) -> None:
        """Read and check the file in the background; nothing changes if it is malformed."""

        def read() -> Conversation:
            return exchange.from_json_text(path.read_text(encoding="utf-8"))

        def imported(conversation: Conversation) -> None:
            if self.store is not None:
                self.store.import_conversation(conversation)
            self.sidebar.upsert(conversation.info)
            self._show(self.api.show(conversation))

        def failed(exc: BaseException) -> None:
            self._notice(f"Could not import {path}: {exc}. Nothing was changed.")

        self.tasks.run_in_background(read, imported, failed)

    def ask_export(self, as_json: bool) -> None:
        suffix, kind = (".json", "JSON (*.json)") if as_json else (".md", "Markdown (*.md)")
        name = "".join(c if c.isalnum() or c in " -_" else "_" for c in
                       self.conversation.info.title).strip() or "chat"
        path, _ = QFileDialog.getSaveFileName(
            self._window, "Export conversation", str(Path.home() / f"{name}{suffix}"), kind)
        if path:
            self.export_to(Path(path), as_json)

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Import a conversation", str(Path.home()), "JSON (*.json)")
        if path:
            self.import_from(Path(path))
