"""A conversation's system prompt, with built-in and saved presets."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

BUILTIN_PRESETS = {
    "Helpful assistant": "You are a helpful assistant.",
    "Concise": "You are a helpful assistant. Answer in as few words as the question allows.",
    "Code reviewer": "You are a senior engineer. Review code for bugs, clarity and tests; "
                     "quote the lines you mean.",
}


class SystemPromptDialog(QDialog):
    sig_saved = Signal(str)
    """The user saved the prompt: its text."""
    sig_preset_saved = Signal(str, str)
    """The user saved the text as a preset: name, text."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("System prompt")
        self.text = QPlainTextEdit(text)
        self.presets = QComboBox()
        self.presets.addItem("Presets…", "")
        for name, value in BUILTIN_PRESETS.items():
            self.presets.addItem(name, value)
        self.presets.currentIndexChanged.connect(self._on_preset_chosen)
        save_preset = QPushButton("Save as preset…")
        save_preset.clicked.connect(self._ask_preset_name)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept_changes)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.presets, 1)
        row.addWidget(save_preset)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Used for every answer in this conversation, and kept when "
                                "older turns are dropped to fit the model's context."))
        layout.addWidget(self.text)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.resize(560, 320)

    def add_presets(self, presets: dict[str, str]) -> None:
        for name, value in presets.items():
            self.presets.addItem(name, value)

    @Slot(int)
    def _on_preset_chosen(self, _index: int) -> None:
        value = self.presets.currentData()
        if value:
            self.text.setPlainText(value)

    @Slot()
    def _ask_preset_name(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Name:")
        if ok and name.strip():
            self.save_preset(name.strip())

    def save_preset(self, name: str) -> None:
        text = self.text.toPlainText()
        self.presets.addItem(name, text)
        self.sig_preset_saved.emit(name, text)

    @Slot()
    def accept_changes(self) -> None:
        self.sig_saved.emit(self.text.toPlainText().strip())
        self.accept()

