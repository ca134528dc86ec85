"""An answer's text in parts: prose and fenced code blocks (the thinking
before them is split off by `engines.thinking`). Pure text, no Qt: the chat
renders the parts, exports keep the text whole.

Fences follow CommonMark: three or more backticks or tildes open a block; a
line of the same character, at least as many, closes it, so a longer fence
can hold a shorter one. A fence still open (the answer is streaming, or was
stopped) runs to the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zeta_desktop.core.engines.thinking import Thinking, split_thinking

__all__ = ["Code", "Part", "Prose", "Thinking", "answer_parts", "split_thinking"]

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*([^`\n]*?)[ \t]*$")


@dataclass(frozen=True)
class Prose:
    text: str
    start: int = 0  # where its first line begins in the text parsed


@dataclass(frozen=True)
class Code:
    language: str  # as the fence named it ("" when it did not)
    code: str
    closed: bool
    fence: str  # the opening fence (for the Markdown source)
    start: int = 0  # where its opening fence begins in the text parsed


Part = Prose | Code


def answer_parts(text: str, offset: int = 0) -> list[Part]:
    """Prose and code blocks in order; empty prose between blocks is dropped.

    Every part but the last is final once its text is: a stream re-parses
    only from the last part's `start` (`offset` adds to the starts given)."""
    parts: list[Part] = []
    prose: list[str] = []
    prose_start = 0
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None or (match.group(2)[0] == "`" and "`" in match.group(3)):
            if not prose:
                prose_start = starts[index]
            prose.append(lines[index])
            index += 1
            continue
        if prose:
            _add_prose(parts, "\n".join(prose), offset + prose_start)
            prose = []
        fence_start = starts[index]
        indent, fence, info = len(match.group(1)), match.group(2), match.group(3)
        body: list[str] = []
        index += 1
        closed = False
        while index < len(lines):
            line = lines[index]
            stripped = line.lstrip(" ")
            if (len(line) - len(stripped) <= 3 and stripped.startswith(fence[0] * len(fence))
                    and not stripped.rstrip().strip(fence[0])):
                closed = True
                index += 1
                break
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            index += 1
        language = info.split()[0] if info.strip() else ""
        parts.append(Code(language, "\n".join(body), closed, fence, offset + fence_start))
    if prose:
        _add_prose(parts, "\n".join(prose), offset + prose_start)
    return parts


def _add_prose(parts: list[Part], text: str, start: int) -> None:
    if text.strip():
        parts.append(Prose(text.strip("\n"), start))


