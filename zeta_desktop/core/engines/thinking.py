"""A thinking model's reasoning, told apart from its answer. Pure text.

Thinking models write their reasoning between tags before the answer:
`<think>…</think>` (Qwen3, DeepSeek-R1 distills, Phi-4-reasoning),
`<thinking>`, `<reasoning>` or Mistral's `[THINK]…[/THINK]`. Some chat
templates open the tag in the prompt, so the answer starts inside it and only
the closing tag appears: text before a closing tag with no opening one is
thinking too. The worker counts thinking tokens with these rules; the chat
shows the thinking in its own section.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

THINK_TAGS = (("<think>", "</think>"), ("<thinking>", "</thinking>"),
              ("<reasoning>", "</reasoning>"), ("[THINK]", "[/THINK]"))


@dataclass(frozen=True)
class Thinking:
    text: str
    done: bool  # the closing tag has come


def split_thinking(text: str) -> tuple[Thinking | None, str]:
    """(the thinking, or None) and the answer after it."""
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    for opening, closing in THINK_TAGS:
        if stripped.startswith(opening):
            body = stripped[len(opening):]
            end = body.find(closing)
            if end < 0:
                return Thinking(body.strip("\n"), False), ""
            return Thinking(body[:end].strip("\n"), True), body[end + len(closing):].lstrip("\n")
        if stripped and opening.startswith(stripped):
            return Thinking("", False), ""  # the tag itself still arriving
    for opening, closing in THINK_TAGS:
        end = text.find(closing)
        if end >= 0 and opening not in text[:end]:  # the template opened it in the prompt
            return Thinking(text[lead:end].strip("\n"), True), text[end + len(closing):].lstrip(
                "\n")
    return None, text


class ThinkingCounter:
    """Which of a stream's tokens were thinking, decided once the stream ends
    (a template that opens the tag in the prompt shows only the closing one)."""

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._ends: list[int] = []  # where each token's text ends in the answer
        self._times: list[float] = []
        self._length = 0

    def feed(self, piece: str, at: float) -> None:
        self._pieces.append(piece)
        self._length += len(piece)
        self._ends.append(self._length)
        self._times.append(at)

    def thinking_tokens(self) -> int:
        text = "".join(self._pieces)
        thinking, answer = split_thinking(text)
        if thinking is None:
            return 0
        if not thinking.done:
            return len(self._ends)
        return bisect.bisect_right(self._ends, len(text) - len(answer))

    def thinking_seconds(self, started: float) -> float | None:
        """From `started` to the last thinking token; None if there was no thinking."""
        count = self.thinking_tokens()
        return self._times[count - 1] - started if count else None
