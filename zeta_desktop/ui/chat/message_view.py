"""One chat message: author, routing badge, text and footer."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.ui.chat.answer_body import AnswerBody
from zeta_desktop.ui.style import set_small_text, set_text_colour


class WrappedLabel(QLabel):
    """A word-wrapped plain-text label that remembers its height per width.

    Whenever the chat's layout changes, its scroll area asks every message's
    label for its height at a few widths, and a selectable QLabel lays out
    its whole text to answer, every time: the cost grew with each message in
    the chat. With this cache only a label whose text changed is measured.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self._heights: dict[int, int] = {}
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._heights.clear()
        super().setText(text)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt's name)
        height = self._heights.get(width)
        if height is None:
            height = self._heights[width] = super().heightForWidth(width)
        return height

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._heights.clear()
        super().changeEvent(event)


class Badge(QPushButton):
    """A small rounded pill in a role's colour, painted directly.

    A style sheet per badge would cost its own style object and polish on
    every new answer (several ms each while models stream).
    """

    PADDING_X, PADDING_Y = 8, 1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour = QColor("#6b7280")
        font = self.font()
        font.setPixelSize(11)
        self.setFont(font)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_colour(self, colour: str) -> None:
        self.colour = QColor(colour)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        metrics = self.fontMetrics()
        return QSize(
            metrics.horizontalAdvance(self.text()) + 2 * self.PADDING_X,
            metrics.height() + 2 * self.PADDING_Y,
        )

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return self.sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour.darker(115) if self.isDown() else self.colour)
        radius = self.height() / 2
        painter.drawRoundedRect(QRectF(self.rect()), radius, radius)
        painter.setPen(QColor("white"))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.text())
        painter.end()  # now, not whenever Python frees it


