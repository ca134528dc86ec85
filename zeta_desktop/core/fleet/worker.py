"""One thread per model: it loads the engine, owns it, and runs its queue of jobs.

`llama_cpp.Llama` is not thread-safe (two threads on one instance abort the
process), so nothing but this thread ever touches the engine.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from zeta_desktop.core.engines.base import ChatMessage, Engine, EngineError, LoadSettings
from zeta_desktop.core.engines.context_fit import fit_messages_counted
from zeta_desktop.core.engines.thinking import ThinkingCounter
from zeta_desktop.core.fleet.thread_priority import lower_current_thread_priority

log = logging.getLogger(__name__)


class WorkerState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ChatStats:
    n_tokens: int
    ttft_s: float  # from the job starting on the worker to its first token
    decode_s: float  # from the first token to the last
    total_s: float  # from submit to the end, queueing included
    queued_s: float
    prompt_tokens: int = 0  # the prompt as sent, after older turns were dropped to fit
    thinking_tokens: int = 0  # of n_tokens, those inside the model's thinking tags
    thinking_s: float | None = None  # from the job starting to the last thinking token

    @property
    def tokens_per_s(self) -> float:
        # The first token arrives at ttft; the rest are decode.
        if self.n_tokens < 2 or self.decode_s <= 0:
            return 0.0
        return (self.n_tokens - 1) / self.decode_s


class ChatListener:
    """Callbacks for one chat job. Called on the worker thread: keep them short."""

    def on_started(self, job: ChatJob, role: str) -> None: ...
    def on_token(self, job: ChatJob, text: str) -> None: ...
    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None: ...
    def on_failed(
        self,
        job: ChatJob,
        role: str,
        message: str,
        partial: bool,
        error: Exception | None = None,
    ) -> None: ...


class ChatWaiter(ChatListener):
    """Collects one job's outcome for callers with no event loop (CLI, benchmarks)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.stats: ChatStats | None = None
        self.error = ""

    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None:
        self.stats = stats
        self.done.set()

    def on_failed(
        self,
        job: ChatJob,
        role: str,
        message: str,
        partial: bool,
        error: Exception | None = None,
    ) -> None:
        self.error = message
        self.done.set()


@dataclass(eq=False)
class ChatJob:
    messages: Sequence[ChatMessage]
    listener: ChatListener
    max_tokens: int
    temperature: float
    cancel: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.perf_counter)
    tag: object = None  # the submitter's handle (a turn id, a benchmark record)


@dataclass(eq=False)
class EmbedJob:
    texts: Sequence[str]
    result: Future[list[list[float]]] = field(default_factory=Future)


_SHUTDOWN = object()

EngineFactory = Callable[[Path, LoadSettings], Engine]
StateCallback = Callable[[str, WorkerState, str], None]


