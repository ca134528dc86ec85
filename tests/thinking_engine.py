"""A real engine whose answer is driven to think first: `<think>`, some of the
model's own tokens, `</think>`, then the rest of them as the answer.

The tiny model writes random words and never thinks on its own; wrapping its
stream in the tags a thinking model (Qwen3, a DeepSeek-R1 distill) writes
makes the chat's thinking section testable with real tokens. It can hold the
stream halfway through the thinking (`reached`, until `release` or Stop), so
a test looks at a thought in progress without racing the model.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from wrapped_engine import WrappedEngine

from zeta_desktop.core.engines.base import ChatMessage, Engine, LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine


class ThinkingEngine(WrappedEngine):
    def __init__(self, inner: Engine, think_tokens: int, reached: threading.Event,
                 release: threading.Event) -> None:
        super().__init__(inner)
        self._think_tokens = think_tokens
        self.reached, self.release = reached, release


    def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                    temperature: float, cancel: threading.Event,
                    sampling: Mapping[str, float] | None = None) -> Iterator[str]:
        yield "<think>\n"
        pieces = self._inner.stream_chat(messages, max_tokens=max_tokens,
                                         temperature=temperature, cancel=cancel,
                **({"sampling": sampling} if sampling else {}))
        for count, piece in enumerate(pieces, 1):
            yield piece
            if count == self._think_tokens // 2:
                self.reached.set()
                while not (cancel.is_set() or self.release.is_set()):
                    cancel.wait(0.05)  # wakes on Stop; release is checked as well
            if count == self._think_tokens:
                yield "\n</think>\n\n"


def thinking_loader(think_tokens: int, reached: threading.Event,
                    release: threading.Event):  # type: ignore[no-untyped-def]
    def load(path: Path, settings: LoadSettings) -> Engine:
        return ThinkingEngine(LlamaEngine.load(path, settings), think_tokens, reached, release)

    return load
