"""Files opened with the app (`zeta-desktop FILE`, the desktop's "Open with",
or handed over by a second start): each goes where its kind belongs.

- a `.gguf` model: the model picker, with it selected for the role it suits;
- an exported conversation `.json`: imported into the history;
- a document: offered to a collection.

Whatever cannot be opened (missing, a folder, unreadable, another kind, a
corrupt file) is said in the chat (a malformed conversation in the alert bar,
as File > Import says it); nothing else changes. Files wait until the history
has shown its start-up conversation: showing it clears the chat, and would
take a notice said before it away.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from zeta_desktop.core.chat.api import CollectionInfo
from zeta_desktop.ui.documents.add_document_dialog import AddDocumentDialog

if TYPE_CHECKING:
    from zeta_desktop.ui.main_window import MainWindow

MODEL_SUFFIXES = frozenset({".gguf"})
CONVERSATION_SUFFIXES = frozenset({".json"})
DOCUMENT_SUFFIXES = frozenset({".pdf", ".md", ".markdown", ".txt", ".docx", ".html", ".htm"})
OK_COLOUR = "#15803d"
RESTORE_POLL_MS = 50  # how often files waiting for the start-up conversation look again
KINDS_OPENED = ".gguf models, exported conversations (.json) and documents " \
               "(.pdf .md .txt .docx .html)"


def kind_of(path: Path) -> str:
    """'model', 'conversation', 'document', or '' for a kind the app does not open."""
    suffix = path.suffix.lower()
    if suffix in MODEL_SUFFIXES:
        return "model"
    if suffix in CONVERSATION_SUFFIXES:
        return "conversation"
    if suffix in DOCUMENT_SUFFIXES:
        return "document"
    return ""


def problem_opening(path: Path) -> str:
    """Why `path` cannot be opened at all, or ''. Its content is checked later,
    by whichever part opens it."""
    if not path.exists():
        return "there is no such file"
    if path.is_dir():
        return "it is a folder, not a file"
    if not os.access(path, os.R_OK):
        return "it cannot be read (permissions)"
    if not kind_of(path):
        return f"Zeta Desktop opens {KINDS_OPENED}"
    return ""


class FileOpener(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.add_dialog: AddDocumentDialog | None = None  # the last one (tests look at it)
        self._waiting: list[Path] = []
        self._wait_timer = QTimer(self)
        self._wait_timer.setInterval(RESTORE_POLL_MS)
        self._wait_timer.timeout.connect(self._open_waiting)

    def open(self, paths: Sequence[Path]) -> None:
        """Open each file; before the start-up conversation is shown, once it is."""
        self._waiting.extend(Path(path).absolute() for path in paths)
        self._open_waiting()

    def _open_waiting(self) -> None:
        if not self._window.history.restored:
            self._wait_timer.start()
            return
        self._wait_timer.stop()
        waiting, self._waiting = self._waiting, []
        for path in waiting:
            self.open_one(path)

    def open_one(self, path: Path) -> None:
        window = self._window
        problem = problem_opening(path)
        if problem:
            window.chat.add_notice(f"Could not open {path}: {problem}.")
            return
        kind = kind_of(path)
        if kind == "model":
            window.models.open_model_file(path)
        elif kind == "conversation":
            window.history.import_from(path)
        else:
            self.offer_document(path)

    def offer_document(self, path: Path) -> None:
        library = self._window.api.documents
        if library is None:
            self._window.chat.add_notice(
                f"Could not add {path.name} to a collection: documents need the history "
                "database, which could not be opened.")
            return
        self._window.tasks.when_done(
            library.collections(), lambda infos: self._ask_collection(path, infos),
            lambda exc: self._window.chat.add_notice(f"Could not read the collections: {exc}"))

    def _ask_collection(self, path: Path, infos: list[CollectionInfo]) -> None:
        dialog = AddDocumentDialog(path, infos, self._window)
        names = {info.id: info.name for info in infos}
        dialog.sig_add.connect(lambda collection_id, name, file: self._add(
            collection_id, names.get(collection_id, name), Path(file)))
        self.add_dialog = dialog
        dialog.show()
        dialog.raise_()

    def _add(self, collection_id: str, name: str, path: Path) -> None:
        window = self._window
        library = window.api.documents
        assert library is not None  # checked before the dialog was offered
        added = (library.add_sources(collection_id, [str(path)]) if collection_id
                 else library.create_collection(name, [str(path)]))

        def done(_result: object) -> None:
            window.chat.add_notice(f"Added {path.name} to the collection “{name}”; it is "
                                   "being indexed. Attach the collection to a chat with the "
                                   "chips over the prompt box.", OK_COLOUR)
            window.documents.reload()

        window.tasks.when_done(added, done, lambda exc: window.chat.add_notice(
            f"Could not add {path.name} to “{name}”: {exc}"))
