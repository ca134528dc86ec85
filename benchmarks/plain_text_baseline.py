"""The baseline of `make bench-chat`: the plain-text streaming widget the chat
used before answers were Markdown (`StreamingText`, kept here as it was).

Plain text that keeps growing at its end: an answer while it streams.

A QLabel asks the whole chat to lay out again on every setText, and that
costs more the longer the chat is. This widget asks for a layout only when
the new text needs another line at its current width; otherwise it repaints
the part that changed. It is not selectable; the finished answer moves to a
QLabel.

Text is laid out a paragraph at a time and each paragraph's layout is kept:
a new token re-lays only the last paragraph, and a repaint (the chat scrolls
each time an answer grows a line) draws the kept layouts instead of wrapping
the whole answer again, which was most of the GUI thread's time while three
models streamed.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QSize
from PySide6.QtGui import QPainter, QPaintEvent, QTextLayout, QTextOption
from PySide6.QtWidgets import QSizePolicy, QWidget

# Heights kept for this many widths: the layout asks at the current width and
# now and then at another (a scroll bar appearing, the splitter dragged).
_KEPT_WIDTHS = 4


class StreamingText(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._paragraphs: list[str] = [""]
        # Per width: each paragraph laid out so far, in order, and its height.
        self._laid: dict[int, list[tuple[QTextLayout, int]]] = {}
        self._option = QTextOption()
        self._option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        # Vertically Preferred, not Minimum: Qt takes a widget's minimum height
        # from its size hint (here, the height at 200 px) unless it may shrink,
        # and the chat's scroll area then reserves the sum of those heights.
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def text(self) -> str:
        return self._text

    def set_text(self, text: str) -> None:
        if text == self._text:
            return
        width = self.width()
        before = self.heightForWidth(width)
        paragraphs = text.split("\n")
        kept = 0  # leading paragraphs that did not change (all but the last, as a rule)
        for old, new in zip(self._paragraphs, paragraphs, strict=False):
            if old != new:
                break
            kept += 1
        shown = self._laid.get(width, [])
        unchanged_height = sum(height for _, height in shown[:kept])
        if kept < len(shown) and kept < len(paragraphs) and paragraphs[kept].startswith(
            self._paragraphs[kept]
        ):
            # Text appended to a paragraph: its lines before the last stay as they were.
            layout = shown[kept][0]
            unchanged_height += int(layout.lineAt(layout.lineCount() - 1).y())
        self._text, self._paragraphs = text, paragraphs
        for laid in self._laid.values():
            del laid[kept:]
        if self.heightForWidth(width) != before:
            self.updateGeometry()
        self.update(0, unchanged_height, width, self.height() - unchanged_height)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt's name)
        return sum(height for _, height in self._laid_out(width))

    def _laid_out(self, width: int) -> list[tuple[QTextLayout, int]]:
        """Every paragraph laid out at `width`: only the new ones are laid out now."""
        width = max(width, 1)
        laid = self._laid.get(width)
        if laid is None:
            if len(self._laid) >= _KEPT_WIDTHS:
                oldest = next(w for w in self._laid if w != self.width())
                del self._laid[oldest]
            laid = self._laid[width] = []
        for paragraph in self._paragraphs[len(laid):]:
            laid.append(self._lay_out(paragraph, width))
        return laid

    def _lay_out(self, paragraph: str, width: int) -> tuple[QTextLayout, int]:
        layout = QTextLayout(paragraph, self.font())
        layout.setTextOption(self._option)
        layout.setCacheEnabled(True)  # keep the shaped glyphs for every repaint
        layout.beginLayout()
        height = 0.0
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            line.setPosition(QPointF(0, height))
            height += line.height()
        layout.endLayout()
        return layout, round(height)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        # The height at the width it has: layouts ask heightForWidth for the real one.
        return QSize(200, self.heightForWidth(self.width()))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(50, self.fontMetrics().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        area = event.rect()
        top = 0
        for layout, height in self._laid_out(self.width()):
            if top > area.bottom():
                break
            if top + height >= area.top():
                self._draw_lines(painter, layout, top, area.top(), area.bottom())
            top += height
        painter.end()  # now, not whenever Python frees it

    @staticmethod
    def _draw_lines(
        painter: QPainter, layout: QTextLayout, top: int, first_y: int, last_y: int
    ) -> None:
        """Draw only the lines between first_y and last_y: a long paragraph is
        mostly outside the part of the chat being repainted."""
        origin = QPointF(0, top)
        count = layout.lineCount()
        line_height = layout.lineAt(0).height() if count else 1.0
        first = max(0, min(count - 1, int((first_y - top) // line_height)))
        while first > 0 and top + layout.lineAt(first).y() > first_y:
            first -= 1  # a taller line above (another script, an emoji) shifted the rest
        for index in range(first, count):
            line = layout.lineAt(index)
            if top + line.y() > last_y:
                break
            line.draw(painter, origin)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._laid.clear()
            self.updateGeometry()
        super().changeEvent(event)
