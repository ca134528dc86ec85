"""A thinking model's reasoning: a section that shows it live, then folds away.

"Thinking…" and open while the model thinks; once its answer starts,
"Thought for 12 s" and closed (the user can open it again). Stopped mid-thought,
it says so and stays open.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QToolButton, QVBoxLayout, QWidget

from zeta_desktop.ui.chat.markdown_view import ProseView


class ThinkingSection(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setAutoRaise(True)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow)
        self.toggle.setChecked(True)
        self.toggle.toggled.connect(self._on_toggled)
        self.text = ProseView()
        palette = self.text.palette()
        palette.setColor(QPalette.ColorRole.Text, QColor("#6b7280"))
        self.text.setPalette(palette)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(0)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.text)
        self.done = False
        self._folded_once = False
        self.toggle.setText("Thinking…")

    def set_thinking(self, text: str, done: bool, seconds: float | None,
                     streaming: bool) -> None:
        if streaming:
            self.text.stream_markdown(text)
        else:
            self.text.set_markdown(text)
        if done:
            took = f" for {seconds:.0f} s" if seconds is not None else ""
            self.toggle.setText(f"Thought{took}")
            if not self._folded_once:  # fold once; the user's own choice stands after
                self._folded_once = True
                self.toggle.setChecked(False)
        elif not streaming:
            self.toggle.setText("Stopped while thinking")
        self.done = done

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    @Slot(bool)
    def _on_toggled(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.text.setVisible(expanded)
