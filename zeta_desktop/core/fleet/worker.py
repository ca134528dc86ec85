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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from zeta_desktop.core.engines.base import (
    CancelEvent,
    ChatMessage,
    Engine,
    EngineError,
    LoadSettings,
    PromptTooLongError,
    TransientEngineError,
)
from zeta_desktop.core.engines.context_fit import fit_messages_counted
from zeta_desktop.core.engines.thinking import ThinkingCounter
from zeta_desktop.core.fleet.prefix_cache import NO_PROMPT, PrefixRecord, PromptKeys, PromptReading
from zeta_desktop.core.fleet.reading_speed import PROBE_TEXT, ReadingSpeed, estimated_tokens
from zeta_desktop.core.fleet.thread_priority import lower_current_thread_priority

log = logging.getLogger(__name__)


class WorkerState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    UNLOADED = "unloaded"  # idle too long: the model is out of memory until a job needs it
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
    estimated_prompt_tokens: int = 0  # the job's routing-time size (ChatJob.prompt_tokens)
    hit_limit: bool = False  # the answer ran to its token budget (a local model says)
    # Of prompt_tokens, those a local model found in its cache (not read
    # again), and the seconds reading the rest took (None: not measured).
    cached_tokens: int = 0
    read_s: float | None = None

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
    cancel: threading.Event = field(default_factory=CancelEvent)
    submitted_at: float = field(default_factory=time.perf_counter)
    tag: object = None  # the submitter's handle (a turn id, a benchmark record)
    # Sampling the user set for the role (top_p, top_k, min_p, repeat_penalty);
    # empty: the model's own defaults.
    sampling: dict[str, float] = field(default_factory=dict)
    kind: str = ""  # the task kind it was routed as: the router prices the queue by it
    # The prompt's size as the router estimated it (estimate_prompt_tokens):
    # reading it is part of this job's time, so the queue is priced by it.
    prompt_tokens: int = -1
    # A client's own request (the OpenAI API's `stop` and `seed`); unset for the window.
    stop: tuple[str, ...] = ()
    seed: int | None = None
    raw: bool = False  # the last message's text is a raw completion's prompt (no template)
    # Set by the worker it is submitted to: of prompt_tokens, those its cache
    # was expected to hold then, and the job's place in its prefix record.
    held_tokens: int = 0
    prefix_ticket: int = 0

    def __post_init__(self) -> None:
        if self.prompt_tokens < 0:
            self.prompt_tokens = estimate_prompt_tokens(self.messages)


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """About four characters a token. Cheap, and the same estimate wherever a
    job is sized, so the prefill rate learned against it calibrates it."""
    return sum(len(m.get("content") or "") for m in messages) // 4 + 4 * len(messages)


R = TypeVar("R")


@dataclass(eq=False)
class TextsJob(Generic[R]):
    """A job on a list of texts whose answer comes back through its Future."""

    texts: Sequence[str]
    result: Future[R] = field(default_factory=Future)


@dataclass(eq=False)
class EmbedJob(TextsJob[list[list[float]]]):
    """One embedding vector per text."""

    prefix_ticket: int = 0  # a local model's cache is emptied by embedding (llama.cpp)


@dataclass(eq=False)
class CountJob(TextsJob[list[int]]):
    """Token counts of texts in this model's tokenizer (chunk sizes for the
    embedder); a server that cannot count gets an estimate of 4 characters a token."""


Job = ChatJob | EmbedJob | CountJob


class _Shutdown(enum.Enum):
    """The queue's end-of-jobs marker; an enum, so `is _SHUTDOWN` narrows a queued item."""

    TOKEN = enum.auto()


_SHUTDOWN: Final = _Shutdown.TOKEN

EngineFactory = Callable[[Path, LoadSettings], Engine]
StateCallback = Callable[[str, WorkerState, str], None]