class MessageView(QWidget):
    """One message. A prompt or a notice is plain text; an answer is Markdown
    (`AnswerBody`: thinking, prose, highlighted code), selectable throughout.

    Drawn with palettes and a paintEvent rather than style sheets: each style
    sheet costs a polish (`make bench-chat`: 5.1 ms a new message, 2.6 painted).
    """

    sig_badge_clicked = Signal()
    sig_internal_link = Signal(str)
    """A citation [n] or a past message's link in the answer was clicked."""
    """The user clicked the routing badge of this answer."""

    BAR_WIDTH = 4

    def __init__(self, author: str, text: str, colour: str, parent: QWidget | None = None,
                 markdown: bool = False):
        super().__init__(parent)
        self._markdown = markdown
        self.colour = QColor(colour)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10 + self.BAR_WIDTH, 6, 10, 8)
        self.header = QLabel(author)
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        bold = self.header.font()
        bold.setWeight(QFont.Weight.DemiBold)
        self.header.setFont(bold)
        set_text_colour(self.header, colour)
        self._top = QHBoxLayout()
        self._top.addWidget(self.header)
        self._top.addStretch(1)
        self._layout.addLayout(self._top)
        # The badge, the text and the footer are made when first needed: a
        # prompt sent adds two messages while models stream, and a message
        # built whole (six widgets, fonts set) was a third of that stall.
        self._badge: Badge | None = None
        self._body: WrappedLabel | None = None
        self._answer: AnswerBody | None = None
        self._footer: WrappedLabel | None = None
        self._actions: QHBoxLayout | None = None
        self.action_buttons: dict[str, QToolButton] = {}
        self.pager_label: QLabel | None = None
        self.key: object = None  # what the chat knows this message by (its id)
        self._text = text
        self._streaming = False
        self.retry_note = ""
        if text:
            self.show_text()

    @property
    def badge(self) -> Badge:
        if self._badge is None:
            self._badge = Badge()
            self._badge.setToolTip("Show the full routing decision")
            self._badge.clicked.connect(self.sig_badge_clicked)
            self._badge.hide()
            self._top.insertWidget(1, self._badge)
        return self._badge

    @property
    def body(self) -> WrappedLabel:
        if self._body is None:
            self._body = WrappedLabel()
            self._body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._layout.insertWidget(1, self._body)  # under the header
        return self._body

    @property
    def is_answer(self) -> bool:
        return self._markdown

    @property
    def answer(self) -> AnswerBody:
        """An answer's Markdown (made when first needed)."""
        if self._answer is None:
            self._answer = AnswerBody()
            self._answer.sig_internal_link.connect(self.sig_internal_link)
            self._layout.insertWidget(1, self._answer)  # under the header, above the footer
        return self._answer

    @property
    def footer(self) -> WrappedLabel:
        if self._footer is None:
            self._footer = WrappedLabel("")
            set_small_text(self._footer, "#6b7280")
            self._footer.hide()
            self._layout.addWidget(self._footer)
        return self._footer

    def _action_row(self) -> QHBoxLayout:
        if self._actions is None:
            row = QWidget()
            self._actions = QHBoxLayout(row)
            self._actions.setContentsMargins(0, 0, 0, 0)
            self._actions.setSpacing(2)
            self._actions.addStretch(1)
            self._layout.addWidget(row)
        return self._actions

    def set_actions(self, actions: list[tuple[str, str, object]]) -> None:
        """Small buttons under the message: (name, tooltip, callback); replaces any."""
        row = self._action_row()
        for button in self.action_buttons.values():
            row.removeWidget(button)
            button.deleteLater()
        self.action_buttons = {}
        for name, tip, callback in actions:
            button = QToolButton()
            button.setText(name)
            button.setToolTip(tip)
            button.setAutoRaise(True)
            if isinstance(callback, QMenu):
                button.setMenu(callback)
                button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            else:
                button.clicked.connect(callback)
            row.insertWidget(row.count() - 1, button)
            self.action_buttons[name] = button

    def set_pager(self, index: int, count: int, on_prev: object, on_next: object) -> None:
        """◀ index/count ▶ for a message with alternatives (edits, regenerations)."""
        row = self._action_row()
        if self.pager_label is None:
            self.prev_button, self.next_button = QToolButton(), QToolButton()
            self.prev_button.setText("◀")
            self.next_button.setText("▶")
            self.prev_button.setToolTip("The previous version")
            self.next_button.setToolTip("The next version")
            self.pager_label = QLabel()
            for index_in_row, widget in enumerate(
                (self.prev_button, self.pager_label, self.next_button)
            ):
                row.insertWidget(index_in_row, widget)
            # Connected once; the targets change as the conversation does.
            self.prev_button.clicked.connect(lambda: self._on_prev())  # type: ignore[operator]
            self.next_button.clicked.connect(lambda: self._on_next())  # type: ignore[operator]
        self._on_prev, self._on_next = on_prev, on_next
        self.pager_label.setText(f"{index}/{count}")
        self.prev_button.setEnabled(index > 1)
        self.next_button.setEnabled(index < count)

    def set_colour(self, colour: str) -> None:
        """The author's colour: the bar on the left and the header."""
        self.colour = QColor(colour)
        set_text_colour(self.header, colour)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(QRectF(self.rect()), 4, 4)
        painter.setBrush(self.colour)
        painter.drawRoundedRect(QRectF(0, 0, self.BAR_WIDTH, self.height()), 2, 2)
        painter.end()  # now, not whenever Python frees it

    def clear_text(self) -> None:
        self._text = ""
        self.show_text()

    @property
    def text(self) -> str:
        """Everything received so far, shown or not yet."""
        return self._text

    @property
    def streaming(self) -> bool:
        """Tokens may still come (the answer is not finished)."""
        return self._streaming

    def start_streaming(self) -> None:
        self._streaming = True

    def shown_text(self) -> str:
        """What the user sees now (the Markdown source of an answer)."""
        if self._markdown:
            return self._answer.text() if self._answer is not None else ""
        return self._body.text() if self._body is not None else ""

    def set_text_so_far(self, text: str) -> None:
        """Everything received so far (from the conversation model); drawn at show_text()."""
        self._text = text

    def append(self, piece: str) -> None:
        """Take a token now; it is drawn at the next show_text()."""
        self._text += piece

    def show_text(self) -> None:
        if self._markdown:
            if self._text or self._answer is not None:
                self.answer.set_text(self._text, streaming=self._streaming)
        elif self.shown_text() != self._text:
            self.body.setText(self._text)

    def finish_streaming(self) -> None:
        """The answer is complete: all of it shows, each part rendered once, whole."""
        self._streaming = False
        self.show_text()
        self.setAccessibleDescription(self._text)  # what a screen reader reads

    def set_citations(self, count: int) -> None:
        """The answer was given `count` passages: its [1]..[count] become links."""
        self.answer.set_citations(count)

    def set_badge(self, text: str, colour: str) -> None:
        self.badge.setText(text)
        self.badge.set_colour(colour)
        self.badge.show()

    def set_footer(self, text: str, colour: str | None = None) -> None:
        """A small grey line under the message, or in `colour` (a warning, an error)."""
        self.footer.setText(text)
        if colour:
            set_text_colour(self.footer, colour)
        self.footer.show()
