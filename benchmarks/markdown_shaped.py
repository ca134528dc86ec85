"""A real engine whose answers are shaped as Markdown, for `make bench-ui`.

The demo model rarely writes Markdown on its own; the chat's cost while
answers stream depends on what it renders. This wraps the real llama.cpp
engine (the same decode load, token for token) and lays its tokens out as a
typical answer: a heading, paragraphs, a list, a table, a fenced code block,
then prose again, in turn.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from wrapped_engine import WrappedEngine

from zeta_desktop.core.engines.base import ChatMessage, Engine, LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine

# (what comes before a stretch of tokens, what each token is wrapped as, stretch length)
SHAPE = (
    ("## A heading\n\n", "{}", 30),
    ("\n\n", "{}", 30),
    ("\n\n- ", "{}", 12),
    ("\n- ", "{}", 12),
    ("\n\n| item | note |\n| --- | --- |\n| ", "{}", 10),
    (" |\n\n```python\ndef answer(values):\n    ", "{}", 24),
    ("\n    return values\n```\n\n", "**{}**", 6),
    ("", "{}", 40),
)


class MarkdownShapedEngine(WrappedEngine):
    def __init__(self, inner: Engine) -> None:
        super().__init__(inner)


    def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                    temperature: float, cancel: threading.Event,
                    sampling: Mapping[str, float] | None = None) -> Iterator[str]:
        stage, left = 0, 0
        for piece in self._inner.stream_chat(messages, max_tokens=max_tokens,
                                             temperature=temperature, cancel=cancel,
                **({"sampling": sampling} if sampling else {})):
            if left == 0:
                before, _wrap, left = SHAPE[stage % len(SHAPE)]
                stage += 1
                if before:
                    yield before
            left -= 1
            text = piece.replace("`", "'").replace("\n", " ")
            yield SHAPE[(stage - 1) % len(SHAPE)][1].format(text) if text.strip() else text


def load_markdown_shaped(path: Path, settings: LoadSettings) -> Engine:
    return MarkdownShapedEngine(LlamaEngine.load(path, settings))