class ModelWorker:
    """Owns one engine on one thread; jobs go through its queue.

    A remote engine (a server with several slots) is served by one thread per
    slot, all taking jobs from the same queue; a local model always has one.
    """

    def __init__(
        self,
        role: str,
        model_path: Path,
        settings: LoadSettings,
        engine_factory: EngineFactory,
        on_state: StateCallback | None = None,
        slots: int = 1,
        remote: bool = False,
        idle_unload_s: float | None = None,
    ) -> None:
        self.role = role  # the endpoint's id: the role's name, or name#n for more replicas
        self.model_path = model_path
        self.remote = remote
        # Unload after this long without a job, reload on the next (a local
        # model only: Ollama's keep_alive). None: stay loaded.
        self.idle_unload_s = idle_unload_s if not remote and slots == 1 else None
        self.loads = 0  # how many times the model was loaded (idle unloads reload it)
        self.allocated_bytes = 0
        self.offloaded_layers: tuple[int, int] | None = None  # (on the GPU, of), llama.cpp's
        self._slots = max(1, slots)
        self._serving: list[threading.Thread] = []
        self._engine: Engine | None = None
        # What its cache holds (one prompt per slot), and how fast it reads.
        self.prefix = PrefixRecord(self._slots)
        self.reading_speed = ReadingSpeed()
        self._down = ""  # why the server is down (the health thread says), or ''
        self._server_load: tuple[int, int] | None = None  # (running, waiting) it reports
        # Share of prompt tokens the server read from its prefix cache lately
        # (vLLM's, SGLang's /metrics); None where it does not say.
        self.server_cache_hit_rate: float | None = None
        self.settings = settings
        self._engine_factory = engine_factory
        self._on_state = on_state
        self._queue: queue.Queue[Job | _Shutdown] = queue.Queue()
        self._state = WorkerState.LOADING
        self._detail = ""
        self._state_lock = threading.Lock()
        self._running: dict[int, tuple[ChatJob, float]] = {}  # thread id -> (job, started)
        self._running_lock = threading.Lock()
        self._embedding = 0  # embedding jobs running (indexing counts in the load)
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
    def slots(self) -> int:
        return self._slots

    @property
    def kv_stats(self) -> Any:
        """The local engine's saved KV states (kv_store.KvStats), or None."""
        return getattr(self._engine, "kv_stats", None)

    @property
    def queue_depth(self) -> int:
        """Jobs waiting, not counting those running; with a server's own
        waiting requests (other clients') when it reports them."""
        waiting = self._queue.qsize()
        load = self._server_load
        if load is not None:
            waiting += max(0, load[1])
        return waiting

    @property
    def in_flight(self) -> int:
        with self._running_lock:
            ours = len(self._running) + self._embedding
        load = self._server_load
        return max(ours, min(load[0], self._slots)) if load is not None else ours

    def pending_jobs(self) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
        """(task kind, prompt tokens) of the chat jobs waiting (in order) and
        running: the router prices each by its own reading and answer here."""
        with self._queue.mutex:  # Queue's own lock: a snapshot of its deque
            waiting = tuple((job.kind, job.prompt_tokens) for job in self._queue.queue
                            if isinstance(job, ChatJob))
        with self._running_lock:
            running = tuple((job.kind, job.prompt_tokens) for job, _ in self._running.values())
        return waiting, running

    @property
    def running_for_s(self) -> float | None:
        """How long the longest-running chat job has run (the first to free a
        slot), or None when none runs."""
        with self._running_lock:
            starts = [since for _, since in self._running.values()]
        return time.perf_counter() - min(starts) if starts else None

    # -- the health thread (remote replicas) ----------------------------------------

    def set_server_state(self, up: bool, detail: str = "",
                         load: tuple[int, int] | None = None,
                         slots: int | None = None,
                         cache_hit_rate: float | None = None) -> None:
        """What the server's health and load say. A down server gets nothing:
        its queued jobs go back to the router, and it recovers by itself."""
        self._server_load = load if up else None
        self.server_cache_hit_rate = cache_hit_rate if up else None
        if slots is not None and slots > self._slots:
            self._add_slots(slots)
        if not up:
            self._down = detail or "the server is down"
            self._set_state(WorkerState.UNAVAILABLE, self._down)
            for job in self._drain():
                self._reject(job, f"{self.role}: {self._down}", transient=True)
            return
        was_down, self._down = self._down, ""
        if was_down and self._engine is not None:
            with self._running_lock:
                busy = bool(self._running)
            self._set_state(WorkerState.BUSY if busy else WorkerState.READY)

    def _add_slots(self, slots: int) -> None:
        with self._submit_lock:
            if self._closing:
                return
            extra = slots - self._slots
            self._slots = slots
            self.prefix.set_slots(slots)
            engine = self._engine
        if engine is None:
            return  # started with the others once loaded
        for _ in range(extra):
            self._start_serving(engine)

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """True once the load finished, whether it worked or not."""
        return self._ready.wait(timeout)

    def reading(self, request: PromptKeys) -> PromptReading:
        """How this endpoint would read `request` once the jobs it holds have run."""
        held, prompt = self.prefix.held(request)
        return PromptReading(held, prompt, self.reading_speed.s_per_token)

    def submit(self, job: Job) -> None:
        with self._submit_lock:
            if not self._closing:
                self._expect(job)
                self._queue.put(job)
                return
        # After shutdown nobody would ever run it: say so at once. Not the
        # model's fault (a role swapped or the app closing): no breaker.
        self._reject(job, f"{self.role} was shut down", transient=True)

    def _expect(self, job: Job) -> None:
        """Once it runs, a chat job's prompt is what the cache holds; an
        embedding on a local model leaves it empty."""
        if isinstance(job, ChatJob):
            prompt = NO_PROMPT if job.raw else PromptKeys.of(job.messages)
            job.held_tokens = self.prefix.held(prompt)[0]
            job.prefix_ticket = self.prefix.expect(prompt)
        elif isinstance(job, EmbedJob) and not self.remote:
            job.prefix_ticket = self.prefix.expect(NO_PROMPT)

    def retire(self, timeout: float | None = None) -> None:
        """End once the jobs it holds (running and queued) are done; take no
        new ones and report no more states (a replacement now has its key)."""
        self._on_state = None
        with self._submit_lock:
            self._closing = True
        self._queue.put(_SHUTDOWN)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def cancel_all(self) -> None:
        with self._running_lock:
            running = [job for job, _ in self._running.values()]
        for job in running:
            job.cancel.set()
        for queued in self._drain():
            self._reject(queued, "stopped before it started")

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
        if self._down and state in (WorkerState.READY, WorkerState.BUSY):
            state, detail = WorkerState.UNAVAILABLE, self._down
        with self._state_lock:
            if self._state is state and self._detail == detail:
                return
            self._state, self._detail = state, detail
        if self._on_state is not None:
            try:
                self._on_state(self.role, state, detail)
            except Exception:  # a listener's bug must never end the model's thread
                log.exception("a state listener failed for %s", self.role)

    def _drain(self) -> list[Job]:
        drained: list[Job] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return drained
            if item is _SHUTDOWN:
                self._queue.put(_SHUTDOWN)
                return drained
            drained.append(item)

    def _reject(self, job: Job, message: str, transient: bool = False) -> None:
        if isinstance(job, ChatJob | EmbedJob) and job.prefix_ticket:
            self.prefix.withdraw(job.prefix_ticket)
        error = TransientEngineError(message) if transient else EngineError(message)
        if isinstance(job, ChatJob):
            job.listener.on_failed(job, self.role, message, partial=False, error=error)
        elif not job.result.done():
            job.result.set_exception(error)

    def _load_engine(self) -> Engine | None:
        self._set_state(WorkerState.LOADING, self.model_path.name)
        started = time.perf_counter()
        try:
            engine = self._engine_factory(self.model_path, self.settings)
        except EngineError as exc:
            self._set_state(WorkerState.UNAVAILABLE, str(exc))
            return None
        except Exception as exc:  # a backend bug must not kill the thread silently
            log.exception("loading %s failed", self.model_path)
            self._set_state(WorkerState.UNAVAILABLE, f"{type(exc).__name__}: {exc}")
            return None
        self.load_seconds = time.perf_counter() - started
        self.loads += 1
        # What llama.cpp said it allocated (a local model), to set against the estimate.
        self.allocated_bytes = sum(getattr(engine, "allocated", {}).values())
        self.offloaded_layers = getattr(engine, "offloaded", None)
        self._measure_reading(engine)
        self._set_state(WorkerState.READY)
        return engine

    def _measure_reading(self, engine: Engine) -> None:
        """A local model reads a short text once, so that its reading speed is
        known before its first answer (a reload keeps what answers measured)."""
        measure = getattr(engine, "measure_reading", None)
        if measure is None or self.reading_speed.s_per_token is not None:
            return
        try:
            measured = measure(PROBE_TEXT)
        except Exception:  # a measurement must never cost the model
            log.exception("measuring how fast %s reads failed", self.role)
            return
        if measured is not None:
            self.reading_speed.probed(measured[1], estimated_tokens(PROBE_TEXT))

    def _run(self) -> None:
        if self.settings.low_priority:
            # Before the load, so that threads the backend starts inherit it.
            why_not = lower_current_thread_priority()
            if why_not:
                log.info("%s runs at normal priority: %s", self.role, why_not)
        engine = self._load_engine()
        if engine is not None:
            with self._submit_lock:
                self._engine = engine
                extra = 0 if self._closing else self._slots - 1
            for _ in range(extra):
                self._start_serving(engine)
        self._ready.set()
        try:
            self._serve(engine)
        finally:
            for thread in list(self._serving):
                thread.join()
            if self._engine is not None:
                self._engine.close()
                self._engine = None
            self._set_state(WorkerState.STOPPED)

    def _start_serving(self, engine: Engine) -> None:
        thread = threading.Thread(target=self._serve, args=(engine,), daemon=True,
                                  name=f"zeta-model-{self.role}-{len(self._serving) + 2}")
        self._serving.append(thread)
        thread.start()

    def _serve(self, engine: Engine | None) -> None:
        """Take jobs until shutdown; one of these runs per slot."""
        unloaded = False
        while True:
            idle_limit = self.idle_unload_s if engine is not None else None
            try:
                job = self._queue.get(timeout=idle_limit)
            except queue.Empty:  # idle too long: give the memory back
                assert engine is not None  # only a loaded engine waits with a limit
                with self._submit_lock:
                    self._engine = None
                engine.close()
                self.prefix.forget()
                engine, unloaded = None, True
                minutes = (self.idle_unload_s or 0) / 60
                self._set_state(WorkerState.UNLOADED, f"idle for {minutes:g} min")
                continue
            if job is _SHUTDOWN:
                self._queue.put(_SHUTDOWN)  # for the other slots' threads
                return
            if engine is None and unloaded:  # the next job that needs it: load again
                engine = self._load_engine()
                with self._submit_lock:
                    self._engine = engine
                unloaded = False  # a failed reload leaves it unavailable, with why
            if engine is None:
                self._reject(job, f"{self.role} is unavailable: {self.detail}")
                continue
            if self._down:
                self._reject(job, f"{self.role}: {self._down}", transient=True)
                continue
            self._set_state(WorkerState.BUSY)
            try:
                if isinstance(job, ChatJob):
                    self._run_chat(engine, job)
                else:
                    self._run_embed(engine, job)
            finally:
                with self._running_lock:
                    idle = not self._running
                if idle and self._queue.empty():
                    self._set_state(WorkerState.READY)

    def _run_embed(self, engine: Engine, job: EmbedJob | CountJob) -> None:
        if not job.result.set_running_or_notify_cancel():
            return
        with self._running_lock:
            self._embedding += 1
        try:
            self._embed(engine, job)
        finally:
            if isinstance(job, EmbedJob) and job.prefix_ticket:
                self.prefix.hold(job.prefix_ticket, NO_PROMPT)
            with self._running_lock:
                self._embedding -= 1

    def _embed(self, engine: Engine, job: EmbedJob | CountJob) -> None:
        try:
            if isinstance(job, CountJob):
                counts = ([engine.count_tokens(t) for t in job.texts] if engine.counts_tokens
                          else [max(1, len(t) // 4) for t in job.texts])
                job.result.set_result(counts)
            else:
                job.result.set_result(engine.embed(job.texts))
        except EngineError as exc:
            job.result.set_exception(exc)
        except Exception as exc:
            log.exception("embedding on %s failed", self.role)
            job.result.set_exception(EngineError(f"{type(exc).__name__}: {exc}"))

    def _run_chat(self, engine: Engine, job: ChatJob) -> None:
        if job.cancel.is_set():
            self.prefix.withdraw(job.prefix_ticket)
            job.listener.on_failed(job, self.role, "stopped before it started", partial=False)
            return
        started = time.perf_counter()
        me = threading.get_ident()
        with self._running_lock:
            self._running[me] = (job, started)
        first_token_at: float | None = None
        last_token_at = started
        n_tokens = prompt_tokens = 0
        thinking = ThinkingCounter()
        answer: list[str] = []
        messages: list[ChatMessage] = []
        job.listener.on_started(job, self.role)
        try:
            extra: dict[str, Any] = {"sampling": job.sampling} if job.sampling else {}
            if job.stop:
                extra["stop"] = job.stop
            if job.seed is not None:
                extra["seed"] = job.seed
            pieces: Iterator[str]
            if job.raw:  # the text as given: nothing to fit, no template
                text = job.messages[-1]["content"]
                completion = getattr(engine, "stream_completion", None)
                if completion is None:
                    raise EngineError(f"{self.role}: this model does not take raw completions")
                prompt_tokens = engine.count_tokens(text) if engine.counts_tokens else 0
                pieces = completion(text, max_tokens=job.max_tokens,
                                    temperature=job.temperature, cancel=job.cancel, **extra)
            else:
                if engine.counts_tokens:
                    messages, max_tokens, prompt_tokens = fit_messages_counted(
                        job.messages, engine.n_ctx, job.max_tokens, engine.count_tokens
                    )
                else:  # a server fits the prompt itself, or says it is too long
                    messages, max_tokens = list(job.messages), job.max_tokens
                pieces = engine.stream_chat(messages, max_tokens=max_tokens,
                                            temperature=job.temperature, cancel=job.cancel,
                                            **extra)
            for piece in pieces:
                last_token_at = time.perf_counter()
                if first_token_at is None:
                    first_token_at = last_token_at
                n_tokens += 1
                thinking.feed(piece, last_token_at)
                answer.append(piece)
                job.listener.on_token(job, piece)
        except EngineError as exc:
            self._cache_after_failure(job, exc, n_tokens)
            job.listener.on_failed(job, self.role, str(exc), partial=n_tokens > 0, error=exc)
            return
        except Exception as exc:  # the model crashed mid-answer: report, keep the thread
            log.exception("chat on %s failed", self.role)
            self._cache_after_failure(job, exc, n_tokens)
            job.listener.on_failed(
                job, self.role, f"{type(exc).__name__}: {exc}", partial=n_tokens > 0, error=exc
            )
            return
        finally:
            with self._running_lock:
                self._running.pop(me, None)
        ended = time.perf_counter()
        cached_tokens, read_s = 0, None
        hit_limit = False
        if engine.counts_tokens:  # a local model says what it read (a server's may race)
            prompt_tokens = getattr(engine, "last_prompt_tokens", 0) or prompt_tokens
            n_tokens = getattr(engine, "last_answer_tokens", n_tokens) or n_tokens
            hit_limit = bool(getattr(engine, "last_hit_limit", False))
            cached_tokens = getattr(engine, "last_cached_tokens", 0)
            read_s = getattr(engine, "last_read_s", None)
        ttft = (first_token_at - started) if first_token_at else ended - started
        self._held_after(job, engine, messages, "".join(answer))
        if not job.raw:
            self._measure_answer(job, messages, prompt_tokens, cached_tokens, read_s,
                                 ttft if first_token_at else None)
        stats = ChatStats(
            n_tokens=n_tokens,
            ttft_s=ttft,
            decode_s=(last_token_at - first_token_at) if first_token_at else 0.0,
            total_s=ended - job.submitted_at,
            queued_s=started - job.submitted_at,
            prompt_tokens=prompt_tokens,
            thinking_tokens=thinking.thinking_tokens(),
            thinking_s=thinking.thinking_seconds(started),
            estimated_prompt_tokens=job.prompt_tokens,
            hit_limit=hit_limit,
            cached_tokens=cached_tokens,
            read_s=read_s,
        )
        job.listener.on_finished(job, self.role, job.cancel.is_set(), stats)

    def _held_after(self, job: ChatJob, engine: Engine, messages: list[ChatMessage],
                    answer: str) -> None:
        """What the cache holds after an answer: the prompt as fitted and the answer."""
        if job.raw:
            self.prefix.hold(job.prefix_ticket, NO_PROMPT)
            return
        said = [{"role": "assistant", "content": answer}] if answer else []
        exact = int(getattr(engine, "cached_tokens", 0)) if not self.remote else 0
        self.prefix.hold(job.prefix_ticket, PromptKeys.of([*messages, *said]), exact)
        saved = getattr(engine, "kv_stats", None)
        if saved is not None:  # the conversations it left and can restore
            self.prefix.set_saved(saved.states)

    def _cache_after_failure(self, job: ChatJob, error: Exception, n_tokens: int) -> None:
        if isinstance(error, PromptTooLongError) and not n_tokens:
            self.prefix.withdraw(job.prefix_ticket)  # refused before anything was read
        else:
            self.prefix.hold(job.prefix_ticket, NO_PROMPT)  # read in part: assume nothing

    def _measure_answer(self, job: ChatJob, messages: list[ChatMessage], prompt_tokens: int,
                        cached_tokens: int, read_s: float | None,
                        ttft_s: float | None) -> None:
        """How fast this endpoint read the prompt, in estimated tokens: a
        local model timed its reading of what its cache lacked; a server's
        is its time to the first token over what it was expected to lack."""
        if read_s is not None and prompt_tokens > 0:
            estimate = estimate_prompt_tokens(messages)
            read = max(0, prompt_tokens - cached_tokens)
            self.reading_speed.record(read_s, estimate * read / prompt_tokens)
        elif self.remote and ttft_s is not None:
            self.reading_speed.record(ttft_s, job.prompt_tokens - job.held_tokens)
