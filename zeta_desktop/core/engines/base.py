"""What a worker needs from an inference engine, independent of the backend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

ChatMessage = dict[str, str]


class EngineError(Exception):
    """An engine failure whose message is meant for the user."""


class ModelLoadError(EngineError):
    pass


class PromptTooLongError(EngineError):
    pass


class TransientEngineError(EngineError):
    """The server is busy or briefly unavailable (429, 503): not the model's
    fault. The job waits or goes elsewhere; the breaker does not trip."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NoRoleAvailableError(Exception):
    """No loaded model can serve the task; the message says why for each role."""


@dataclass(frozen=True)
class LoadSettings:
    n_ctx: int
    n_gpu_layers: int
    n_threads: int
    embedding: bool
    low_priority: bool = False  # run the owning thread below the GUI (thread_priority)


class CancelEvent(threading.Event):
    """A cancel flag that can also act at once: an engine blocked in a read
    (an HTTP stream) registers how to abort it, and `set()` runs that on the
    cancelling thread. A flag checked between tokens would wait for the next
    token, which a stalled server never sends."""

    def __init__(self) -> None:
        super().__init__()
        self._on_set: list[Callable[[], None]] = []
        self._hooks_lock = threading.Lock()

    def on_set(self, action: Callable[[], None]) -> Callable[[], None]:
        """Run `action` when set (at once if already set); returns its remover."""
        with self._hooks_lock:
            self._on_set.append(action)
        if self.is_set():
            action()

        def remove() -> None:
            with self._hooks_lock:
                if action in self._on_set:
                    self._on_set.remove(action)

        return remove

    def set(self) -> None:
        super().set()
        with self._hooks_lock:
            actions = list(self._on_set)
        for action in actions:
            action()


class Engine(Protocol):
    """One loaded model. Not thread-safe: only its owning worker thread calls it
    (a remote engine is, and its worker runs one thread per server slot)."""

    # Whether count_tokens works here. When not (a remote server), the whole
    # conversation is sent and the server fits it, or says it is too long.
    counts_tokens: bool

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
        sampling: Mapping[str, float] | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield text pieces; stop at the next token once `cancel` is set.
        `sampling`: top_p, top_k, min_p, repeat_penalty the user set; `stop`:
        strings that end the answer (left out of it); `seed`: the sampler's
        seed for this answer. Each is passed only when set, so an engine that
        takes none may omit them."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per input text."""
        ...

    def close(self) -> None: ...
