"""A cited passage, as the model was given it: its file, page or lines, and text."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import Source


class PassageDialog(QDialog):
    def __init__(self, source: Source, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.setWindowTitle(f"[{source.number}] {source.label()}")
        # Plain text throughout: a file's name or heading is shown as it is, never as HTML.
        self.title = QLabel(f"[{source.number}] {source.label()}"
                            + (f" — {source.heading}" if source.heading else ""))
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        bold = self.title.font()
        bold.setBold(True)
        self.title.setFont(bold)
        self.path = QLabel(source.path)
        self.path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path.setTextFormat(Qt.TextFormat.PlainText)
        self.text = QPlainTextEdit(source.text)
        self.text.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.path)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.resize(640, 360)


def no_source_text(number: int) -> str:
    return f"[{number}] is not one of the passages this answer was given."
