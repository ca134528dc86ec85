"""A real engine whose answer pauses after a set number of tokens, so tests never race it.

The tiny model streams hundreds of tokens a second: a check that an answer
is still streaming (Stop, a switch, a kill) could come after it ended.
`GatedEngine` wraps the real llama.cpp engine and, once `hold_after` tokens
are out, holds the stream until the job is cancelled (Stop) or `release` is
set. It changes no token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from wrapped_engine import WrappedEngine

from zeta_desktop.core.engines.base import ChatMessage, Engine, LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine


class GatedEngine(WrappedEngine):
    def __init__(self, inner: Engine, hold_after: int, reached: threading.Event,
                 release: threading.Event) -> None:
        super().__init__(inner)
        self._hold_after = hold_after
        self.reached = reached
        self.release = release


    def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                    temperature: float, cancel: threading.Event,
                    sampling: Mapping[str, float] | None = None) -> Iterator[str]:
        for count, piece in enumerate(self._inner.stream_chat(
                messages, max_tokens=max_tokens, temperature=temperature, cancel=cancel,
                **({"sampling": sampling} if sampling else {})), 1):
            yield piece
            if count == self._hold_after:
                self.reached.set()
                while not (cancel.is_set() or self.release.is_set()):
                    cancel.wait(0.05)  # wakes on Stop; release is checked as well


def gated_loader(hold_after: int, reached: threading.Event,
                 release: threading.Event):  # type: ignore[no-untyped-def]
    """An engine loader whose every chat answer holds after `hold_after` tokens."""

    def load(path: Path, settings: LoadSettings) -> Engine:
        return GatedEngine(LlamaEngine.load(path, settings), hold_after, reached, release)

    return load
