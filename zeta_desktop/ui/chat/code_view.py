"""A fenced code block in an answer: language label, Copy, highlighted code.

The code is a read-only QPlainTextEdit: lines never wrap (long ones scroll
sideways), text can be selected, and a streaming block takes each token batch
as an append at its end, so Qt lays out and highlights only the last line.
Its height follows its line count, so the chat scrolls, not the block.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QFontDatabase,
    QGuiApplication,
    QPalette,
    QTextCursor,
    QTextOption,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.ui.chat.highlight import PygmentsHighlighter, lexer_for
from zeta_desktop.ui.style import set_small_text

GUESS_AFTER_LINES = 3  # an unnamed block's language is guessed once it has some code
# While code streams its block grows this many lines at a time: each growth
# moves the chat (a layout and a repaint of the answer), so four lines, not one.
GROW_LINES = 4


class CodeText(QPlainTextEdit):
    """The code itself: no wrapping, no vertical scrolling of its own."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setWordWrapMode(QTextOption.WrapMode.NoWrap)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._lines = 0
        self._code = ""  # what the document holds (not read back from it each batch)
        self._streaming = False
        self.horizontalScrollBar().rangeChanged.connect(self._fit_height)

    def set_code(self, code: str, streaming: bool = False) -> None:
        old = self._code
        if code == old and streaming == self._streaming:
            return
        self._streaming = streaming
        if code.startswith(old) and old:
            cursor = QTextCursor(self.document())
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(code[len(old):])  # only the last line(s) re-laid and highlighted
        else:
            self.setPlainText(code)
        self._code = code
        lines = code.count("\n") + 1
        if streaming:
            lines = -(-lines // GROW_LINES) * GROW_LINES
        if lines != self._lines:
            self._lines = lines
            self._fit_height()

    @Slot()
    def _fit_height(self) -> None:
        metrics = self.fontMetrics()
        margins = self.contentsMargins()
        height = self._lines * metrics.lineSpacing() + 2 * self.document().documentMargin()
        height += margins.top() + margins.bottom() + 2
        bar = self.horizontalScrollBar()
        if bar.maximum() > 0:
            height += bar.sizeHint().height()
        self.setFixedHeight(int(height))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        # Up and down scroll the chat; only sideways turns scroll the code.
        if abs(event.angleDelta().x()) > abs(event.angleDelta().y()):
            super().wheelEvent(event)
        else:
            event.ignore()


class CodeBlockView(QFrame):
    """Header (language, Copy) over the highlighted code."""

    sig_copied = Signal(str)
    """The user copied this block's code (the text copied)."""

    def __init__(self, language: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        self._dark = base.lightness() < 128
        palette.setColor(QPalette.ColorRole.Window, base.darker(104) if not self._dark
                         else base.lighter(115))
        self.setPalette(palette)
        self.language = language
        self.language_label = QLabel()
        self.language_label.setTextFormat(Qt.TextFormat.PlainText)
        set_small_text(self.language_label, "#6b7280")
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy this code")
        self.copy_button.setAutoRaise(True)
        self.copy_button.clicked.connect(self.copy_code)
        header = QHBoxLayout()
        header.setContentsMargins(8, 2, 4, 0)
        header.addWidget(self.language_label)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        self.code_text = CodeText()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.code_text)
        self._code = ""
        self._guessed = bool(language)
        self.highlighter = PygmentsHighlighter(
            self.code_text.document(), lexer_for(language), dark=self._dark)
        self._show_language()

    def _show_language(self) -> None:
        named = self.language or (
            self.highlighter.lexer.name if self._guessed and self.highlighter.lexer.name != "Text"
            else "")
        guessed = " (guessed)" if named and not self.language else ""
        self.language_label.setText(f"{named}{guessed}" if named else "code")

    @property
    def code(self) -> str:
        return self._code

    def set_code(self, code: str, closed: bool) -> None:
        self._code = code
        if self.highlighter.streaming and closed:
            self.highlighter.streaming = False
            self.code_text.set_code(code)
            self.highlighter.rehighlightBlock(self.code_text.document().lastBlock())
        else:
            self.highlighter.streaming = not closed
            self.code_text.set_code(code, streaming=not closed)
        if not self._guessed and (closed or code.count("\n") >= GUESS_AFTER_LINES):
            # Once, not per batch: guessing tries every lexer pygments has.
            self._guessed = True
            self.highlighter.set_lexer(lexer_for("", code))
            self._show_language()

    @Slot()
    def copy_code(self) -> None:
        QGuiApplication.clipboard().setText(self._code)
        self.sig_copied.emit(self._code)
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, self.copy_button, lambda: self.copy_button.setText("Copy"))
