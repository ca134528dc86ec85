"""Offer a document the user opened with the app to a collection: an existing
one, or a new one named after the file. Nothing is indexed until they say Add."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import CollectionInfo

NEW_COLLECTION = ""  # the combo's data for "a new collection"


class AddDocumentDialog(QDialog):
    sig_add = Signal(str, str, str)
    """(collection id, or "" for a new one; the new one's name; the file's path)."""

    def __init__(self, path: Path, collections: list[CollectionInfo],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a document")
        self.path = path
        question = QLabel(f"Add {path.name} to a collection? Its passages can then ground "
                          "the answers of a chat the collection is attached to.")
        question.setWordWrap(True)
        self.collection = QComboBox()
        for info in collections:
            self.collection.addItem(info.name, info.id)
        self.collection.addItem("A new collection", NEW_COLLECTION)
        self.name = QLineEdit(path.stem)
        self.collection.currentIndexChanged.connect(self._show_name)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.addButton("Add", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._add)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Collection:", self.collection)
        form.addRow("New collection's name:", self.name)
        layout = QVBoxLayout(self)
        layout.addWidget(question)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._show_name()

    @Slot()
    def _show_name(self) -> None:
        self.name.setEnabled(self.collection.currentData() == NEW_COLLECTION)

    @Slot()
    def _add(self) -> None:
        collection_id = str(self.collection.currentData())
        name = self.name.text().strip() or self.path.stem
        self.sig_add.emit(collection_id, name, str(self.path))
        self.accept()
