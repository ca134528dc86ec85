"""Sections cut into chunks the embedder reads whole, sized in its own tokens.

Prose is cut at its structure: a chunk never spans two headings' sections,
and it breaks between paragraphs; only a paragraph too long for one chunk is
cut inside, between sentences. Code is cut at its definitions (a function,
a class, with the decorators and comments just above them); a definition too
long for one chunk is cut between its lines, at blank lines where it can.
Small neighbours are packed together up to the target size.

Token counts come from the embedding model's tokenizer in one batch per
file (`count_tokens`); a piece is cut by its share of characters and the
result counted again, so every chunk's stored size is the embedder's.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zeta_desktop.core.documents.extract import Section

TokenCounter = Callable[[Sequence[str]], list[int]]

TARGET_TOKENS = 192  # near what small sentence embedders were trained on
MAX_TOKENS = 256
# Definitions are packed together only while this small (imports, constants,
# one-line helpers): a function or class of any size is a chunk of its own.
CODE_PACK_TOKENS = 64


@dataclass(frozen=True)
class Chunk:
    text: str
    heading: str = ""
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    tokens: int = 0

    def for_embedding(self) -> str:
        """The heading travels with the text: 'Installing' under 'Linux' means more."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class _Piece:
    text: str
    line_start: int | None
    line_end: int | None


def chunk_sections(
    sections: Sequence[Section],
    kind: str,
    count_tokens: TokenCounter,
    target: int = TARGET_TOKENS,
    maximum: int = MAX_TOKENS,
) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in sections:
        pieces = _code_pieces(section) if kind == "code" else _paragraphs(section)
        if not pieces:
            continue
        sizes = count_tokens([p.text for p in pieces])
        code = kind == "code"
        pack_limit = min(target, CODE_PACK_TOKENS) if code else target
        lines = section.text.split("\n")
        for group in _pack(pieces, sizes, pack_limit, target, maximum,
                           joiner="\n" if code else "\n\n"):
            text = group.text
            if code and section.line_start is not None and group.line_start is not None \
                    and group.line_end is not None and group.line_end > group.line_start:
                # The source as it stands, blank lines between definitions included.
                offset = section.line_start
                text = "\n".join(lines[group.line_start - offset:group.line_end - offset + 1])
            chunks.append(Chunk(text, section.heading, section.page,
                                group.line_start, group.line_end))
    if not chunks:
        return []
    # The stored size is the embedder's count of what it will read.
    sizes = count_tokens([c.for_embedding() for c in chunks])
    return [Chunk(c.text, c.heading, c.page, c.line_start, c.line_end, n)
            for c, n in zip(chunks, sizes, strict=True)]


def _paragraphs(section: Section) -> list[_Piece]:
    pieces: list[_Piece] = []
    first = section.line_start
    lines = section.text.split("\n")
    start: int | None = None
    for offset, line in enumerate([*lines, ""]):
        if line.strip():
            if start is None:
                start = offset
            continue
        if start is not None:
            text = "\n".join(lines[start:offset]).strip()
            pieces.append(_Piece(text, _line(first, start), _line(first, offset - 1)))
            start = None
    return pieces


def _line(first: int | None, offset: int) -> int | None:
    return None if first is None else first + offset


# A line that starts a definition in the languages people keep most code in.
_DEFINITION = re.compile(
    r"^(?:export\s+)?(?:default\s+)?(?:pub(?:\([^)]*\))?\s+)?(?:public\s+|private\s+|"
    r"protected\s+|internal\s+|static\s+|final\s+|abstract\s+|async\s+|unsafe\s+|inline\s+)*"
    r"(?:def|class|function|fn|func|impl|struct|enum|trait|interface|type|module|object|"
    r"record|namespace|template|macro_rules!|const\s+\w+\s*=\s*(?:async\s*)?\(|"
    r"let\s+\w+\s*=\s*(?:async\s*)?\()\b"
)
# C-like definitions: a return type, a name, an argument list, no semicolon.
_C_DEFINITION = re.compile(r"^[A-Za-z_][\w\s\*&:<>,]*\s[\*&]?\s*[A-Za-z_][\w:]*\s*\([^;]*$")
_ATTACHED = re.compile(r"^(?:@|#\[|//|#(?!include)|/\*|\*|--|;)")


