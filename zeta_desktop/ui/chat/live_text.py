"""One line of text that changes often and never moves anything around it.

A QLabel asks for a new layout on every setText (unless its size is fixed
both ways), and Qt carries that request up through every layout to the
window: a whole-window layout pass, 4-8 ms on the GUI thread, for a model's
tokens/s changing twice a second. This widget's size comes from a template
string given once, so a new text only repaints the widget itself.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget


class LiveText(QWidget):
    def __init__(
        self,
        template: str,
        alignment: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._template = template  # the widest text it is sized for
        self._text = ""
        self._alignment = alignment | Qt.AlignmentFlag.AlignVCenter
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 (QLabel's name, so it swaps in)
        if text == self._text:
            return
        self._text = text
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(self._template), metrics.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(self.fontMetrics().horizontalAdvance("…"), self.fontMetrics().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        # Too narrow for the whole text: cut it with an ellipsis, show it all on hover.
        shown = self.fontMetrics().elidedText(self._text, Qt.TextElideMode.ElideRight, self.width())
        self.setToolTip(self._text if shown != self._text else "")
        painter.drawText(self.rect(), self._alignment, shown)
        painter.end()  # now, not whenever Python frees it
