"""The conversation list: new chat, search, rename, delete with Undo, busy marks."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import UNDO_S, SearchHit
from zeta_desktop.core.conversation.model import ConversationInfo

ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_DELAY_MS = 200
BUSY_MARK = "● "


class Sidebar(QWidget):
    sig_new = Signal()
    """The user asked for a new conversation."""
    sig_open = Signal(str, str)
    """Open a conversation: id, and a message id to jump to ('' for none)."""
    sig_rename = Signal(str, str)
    """Rename a conversation: id, new title."""
    sig_delete = Signal(str)
    """Delete a conversation (it can be undone for a while): id."""
    sig_undo_delete = Signal(str)
    """Undo a deletion: id."""
    sig_search = Signal(str)
    """Search titles and messages: the text ('' clears the search)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._infos: dict[str, ConversationInfo] = {}
        self._busy: set[str] = set()
        self._current = ""
        self._deleted: list[tuple[str, str]] = []  # (id, title) that Undo brings back

        self.new_button = QPushButton("New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.sig_new)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search chats and messages")
        self.search_box.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.sig_search.emit(self.search_text()))
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())

        self.list = QListWidget()
        # Long titles end in "…" (the tooltip has them whole), never a sideways scroll.
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemActivated.connect(self._on_item_activated)
        self.list.itemClicked.connect(self._on_item_activated)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._on_context_menu)
        delete = QAction("Delete", self.list)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.delete_selected)
        self.list.addAction(delete)

        self.undo_label = QLabel()
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_delete)
        self.undo_bar = QWidget()
        undo_row = QHBoxLayout(self.undo_bar)
        undo_row.setContentsMargins(0, 0, 0, 0)
        undo_row.addWidget(self.undo_label, 1)
        undo_row.addWidget(self.undo_button)
        self.undo_bar.hide()
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(int(UNDO_S * 1000))
        self._undo_timer.timeout.connect(self._on_undo_expired)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search_box)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.undo_bar)
        layout.addWidget(self.status_label)

    # -- what the window calls ------------------------------------------------

    def search_text(self) -> str:
        return self.search_box.text().strip()

    def set_conversations(self, infos: list[ConversationInfo]) -> None:
        """The list, newest first (ignored while a search shows its hits)."""
        self._infos = {info.id: info for info in infos}
        if not self.search_text():
            self._rebuild()

    def upsert(self, info: ConversationInfo) -> None:
        """A conversation new or changed (a title, a new message): to the top."""
        self._infos.pop(info.id, None)
        self._infos = {info.id: info, **self._infos}
        if not self.search_text():
            self._rebuild()

    def set_current(self, conversation_id: str) -> None:
        self._current = conversation_id
        if not self.search_text():
            self._rebuild()

    def set_busy(self, busy: set[str]) -> None:
        if busy != self._busy:
            self._busy = set(busy)
            if not self.search_text():
                self._rebuild()

    def show_hits(self, text: str, hits: list[SearchHit]) -> None:
        if text != self.search_text():
            return  # an older search answering late
        self.list.blockSignals(True)
        self.list.clear()
        for hit in hits:
            label = hit.conversation_title if hit.message_id is None else (
                f"{hit.conversation_title}\n    {hit.snippet}"
            )
            item = QListWidgetItem(label)
            item.setData(ID_ROLE, hit.conversation_id)
            item.setData(MESSAGE_ROLE, hit.message_id or "")
            item.setToolTip(hit.snippet)
            self.list.addItem(item)
        if not hits:
            item = QListWidgetItem("No chat or message matches")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def clear_search(self) -> None:
        self.search_box.clear()
        self._rebuild()

    def show_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def item_for(self, conversation_id: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ID_ROLE) == conversation_id:
                return item
        return None

    # -- internals -------------------------------------------------------------

    def _rebuild(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for info in self._infos.values():
            busy = info.id in self._busy
            item = QListWidgetItem((BUSY_MARK if busy else "") + info.title)
            item.setData(ID_ROLE, info.id)
            item.setData(MESSAGE_ROLE, "")
            item.setToolTip("An answer is still streaming" if busy else info.title)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
            if info.id == self._current:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    @Slot(QListWidgetItem)
    def _on_item_activated(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(ID_ROLE)
        if conversation_id:
            self.sig_open.emit(conversation_id, item.data(MESSAGE_ROLE) or "")

    @Slot(QListWidgetItem)
    def _on_item_changed(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(ID_ROLE)
        title = item.text().removeprefix(BUSY_MARK).strip()
        info = self._infos.get(conversation_id)
        if info is None or not title or title == info.title:
            return
        info.title = title
        self.sig_rename.emit(conversation_id, title)

    def rename(self, conversation_id: str) -> None:
        """Start editing a conversation's title in place."""
        item = self.item_for(conversation_id)
        if item is not None:
            self.list.editItem(item)

    @Slot()
    def delete_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None and item.data(ID_ROLE):
            self.delete(item.data(ID_ROLE))

    def delete(self, conversation_id: str) -> None:
        info = self._infos.pop(conversation_id, None)
        title = info.title if info else "chat"
        self._deleted.append((conversation_id, title))
        self.undo_label.setText(f"Deleted “{title}”")
        self.undo_bar.show()
        self._undo_timer.start()
        self._rebuild()
        self.sig_delete.emit(conversation_id)

    @Slot()
    def undo_delete(self) -> None:
        if not self._deleted:
            return
        conversation_id, _title = self._deleted.pop()
        self.sig_undo_delete.emit(conversation_id)
        if not self._deleted:
            self.undo_bar.hide()
            self._undo_timer.stop()

    @Slot()
    def _on_undo_expired(self) -> None:
        self._deleted.clear()
        self.undo_bar.hide()

    def _on_context_menu(self, pos) -> None:  # type: ignore[no-untyped-def]
        item = self.list.itemAt(pos)
        if item is None or not item.data(ID_ROLE):
            return
        conversation_id = item.data(ID_ROLE)
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.rename(conversation_id))
        menu.addAction("Delete", lambda: self.delete(conversation_id))
        menu.popup(self.list.viewport().mapToGlobal(pos))
