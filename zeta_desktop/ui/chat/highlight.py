"""Syntax highlighting of code blocks with pygments, a line at a time.

Qt asks a QSyntaxHighlighter to highlight only the lines (blocks) that
changed, so a code block that streams in is highlighted a line at a time,
never whole on every token batch. Pygments lexes whole texts, not lines: a
line inside a multi-line string or comment needs the lines before it. So each
line records whether it ended in plain code (state 0) or inside such a
construct (state 1), and a line is lexed together with the lines back to the
last one that ended in plain code. Qt re-highlights the following line
whenever a line's state changes, which carries a string opened here onward.
"""

from __future__ import annotations

import functools
import logging
import re

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.lexers.special import TextLexer
from pygments.styles import get_style_by_name
from pygments.token import Comment, String, Token, _TokenType
from pygments.util import ClassNotFound
from PySide6.QtGui import (
    QColor,
    QFont,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)

log = logging.getLogger(__name__)

PLAIN, OPEN = 0, 1  # a line's state: it ended in plain code, or inside a string or comment
_LOOK_BACK = 200  # lines lexed together at most (a runaway string stays cheap)
LIGHT_STYLE, DARK_STYLE = "friendly", "monokai"


# What an unnamed block is guessed among: pygments' own guess over all of its
# lexers names odd ones (scdoc for Python), so it weighs only these, with a
# few telltale starts of a line to break its ties.
GUESSABLE = {
    "python": re.compile(
        r"^\s*(def |class |import |from \S+ import |print\(|elif |async def )", re.M),
    "javascript": re.compile(r"^\s*(function |const |let |var |console\.log|export |=>)", re.M),
    "typescript": re.compile(r"^\s*(interface |type \w+ =|export (interface|type) )", re.M),
    "bash": re.compile(r"^\s*(#!/bin/(ba)?sh|\$ |sudo |apt |pip |cd |echo |export \w+=)", re.M),
    "c": re.compile(r"^\s*(#include|int main\(|printf\()", re.M),
    "cpp": re.compile(r"^\s*(#include <\w+>|std::|using namespace|template ?<)", re.M),
    "java": re.compile(r"^\s*(public (static )?(class|void)|System\.out\.)", re.M),
    "go": re.compile(r"^\s*(package |func |fmt\.)", re.M),
    "rust": re.compile(r"^\s*(fn |let mut |use \w+::|impl |pub fn )", re.M),
    "sql": re.compile(r"^\s*(SELECT |INSERT |UPDATE |DELETE |CREATE TABLE |WITH )", re.M | re.I),
    "json": re.compile(r"^\s*[{\[]\s*$|^\s*\"[\w-]+\":", re.M),
    "yaml": re.compile(r"^[\w-]+:( |$)", re.M),
    "html": re.compile(r"^\s*<(!DOCTYPE|html|div|p|span|body)\b", re.M | re.I),
    "css": re.compile(r"^\s*[.#]?[\w-]+\s*\{\s*$|^\s*[\w-]+:\s*[^;]+;\s*$", re.M),
}


def guess_language(code: str) -> str:
    """A language for an unnamed block, or "" when nothing fits."""
    scores = {}
    for name, telltale in GUESSABLE.items():
        hits = len(telltale.findall(code))
        if hits:
            scores[name] = hits + get_lexer_by_name(name).analyse_text(code)
    return max(scores, key=scores.__getitem__) if scores else ""


def warm_up() -> None:
    """Build the common lexers once, off the GUI thread.

    Pygments compiles a lexer's regular expressions the first time the lexer
    is made: ~100 ms for Python's, which the first code block of an answer
    paid on the GUI thread, in one piece."""
    for name in GUESSABLE:
        list(get_lexer_by_name(name).get_tokens_unprocessed("x = 1\n"))


def lexer_for(language: str, code: str = "") -> Lexer:
    """The fence's language, else a guess from the code once there is some, else text."""
    if not language and code.count("\n") >= 2:
        language = guess_language(code)
    if language:
        try:
            return get_lexer_by_name(language.lower(), stripnl=False, ensurenl=False)
        except ClassNotFound:
            pass
    return TextLexer(stripnl=False, ensurenl=False)


@functools.cache
def _formats(style_name: str) -> dict[_TokenType, QTextCharFormat]:
    style = get_style_by_name(style_name)
    formats = {}
    for token, spec in style:
        fmt = QTextCharFormat()
        if spec["color"]:
            fmt.setForeground(QColor(f"#{spec['color']}"))
        if spec["bold"]:
            fmt.setFontWeight(QFont.Weight.Bold)
        if spec["italic"]:
            fmt.setFontItalic(True)
        formats[token] = fmt
    return formats


@functools.cache
def format_for(style_name: str, token: _TokenType) -> QTextCharFormat | None:
    formats = _formats(style_name)
    while token is not Token:
        fmt = formats.get(token)
        if fmt is not None and fmt.foreground().style() != 0:
            return fmt
        token = token.parent
    return None


def _leaves_open(token: _TokenType) -> bool:
    """A newline inside this token means the construct goes on to the next line."""
    return token in String or token in Comment.Multiline or token in String.Doc


class PygmentsHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument, lexer: Lexer, dark: bool = False) -> None:
        super().__init__(document)
        self.lexer = lexer
        self.style_name = DARK_STYLE if dark else LIGHT_STYLE
        # While a block streams, its last line is still being written: it is
        # highlighted once complete (its newline came), not on every token.
        self.streaming = False

    def set_lexer(self, lexer: Lexer) -> None:
        if type(lexer) is not type(self.lexer):
            self.lexer = lexer
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt's name)
        if isinstance(self.lexer, TextLexer):
            self.setCurrentBlockState(PLAIN)
            return
        if self.streaming and not self.currentBlock().next().isValid():
            self.setCurrentBlockState(self.previousBlockState())
            return
        # The lines back to the last one that ended in plain code.
        lines = [text]
        block = self.currentBlock().previous()
        while block.isValid() and block.userState() == OPEN and len(lines) < _LOOK_BACK:
            lines.append(block.text())
            block = block.previous()
        lines.reverse()
        source = "\n".join(lines) + "\n"
        here = len(source) - len(text) - 1  # where this line starts in `source`
        state = PLAIN
        try:
            for start, token, value in self.lexer.get_tokens_unprocessed(source):
                end = start + len(value)
                if end <= here:
                    continue
                if end >= len(source):  # the token holding this line's newline
                    state = OPEN if _leaves_open(token) else PLAIN
                fmt = format_for(self.style_name, token)
                if fmt is not None:
                    first = max(start, here) - here
                    self.setFormat(first, min(end, len(source) - 1) - here - first, fmt)
        except Exception:  # a lexer bug must not break the chat
            log.exception("highlighting with %s failed", type(self.lexer).__name__)
        self.setCurrentBlockState(state)
