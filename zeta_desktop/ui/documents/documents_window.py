"""The document collections: add folders or files, watch progress, see what could not be read.

Indexing runs on the document library's own thread; this window only reads
its progress, from a GUI-thread timer while it is open, and asks for the
collections' counts in the background (the history store's thread).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import CollectionInfo, DocumentLibrary, Progress
from zeta_desktop.ui.tasks import TaskManager

log = logging.getLogger(__name__)

REFRESH_MS = 500
COLUMNS = ("Collection", "Files", "Chunks", "Indexing", "Status")


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    return f"about {seconds / 60:.0f} min left"


def status_text(info: CollectionInfo, progress: Progress | None,
                missing: list[str] | None = None) -> str:
    text = _status(info, progress)
    if missing:
        text += " · not found: " + ", ".join(missing)
    return text


def _status(info: CollectionInfo, progress: Progress | None) -> str:
    if progress is not None and progress.state == "reading":
        return f"reading {progress.files_done}/{progress.files_total} {progress.note}".strip()
    if progress is not None and progress.state == "embedding":
        eta = eta_text(progress.eta_s)
        return f"embedding {progress.chunks_done}/{progress.chunks_total}" + (
            f", {eta}" if eta else "")
    if progress is not None and progress.state == "waiting":
        return f"waiting: {progress.note}"
    if info.embedded < info.chunks:
        return (f"{info.chunks - info.embedded} chunks not embedded by the current embedding "
                "model yet (stale vectors are never used)")
    problems = f", {len(info.problems)} file(s) not read" if info.problems else ""
    return f"ready{problems}" + (" · watching" if info.watch else "")


class DocumentsWindow(QDialog):
    sig_collections = Signal(list)
    """The collections as last read (the chips over the prompt box follow them)."""

    def __init__(self, library: DocumentLibrary, tasks: TaskManager,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Documents")
        self.library = library
        self.tasks = tasks
        self.infos: list[CollectionInfo] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_selected)
        self.bars: dict[str, QProgressBar] = {}

        self.new_folder = QPushButton("New collection from a folder…")
        self.new_folder.clicked.connect(self._new_from_folder)
        self.add_folder = QPushButton("Add folder…")
        self.add_folder.clicked.connect(self._add_folder)
        self.add_files = QPushButton("Add files…")
        self.add_files.clicked.connect(self._add_files)
        self.reindex = QPushButton("Re-index")
        self.reindex.setToolTip("Read every file again (changed files are found by themselves)")
        self.reindex.clicked.connect(self._reindex)
        self.watch = QCheckBox("Watch for changes")
        self.watch.setToolTip("Look at the folder every few seconds and index what changed")
        self.watch.clicked.connect(self._set_watch)
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self._remove)
        self.sources = QListWidget()  # the folders and files the collection reads
        self.sources.setMaximumHeight(80)
        self.sources.itemSelectionChanged.connect(self._enable_buttons)
        self.remove_source = QPushButton("Remove folder or file")
        self.remove_source.setToolTip("Stop reading the chosen folder or file (its passages go)")
        self.remove_source.clicked.connect(self._remove_source)
        self.rename = QPushButton("Rename…")
        self.rename.clicked.connect(self._rename)
        self.problems = QPlainTextEdit()
        self.problems.setReadOnly(True)
        self.problems.setPlaceholderText("Files that could not be read are listed here, "
                                         "with the reason; the rest of the collection indexes.")
        self.problems.setMaximumHeight(120)
        self.note = QLabel()
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setWordWrap(True)

        buttons = QHBoxLayout()
        for widget in (self.new_folder, self.add_folder, self.add_files, self.reindex,
                       self.watch, self.rename, self.remove):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        source_row = QHBoxLayout()
        source_row.addWidget(self.sources, 1)
        source_row.addWidget(self.remove_source, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(source_row)
        layout.addWidget(self.problems)
        layout.addWidget(self.note)
        self.resize(860, 460)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._enable_buttons()

    # -- reading the library ----------------------------------------------------------

    def showEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        self.refresh()
        self._timer.start()
        super().showEvent(event)  # type: ignore[arg-type]

    def hideEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        self._timer.stop()
        super().hideEvent(event)  # type: ignore[arg-type]

    @Slot()
    def refresh(self) -> None:
        # The store may close first when the app quits: nothing to show then.
        self.tasks.when_done(self.library.collections(), self._show_collections,
                             lambda exc: log.debug("collections not read: %s", exc))

    def _show_collections(self, infos: list[CollectionInfo]) -> None:
        selected = self.selected()
        progress = self.library.progress()
        if [i.id for i in infos] != [i.id for i in self.infos]:
            self.table.setRowCount(len(infos))
            self.bars.clear()
            for row, info in enumerate(infos):
                bar = QProgressBar()
                bar.setTextVisible(True)
                self.table.setCellWidget(row, 3, bar)
                self.bars[info.id] = bar
        self.infos = infos
        for row, info in enumerate(infos):
            state = progress.get(info.id)
            self._set(row, 0, info.name)
            self._set(row, 1, str(info.files))
            self._set(row, 2, str(info.chunks))
            self._set(row, 4, status_text(info, state, self.library.indexer.missing.get(info.id)))
            bar = self.bars[info.id]
            busy = state is not None and state.state != "idle"
            fraction = state.fraction if busy and state is not None else (
                info.embedded / info.chunks if info.chunks else 1.0)
            bar.setValue(round(100 * fraction))
        if selected is not None:
            rows = [i for i, info in enumerate(infos) if info.id == selected.id]
            if rows and self.table.currentRow() != rows[0]:
                self.table.selectRow(rows[0])
        elif infos and self.table.currentRow() < 0:
            self.table.selectRow(0)
        self.note.setText(self.library.note)
        self._show_selected()
        self.sig_collections.emit(infos)

    def _set(self, row: int, column: int, text: str) -> None:
        item = self.table.item(row, column)
        if item is None:
            self.table.setItem(row, column, QTableWidgetItem(text))
        elif item.text() != text:
            item.setText(text)

    def selected(self) -> CollectionInfo | None:
        row = self.table.currentRow()
        return self.infos[row] if 0 <= row < len(self.infos) else None

    @Slot()
    def _show_selected(self) -> None:
        info = self.selected()
        self._enable_buttons()
        if info is None:
            self.sources.clear()
            self.sources.addItem("Add a folder to make your first collection.")
            self.problems.setPlainText("")
            return
        shown = [self.sources.item(i).text() for i in range(self.sources.count())]
        if shown != list(info.sources):
            self.sources.clear()
            self.sources.addItems(list(info.sources))
        self.watch.setChecked(info.watch)
        text = "\n".join(f"{Path(path).name}: {why}    ({path})" for path, why in info.problems)
        if self.problems.toPlainText() != text:
            self.problems.setPlainText(text)

    def _enable_buttons(self) -> None:
        chosen = self.selected() is not None
        for widget in (self.add_folder, self.add_files, self.reindex, self.watch, self.rename,
                       self.remove):
            widget.setEnabled(chosen)
        self.remove_source.setEnabled(chosen and bool(self.sources.selectedItems()))

    # -- acting ----------------------------------------------------------------------------

    def create_collection(self, name: str, paths: list[str]) -> None:
        self.tasks.when_done(self.library.create_collection(name, paths),
                             lambda _id: self.refresh())

    @Slot()
    def _new_from_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of documents")
        if not folder:
            return
        name, ok = QInputDialog.getText(self, "New collection", "Name:", text=Path(folder).name)
        if ok and name.strip():
            self.create_collection(name.strip(), [folder])

    @Slot()
    def _add_folder(self) -> None:
        info = self.selected()
        folder = QFileDialog.getExistingDirectory(self, "Add a folder") if info else ""
        if info and folder:
            self.tasks.when_done(self.library.add_sources(info.id, [folder]),
                                 lambda _r: self.refresh())

    @Slot()
    def _add_files(self) -> None:
        info = self.selected()
        files, _filter = QFileDialog.getOpenFileNames(self, "Add files") if info else ([], "")
        if info and files:
            self.tasks.when_done(self.library.add_sources(info.id, files),
                                 lambda _r: self.refresh())

    @Slot()
    def _reindex(self) -> None:
        info = self.selected()
        if info is not None:
            self.library.refresh(info.id, force=True)
            self.refresh()

    @Slot(bool)
    def _set_watch(self, on: bool) -> None:
        info = self.selected()
        if info is not None:
            self.tasks.when_done(self.library.set_watch(info.id, on), lambda _r: self.refresh())

    @Slot()
    def _remove_source(self) -> None:
        info = self.selected()
        items = self.sources.selectedItems()
        if info is not None and items and items[0].text() in info.sources:
            self.tasks.when_done(self.library.remove_source(info.id, items[0].text()),
                                 lambda _r: self.refresh())

    @Slot()
    def _rename(self) -> None:
        info = self.selected()
        if info is None:
            return
        name, ok = QInputDialog.getText(self, "Rename collection", "Name:", text=info.name)
        if ok and name.strip():
            self.tasks.when_done(self.library.rename_collection(info.id, name.strip()),
                                 lambda _r: self.refresh())

    @Slot()
    def _remove(self) -> None:
        info = self.selected()
        if info is None:
            return
        answer = QMessageBox.question(
            self, "Remove collection",
            f"Remove “{info.name}” and its index? Your files are not touched.")
        if answer == QMessageBox.StandardButton.Yes:
            self.tasks.when_done(self.library.delete_collection(info.id),
                                 lambda _r: self.refresh())