class ModelWorker:
    """Owns one engine on one thread; jobs go through its queue."""

    def __init__(
        self,
        role: str,
        model_path: Path,
        settings: LoadSettings,
        engine_factory: EngineFactory,
        on_state: StateCallback | None = None,
    ) -> None:
        self.role = role
        self.model_path = model_path
        self.settings = settings
        self._engine_factory = engine_factory
        self._on_state = on_state
        self._queue: queue.Queue[object] = queue.Queue()
        self._state = WorkerState.LOADING
        self._detail = ""
        self._state_lock = threading.Lock()
        self._current: ChatJob | None = None
        self._current_since: float | None = None  # perf_counter() when it started
        self._ready = threading.Event()
        self._closing = False
        self._submit_lock = threading.Lock()
        self.load_seconds: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"zeta-model-{role}", daemon=True)

    # -- any thread ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def state(self) -> WorkerState:
        with self._state_lock:
            return self._state

    @property
    def detail(self) -> str:
        with self._state_lock:
            return self._detail

    @property
    def queue_depth(self) -> int:
        """Jobs waiting, not counting the one running."""
        return self._queue.qsize()

    @property
    def in_flight(self) -> int:
        return 1 if self._current is not None else 0

    @property
    def running_for_s(self) -> float | None:
        """How long the running chat job has run, or None when none runs."""
        since = self._current_since  # read once: the worker thread may clear it
        return None if since is None else time.perf_counter() - since

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """True once the load finished, whether it worked or not."""
        return self._ready.wait(timeout)

    def submit(self, job: ChatJob | EmbedJob) -> None:
        with self._submit_lock:
            if not self._closing:
                self._queue.put(job)
                return
        # After shutdown nobody would ever run it: say so at once.
        self._reject(job, f"{self.role} was shut down")

    def cancel_all(self) -> None:
        current = self._current
        if current is not None:
            current.cancel.set()
        for job in self._drain():
            self._reject(job, "stopped before it started")

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the current job, drop queued ones, close the engine, end the thread."""
        with self._submit_lock:
            self._closing = True
        self.cancel_all()
        self._queue.put(_SHUTDOWN)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # -- worker thread ------------------------------------------------------

    def _set_state(self, state: WorkerState, detail: str = "") -> None:
        with self._state_lock:
            if self._state is state and self._detail == detail:
                return
            self._state, self._detail = state, detail
        if self._on_state is not None:
            self._on_state(self.role, state, detail)

    def _drain(self) -> list[object]:
        drained = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return drained
            if item is _SHUTDOWN:
                self._queue.put(_SHUTDOWN)
                return drained
            drained.append(item)

    def _reject(self, job: object, message: str) -> None:
        if isinstance(job, ChatJob):
            job.listener.on_failed(job, self.role, message, partial=False)
        elif isinstance(job, EmbedJob) and not job.result.done():
            job.result.set_exception(EngineError(message))

    def _run(self) -> None:
        engine: Engine | None = None
        if self.settings.low_priority:
            # Before the load, so that threads the backend starts inherit it.
            why_not = lower_current_thread_priority()
            if why_not:
                log.info("%s runs at normal priority: %s", self.role, why_not)
        self._set_state(WorkerState.LOADING, self.model_path.name)
        started = time.perf_counter()
        try:
            engine = self._engine_factory(self.model_path, self.settings)
        except EngineError as exc:
            self._set_state(WorkerState.UNAVAILABLE, str(exc))
        except Exception as exc:  # a backend bug must not kill the thread silently
            log.exception("loading %s failed", self.model_path)
            self._set_state(WorkerState.UNAVAILABLE, f"{type(exc).__name__}: {exc}")
        else:
            self.load_seconds = time.perf_counter() - started
            self._set_state(WorkerState.READY)
        self._ready.set()
        try:
            while True:
                job = self._queue.get()
                if job is _SHUTDOWN:
                    break
                if engine is None:
                    self._reject(job, f"{self.role} is unavailable: {self.detail}")
                    continue
                self._set_state(WorkerState.BUSY)
                try:
                    if isinstance(job, ChatJob):
                        self._run_chat(engine, job)
                    elif isinstance(job, EmbedJob):
                        self._run_embed(engine, job)
                finally:
                    if self._queue.empty():
                        self._set_state(WorkerState.READY)
        finally:
            if engine is not None:
                engine.close()
            self._set_state(WorkerState.STOPPED)

    def _run_embed(self, engine: Engine, job: EmbedJob) -> None:
        if not job.result.set_running_or_notify_cancel():
            return
        try:
            job.result.set_result(engine.embed(job.texts))
        except EngineError as exc:
            job.result.set_exception(exc)
        except Exception as exc:
            log.exception("embedding on %s failed", self.role)
            job.result.set_exception(EngineError(f"{type(exc).__name__}: {exc}"))

    def _run_chat(self, engine: Engine, job: ChatJob) -> None:
        if job.cancel.is_set():
            job.listener.on_failed(job, self.role, "stopped before it started", partial=False)
            return
        started = self._current_since = time.perf_counter()
        self._current = job
        first_token_at: float | None = None
        last_token_at = started
        n_tokens = prompt_tokens = 0
        thinking = ThinkingCounter()
        job.listener.on_started(job, self.role)
        try:
            messages, max_tokens, prompt_tokens = fit_messages_counted(
                job.messages, engine.n_ctx, job.max_tokens, engine.count_tokens
            )
            for piece in engine.stream_chat(
                messages,
                max_tokens=max_tokens,
                temperature=job.temperature,
                cancel=job.cancel,
            ):
                last_token_at = time.perf_counter()
                if first_token_at is None:
                    first_token_at = last_token_at
                n_tokens += 1
                thinking.feed(piece, last_token_at)
                job.listener.on_token(job, piece)
        except EngineError as exc:
            job.listener.on_failed(job, self.role, str(exc), partial=n_tokens > 0, error=exc)
            return
        except Exception as exc:  # the model crashed mid-answer: report, keep the thread
            log.exception("chat on %s failed", self.role)
            job.listener.on_failed(
                job, self.role, f"{type(exc).__name__}: {exc}", partial=n_tokens > 0, error=exc
            )
            return
        finally:
            self._current = None
            self._current_since = None
        ended = time.perf_counter()
        stats = ChatStats(
            n_tokens=n_tokens,
            ttft_s=(first_token_at - started) if first_token_at else ended - started,
            decode_s=(last_token_at - first_token_at) if first_token_at else 0.0,
            total_s=ended - job.submitted_at,
            queued_s=started - job.submitted_at,
            prompt_tokens=prompt_tokens,
            thinking_tokens=thinking.thinking_tokens(),
            thinking_s=thinking.thinking_seconds(started),
        )
        job.listener.on_finished(job, self.role, job.cancel.is_set(), stats)
