"""What a worker needs from an inference engine, independent of the backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

ChatMessage = dict[str, str]


class EngineError(Exception):
    """An engine failure whose message is meant for the user."""


class ModelLoadError(EngineError):
    pass


class PromptTooLongError(EngineError):
    pass


class NoRoleAvailableError(Exception):
    """No loaded model can serve the task; the message says why for each role."""


@dataclass(frozen=True)
class LoadSettings:
    n_ctx: int
    n_gpu_layers: int
    n_threads: int
    embedding: bool
    low_priority: bool = False  # run the owning thread below the GUI (thread_priority)


class Engine(Protocol):
    """One loaded model. Not thread-safe: only its owning worker thread calls it."""

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        cancel: threading.Event,
    ) -> Iterator[str]:
        """Yield text pieces; stop at the next token once `cancel` is set."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per input text."""
        ...

    def close(self) -> None: ...
