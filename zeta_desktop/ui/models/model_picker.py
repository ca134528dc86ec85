"""Pick a model for a role from what discovery found: search, filter, sort.

The scan runs in the background (the task helper) with progress; each row is
read from the file's header, with the memory this role would need. The row
that suits the role best is selected, so it is two clicks from the role
card's button to a loaded model: the button, then Load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import (
    Found,
    Place,
    default_places,
    estimate,
    mib,
    read_info,
    scan,
    suggested_role,
)
from zeta_desktop.ui.tasks import TaskManager

COLUMNS = ("Model", "Kind", "Parameters", "Quantisation", "Context", "Size", "Needs here",
           "Suits", "Where")


class _SortItem(QTableWidgetItem):
    """Sorts by a number (bytes, parameters), shows text."""

    def __init__(self, text: str, key: float) -> None:
        super().__init__(text)
        self._key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _SortItem):
            return self._key < other._key
        return super().__lt__(other)


class ModelPicker(QDialog):
    sig_chosen = Signal(str, str)
    """(role, path): the user chose this file for this role."""

    def __init__(self, role: str, wants_embedding: bool, n_ctx: int, n_gpu_layers: int,
                 tasks: TaskManager, folders: list[str],
                 on_folder_added: Callable[[str], None] | None = None,
                 opened: Path | None = None, parent: QWidget | None = None) -> None:
        """`opened`: a file the user opened with the app (`zeta-desktop FILE`):
        listed even outside the places scanned, and selected."""
        super().__init__(parent)
        self.setWindowTitle(f"Choose a model for {role}")
        self.resize(900, 460)
        self.role, self.wants_embedding = role, wants_embedding
        self.n_ctx, self.n_gpu_layers = n_ctx, n_gpu_layers
        self._tasks = tasks
        self._folders = list(folders)
        self._on_folder_added = on_folder_added
        self.opened = opened
        self.found: list[Found] = []
        self.scanning = False

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by name, architecture or quantisation")
        self.search.textChanged.connect(self._apply_filter)
        self.kind = QComboBox()
        self.kind.addItems(["All kinds", "Chat", "Embedding"])
        self.kind.setCurrentIndex(0 if opened else 2 if wants_embedding else 1)
        self.kind.currentIndexChanged.connect(self._apply_filter)
        self.progress = QLabel("")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        # The name takes what the other columns, sized to their contents, leave.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(False)
        self.table.doubleClicked.connect(lambda _index: self._load())

        add_folder = QPushButton("Add folder…")
        add_folder.clicked.connect(self._ask_folder)
        browse = QPushButton("Browse for a file…")
        browse.clicked.connect(self._ask_file)
        rescan = QPushButton("Scan again")
        rescan.clicked.connect(self.start_scan)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.load_button = self.buttons.addButton("Load", QDialogButtonBox.ButtonRole.AcceptRole)
        self.load_button.setEnabled(False)
        self.buttons.accepted.connect(self._load)
        self.buttons.rejected.connect(self.reject)
        self.table.itemSelectionChanged.connect(
            lambda: self.load_button.setEnabled(self._selected() is not None))

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.kind)
        bottom = QHBoxLayout()
        bottom.addWidget(add_folder)
        bottom.addWidget(browse)
        bottom.addWidget(rescan)
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

    # -- scanning (in the background) ---------------------------------------------------

    def places(self) -> list[Place]:
        return [*default_places(), *(Place("your folder", Path(f)) for f in self._folders)]

    @Slot()
    def start_scan(self) -> None:
        if self.scanning:
            return
        self.scanning = True
        self.progress.setText("Scanning…")
        places = self.places()

        def progress(done: int, total: int, path: Path) -> None:
            text = f"Reading {done + 1} of {total}: {path.name}" if done < total else ""
            self._tasks.run_on_main(lambda: self.progress.setText(text))

        opened = self.opened

        def scan_with_opened() -> list[Found]:
            found = scan(places, progress)
            if opened is not None and all(
                    f.info.path.resolve() != opened.resolve() for f in found):
                found.append(Found(read_info(opened), "opened file", opened.name))
            return found

        self._tasks.run_in_background(scan_with_opened, self._on_scanned,
                                      self._on_scan_failed)

    def _on_scanned(self, found: list[Found]) -> None:
        self.scanning = False
        self.found = found
        readable = sum(1 for f in found if not f.info.error)
        self.progress.setText(f"{readable} model{'' if readable == 1 else 's'} found" + (
            f", {len(found) - readable} unreadable" if len(found) > readable else ""))
        self._fill()

    def _on_scan_failed(self, exc: BaseException) -> None:
        self.scanning = False
        self.progress.setText(f"The scan failed: {exc}")

    # -- the table ----------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(0)
        for found in self.found:
            info = found.info
            row = table.rowCount()
            table.insertRow(row)
            name = QTableWidgetItem(found.display_name)
            name.setData(Qt.ItemDataRole.UserRole, str(info.path))
            name.setToolTip(str(info.path) + (f"\n{info.error}" if info.error else ""))
            table.setItem(row, 0, name)
            if info.error:
                table.setItem(row, 1, QTableWidgetItem("unreadable"))
                reason = QTableWidgetItem(info.error)
                table.setItem(row, 2, reason)
                table.setSpan(row, 2, 1, len(COLUMNS) - 3)
                table.setItem(row, len(COLUMNS) - 1, QTableWidgetItem(found.place))
                continue
            needs = estimate(info, self.n_ctx, self.n_gpu_layers).total_bytes
            cells = [
                QTableWidgetItem(info.kind),
                _SortItem(f"{info.parameters / 1e9:.2f} B" if info.parameters else "?",
                          info.parameters),
                QTableWidgetItem(info.quantization),
                _SortItem(f"{info.context_length:,}", info.context_length),
                _SortItem(mib(info.file_bytes), info.file_bytes),
                _SortItem(f"~{mib(needs)}", needs),
                QTableWidgetItem(suggested_role(info, found.display_name)),
                QTableWidgetItem(found.place),
            ]
            for column, cell in enumerate(cells, start=1):
                table.setItem(row, column, cell)
        table.setSortingEnabled(True)
        table.sortItems(5, Qt.SortOrder.AscendingOrder)
        self._apply_filter()
        self._select_suggestion()

    def _row_found(self, row: int) -> Found | None:
        item = self.table.item(row, 0)
        path = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return next((f for f in self.found if str(f.info.path) == path), None)

    @Slot()
    def _apply_filter(self) -> None:
        words = self.search.text().lower().split()
        kind = ("", "chat", "embedding")[self.kind.currentIndex()]
        for row in range(self.table.rowCount()):
            found = self._row_found(row)
            if found is None:
                continue
            info = found.info
            text = " ".join((found.display_name, info.architecture, info.quantization,
                             found.place)).lower()
            shown = all(w in text for w in words) and (
                not kind or info.kind == kind or (info.kind == "unreadable" and not words))
            self.table.setRowHidden(row, not shown)

    def _select_suggestion(self) -> None:
        """The file the user opened; else the largest readable model of the
        role's kind: what the role suits."""
        wanted = "embedding" if self.wants_embedding else "chat"
        best, best_size = None, -1
        for row in range(self.table.rowCount()):
            found = self._row_found(row)
            if found is None or self.table.isRowHidden(row):
                continue
            if self.opened is not None:
                if found.info.path.resolve() == self.opened.resolve():
                    best = row
                    break
                continue
            if found.info.kind == wanted and found.info.file_bytes > best_size:
                best, best_size = row, found.info.file_bytes
        if best is not None:
            self.table.selectRow(best)
            name = self.table.item(best, 0)
            if name is not None:
                said = "opened" if self.opened is not None else "suggested"
                name.setText(f"{name.text()}  ({said} for {self.role})")

    def _selected(self) -> Found | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        found = self._row_found(rows[0].row())
        return found if found is not None and not found.info.error else None

    # -- choices ------------------------------------------------------------------------

    @Slot()
    def _load(self) -> None:
        found = self._selected()
        if found is None:
            return
        self.sig_chosen.emit(self.role, str(found.info.path))
        self.accept()

    @Slot()
    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder with GGUF models", str(
            Path.home()))
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        if folder not in self._folders:
            self._folders.append(folder)
            if self._on_folder_added is not None:
                self._on_folder_added(folder)
        self.start_scan()

    @Slot()
    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Choose a GGUF file for {self.role}", str(Path.home()),
            "GGUF models (*.gguf)")
        if path:
            self.sig_chosen.emit(self.role, path)
            self.accept()
