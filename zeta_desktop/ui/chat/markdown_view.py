"""Prose of an answer rendered as Markdown (Qt's own reader, md4c).

Model output is untrusted: raw HTML is shown as text (MarkdownNoHTML), an
image never loads (it becomes a link the user can see, and no resource is
ever fetched, remote or local), and a link opens in the browser only when
clicked (http, https and mailto), its target shown on hover.

While an answer streams, only its last block changes: the text before the
last blank line is final, so it is inserted once and the rest (the growing
paragraph, list or table) is replaced on each batch, and Qt lays out only
the blocks that changed. Selection works all along; copying keeps the
Markdown (the selection converted back by Qt, not the plain text).
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import (
    QContextMenuEvent,
    QDesktopServices,
    QFont,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QTextCursor,
    QTextDocument,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QMenu, QSizePolicy, QTextBrowser, QToolTip, QWidget

_FEATURES = QTextDocument.MarkdownFeature(
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub.value
    | QTextDocument.MarkdownFeature.MarkdownNoHTML.value
)
OPENABLE_SCHEMES = ("http", "https", "mailto")
# The app's own links: a citation [n] (the passage, in the app's viewer) and a
# past message (`/similar`'s hits). Never a file or a URL.
INTERNAL_SCHEMES = ("zeta-cite", "zeta-message")
_CITATION = re.compile(r"(?<![\[\w\\])\[(\d{1,2})\](?![(\[:])")
_CODE_OR_TEXT = re.compile(r"(`+[^`]*`+)")


def link_citations(markdown: str, count: int) -> str:
    """[1]..[count] as links to the passages (outside code spans); other
    bracketed numbers stay as they are."""
    if count <= 0:
        return markdown

    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if not 1 <= number <= count:
            return match.group(0)
        return f"[\\[{number}\\]](zeta-cite:{number})"

    pieces = _CODE_OR_TEXT.split(markdown)
    return "".join(piece if index % 2 else _CITATION.sub(link, piece)
                   for index, piece in enumerate(pieces))
_IMAGE = re.compile(r"!\[")
# Text that cannot change the Markdown before it: letters, digits, spaces and
# the punctuation that has no meaning in Markdown after a word.
_PLAIN_WORDS = re.compile(r"(?:[^\W_]|[ ,.;:'\"?()/%-])+")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def without_images(markdown: str) -> str:
    """`![alt](url)` becomes `[image: alt](url)`, a link, outside code spans."""
    if "![" not in markdown:
        return markdown
    pieces, last = [], 0
    for span in _CODE_SPAN.finditer(markdown):
        pieces.append(_IMAGE.sub("[image: ", markdown[last:span.start()]))
        pieces.append(span.group(0))
        last = span.end()
    pieces.append(_IMAGE.sub("[image: ", markdown[last:]))
    return "".join(pieces)


class ProseView(QTextBrowser):
    sig_link_hovered = Signal(str)
    """The pointer is over a link (its target), or left it ("")."""
    sig_internal_link = Signal(str)
    """One of the app's own links was clicked (a citation, a past message)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.viewport().setAutoFillBackground(False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().setDocumentMargin(0)
        self.anchorClicked.connect(self._on_link_clicked)
        self.highlighted.connect(self._on_link_hovered)
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self._source = ""
        self._committed = ""  # the part of the source inserted for good (complete blocks)
        self._tail_at = 0  # where the still-growing part starts in the document
        self.setFixedHeight(self.fontMetrics().lineSpacing())

    # -- content ---------------------------------------------------------------------

    def markdown(self) -> str:
        """The Markdown shown, as the model wrote it."""
        return self._source

    def set_markdown(self, markdown: str) -> None:
        """Show `markdown` whole (a finished answer: rendered once)."""
        if markdown == self._source and not self._committed:
            return
        self._source = markdown
        self._committed, self._tail_at = "", 0
        self.document().setMarkdown(without_images(markdown), _FEATURES)

    def stream_markdown(self, markdown: str) -> None:
        """Show `markdown`, which grew at its end: re-render only its last block."""
        if markdown == self._source:
            return
        if markdown.startswith(self._source) and self._append_plain(markdown[len(self._source):]):
            self._source = markdown
            return
        if not markdown.startswith(self._committed):
            self._committed, self._tail_at = "", 0
            self.document().clear()
        # Everything before the last blank line is complete blocks.
        blank = markdown.rfind("\n\n")
        complete = max(blank + 2 if blank >= 0 else 0, len(self._committed))
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        cursor.setPosition(self._tail_at)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if complete > len(self._committed) and _outside_fence(markdown[:complete]):
            cursor.insertMarkdown(without_images(markdown[len(self._committed):complete]),
                                  _FEATURES)
            self._committed = markdown[:complete]
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertBlock()
            self._tail_at = cursor.position()
        cursor.insertMarkdown(without_images(markdown[len(self._committed):]), _FEATURES)
        cursor.endEditBlock()
        self._source = markdown

    def _append_plain(self, text: str) -> bool:
        """Words added to plain text need no Markdown reader: type them in.

        Only text that cannot change what came before (no markup character,
        no line break) after text that is plain itself (not bold, a link,
        code or a heading); anything else goes through the reader."""
        if not self._source or not _PLAIN_WORDS.fullmatch(text):
            return False
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        current = cursor.charFormat()
        if (current.fontWeight() > QFont.Weight.Normal or current.fontItalic()
                or current.isAnchor() or current.fontFixedPitch()
                or current.fontPointSize() > 0 or cursor.block().blockFormat().headingLevel()
                or cursor.currentTable() is not None or cursor.currentList() is not None):
            return False
        cursor.insertText(text, current)
        return True

    # -- what the user does ------------------------------------------------------------

    def copy_markdown(self) -> None:
        """The selection, as Markdown, onto the clipboard (Ctrl+C, the menu's Copy).

        Through QClipboard.setText: a QMimeData made here and handed to Qt
        would be freed twice, by the clipboard and by Python, when the app exits.
        """
        markdown = self.textCursor().selection().toMarkdown().strip("\n")
        if markdown:
            QGuiApplication.clipboard().setText(markdown)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_markdown()
            event.accept()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 (Qt's name)
        menu = QMenu(self)
        copy = menu.addAction("Copy", self.copy_markdown)
        copy.setEnabled(self.textCursor().hasSelection())
        plain = menu.addAction("Copy as plain text", self.copy)
        plain.setEnabled(self.textCursor().hasSelection())
        menu.addAction("Select all", self.selectAll)
        menu.exec(event.globalPos())
        menu.deleteLater()

    def loadResource(self, _type: int, _name: QUrl) -> object:  # noqa: N802 (Qt's name)
        return None  # never a file, never the network

    @Slot(QUrl)
    def _on_link_clicked(self, url: QUrl) -> None:
        scheme = url.scheme().lower()
        if scheme in INTERNAL_SCHEMES:
            self.sig_internal_link.emit(url.toString())
        elif scheme in OPENABLE_SCHEMES:
            QDesktopServices.openUrl(url)

    @Slot(QUrl)
    def _on_link_hovered(self, url: QUrl) -> None:
        target = url.toString()
        self.viewport().setToolTip(target)
        if target:
            QToolTip.showText(self.cursor().pos(), target, self.viewport())
        self.sig_link_hovered.emit(target)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        event.ignore()  # the chat scrolls, not the paragraph

    @Slot()
    def _fit_height(self) -> None:
        height = int(self.document().size().height() + 0.999)
        if height != self.height():
            self.setFixedHeight(max(height, self.fontMetrics().lineSpacing()))


def _outside_fence(markdown: str) -> bool:
    """No code fence left open (prose never holds one: the answer's fences are
    split out before it gets here; this keeps a stray one from splitting)."""
    return markdown.count("```") % 2 == 0 and markdown.count("~~~") % 2 == 0
