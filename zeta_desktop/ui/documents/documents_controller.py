"""Documents in the window: the chips over the prompt box, the documents
window, indexing progress, and the app's own links in answers (a citation
opens its passage; a past message, from `/similar`, opens its conversation)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, QUrl, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from zeta_desktop.core.chat.api import ChatApi, CollectionInfo, Source
from zeta_desktop.core.conversation.model import Conversation
from zeta_desktop.ui.chat.chat_pane import ChatPane
from zeta_desktop.ui.documents.document_chips import DocumentChips
from zeta_desktop.ui.documents.documents_window import DocumentsWindow, eta_text
from zeta_desktop.ui.documents.passage_dialog import PassageDialog, no_source_text
from zeta_desktop.ui.history.history_controller import HistoryController
from zeta_desktop.ui.tasks import TaskManager

PROGRESS_MS = 1000


class DocumentsController(QObject):
    def __init__(self, api: ChatApi, chat: ChatPane, history: HistoryController,
                 tasks: TaskManager, parent: QWidget) -> None:
        super().__init__(parent)
        self.api = api
        self.history = history
        self.tasks = tasks
        self._parent = parent
        self.chips = DocumentChips()
        chat.add_bar_above_input(self.chips)
        chat.sig_internal_link.connect(self.open_link)
        self.window: DocumentsWindow | None = None
        self.passage: PassageDialog | None = None  # the last one opened (tests look at it)
        self._timer: QTimer | None = None  # indexing progress, with a library only
        library = api.documents
        if library is None:  # no history file: nothing to keep an index in
            self.chips.add_button.setEnabled(False)
            self.chips.add_button.setToolTip("Documents need the history database, "
                                             "which could not be opened")
            return
        self.window = DocumentsWindow(library, tasks, parent)
        self.window.sig_collections.connect(self.chips.set_collections)
        self.chips.sig_manage.connect(self.show_window)
        self.chips.sig_changed.connect(self._attach)
        history.sig_shown.connect(self._conversation_shown)
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_MS)
        self._timer.timeout.connect(self._show_progress)
        self._timer.start()
        self.reload()

    def stop(self) -> None:
        """The window is closing: no more progress reads."""
        if self._timer is not None:
            self._timer.stop()

    def reload(self) -> None:
        if self.api.documents is not None:
            self.tasks.when_done(self.api.documents.collections(), self._collections,
                                 lambda _exc: None)  # the store closed: the app is quitting

    def _collections(self, infos: list[CollectionInfo]) -> None:
        self.chips.set_collections(infos)

    @Slot()
    def show_window(self) -> None:
        if self.window is not None:
            self.window.show()
            self.window.raise_()

    @Slot(list)
    def _attach(self, collection_ids: list[str]) -> None:
        self.api.set_collections(collection_ids)

    @Slot(object)
    def _conversation_shown(self, conversation: Conversation) -> None:
        self.chips.set_attached(conversation.collections)

    @Slot()
    def _show_progress(self) -> None:
        library = self.api.documents
        if library is None:
            return
        busy = [p for p in library.progress().values() if p.state != "idle"]
        if not busy:
            self.chips.set_status(library.note)
            return
        chunks_left = sum(max(0, p.chunks_total - p.chunks_done) for p in busy)
        reading = [p for p in busy if p.state == "reading"]
        if reading:
            text = f"reading files {sum(p.files_done for p in reading)}/" \
                   f"{sum(p.files_total for p in reading)}"
        else:
            etas = [p.eta_s for p in busy if p.eta_s is not None]
            text = f"indexing: {chunks_left} chunks left" + (
                f", {eta_text(max(etas))}" if etas else "")
        self.chips.set_status(text)

    # -- links in answers -------------------------------------------------------------------

    @Slot(object, str)
    def open_link(self, key: object, link: str) -> None:
        url = QUrl(link)
        if url.scheme() == "zeta-cite":
            self._open_citation(str(key), int(url.path() or 0))
        elif url.scheme() == "zeta-message":
            conversation_id, _slash, message_id = url.path().partition("/")
            self.history.open(conversation_id, message_id)

    def _open_citation(self, answer_id: str, number: int) -> None:
        message = self.api.conversation.get(answer_id)
        sources = [Source.from_dict(s) for s in message.meta.sources] if message else []
        source = next((s for s in sources if s is not None and s.number == number), None)
        if source is None:
            QMessageBox.information(self._parent, "Citation", no_source_text(number))
            return
        self.passage = PassageDialog(source, self._parent)
        self.passage.show()