def _code_pieces(section: Section) -> list[_Piece]:
    """One piece per top-level definition; what lies between them is a piece too."""
    lines = section.text.split("\n")
    starts = [0]
    for index, line in enumerate(lines):
        if index == 0 or not line or line[0].isspace():
            continue
        if _DEFINITION.match(line) or _C_DEFINITION.match(line):
            begin = index
            # Decorators and the comment right above belong to the definition.
            while begin > starts[-1] and lines[begin - 1].strip() and _ATTACHED.match(
                    lines[begin - 1].lstrip()):
                begin -= 1
            if begin > starts[-1]:
                starts.append(begin)
    starts.append(len(lines))
    first = section.line_start
    pieces = []
    for begin, end in itertools.pairwise(starts):
        while end > begin and not lines[end - 1].strip():
            end -= 1
        while begin < end and not lines[begin].strip():
            begin += 1
        if begin < end:
            pieces.append(_Piece("\n".join(lines[begin:end]), _line(first, begin),
                                 _line(first, end - 1)))
    return pieces


@dataclass
class _Group:
    text: str
    line_start: int | None
    line_end: int | None
    tokens: int


def _pack(pieces: list[_Piece], sizes: list[int], pack_limit: int, target: int, maximum: int,
          joiner: str) -> list[_Group]:
    """Neighbours joined while the group stays within `pack_limit`; a piece
    over `maximum` cut in parts of about `target` first."""
    groups: list[_Group] = []
    current: _Group | None = None
    for piece, size in zip(pieces, sizes, strict=True):
        parts = _cut(piece, size, target) if size > maximum else [(piece, size)]
        for part, part_size in parts:
            if current is not None and current.tokens + part_size <= pack_limit:
                current.text += joiner + part.text
                current.line_end = part.line_end
                current.tokens += part_size
                continue
            if current is not None:
                groups.append(current)
            current = _Group(part.text, part.line_start, part.line_end, part_size)
    if current is not None:
        groups.append(current)
    return groups


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _cut(piece: _Piece, size: int, target: int) -> list[tuple[_Piece, int]]:
    """A piece too long for one chunk, in parts of about `target` tokens (by
    their share of characters), cut between lines, else sentences, else words."""
    lines = piece.text.split("\n")
    if len(lines) > 1:
        units = [(line + "\n", i) for i, line in enumerate(lines)]
    else:
        units = [(s + " ", 0) for s in _SENTENCE_END.split(piece.text)]
        if len(units) == 1:
            units = [(w + " ", 0) for w in piece.text.split(" ")]
    parts_wanted = math.ceil(size / target)
    per_part = max(1, len(piece.text) // parts_wanted)
    parts: list[tuple[_Piece, int]] = []
    text, first_line, chars = "", 0, 0
    for unit, line in units:
        if text and chars + len(unit) > per_part:
            parts.append(_sub_piece(piece, text, first_line, line - 1 if len(lines) > 1 else 0,
                                    size))
            text, first_line, chars = "", line, 0
        text += unit
        chars += len(unit)
    if text.strip():
        parts.append(_sub_piece(piece, text, first_line, len(lines) - 1, size))
    return parts


def _sub_piece(piece: _Piece, text: str, first: int, last: int,
               size: int) -> tuple[_Piece, int]:
    estimate = max(1, round(size * len(text) / max(1, len(piece.text))))
    if piece.line_start is None:
        return _Piece(text.strip(), None, None), estimate
    return _Piece(text.rstrip(), piece.line_start + first,
                  piece.line_start + max(first, last)), estimate
