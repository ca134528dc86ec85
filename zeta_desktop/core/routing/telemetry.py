"""Live per-model signals and the machine's readings, for the router and the plots.

Workers and the session record events (started, token, finished, failed) from
their threads; the router reads a consistent snapshot; a sampler appends the
values to ring buffers that the UI plots from its own timer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from zeta_desktop.core.routing.machine import MachineReading

EWMA_ALPHA = 0.3
SUCCESS_WINDOW = 20  # outcomes
KIND_SAMPLES = 3  # answers of a kind on a model before its own service time counts
SUCCESS_WINDOW_S = 120.0  # older outcomes no longer count, so a model can recover
BREAKER_BASE_S = 2.0
BREAKER_MAX_S = 60.0
SERIES_SECONDS = 600  # ten minutes of history at the sample rate below
SAMPLE_HZ = 10


# (task kind, estimated prompt tokens) of each job waiting or running on a model.
PendingJobs = tuple[tuple[str, int], ...]


def _learn(table: dict[str, tuple[float, int]], kind: str, value: float) -> dict[str, float]:
    """Fold one answer into a kind's EWMA; the kinds with enough answers, as a
    new dict (a snapshot's copy never changes under its reader)."""
    old, count = table.get(kind, (None, 0))
    table[kind] = (_ewma(old, value), count + 1)
    return {k: v for k, (v, n) in table.items() if n >= KIND_SAMPLES}


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _ewma(previous: float | None, value: float, alpha: float = EWMA_ALPHA) -> float:
    return value if previous is None else alpha * value + (1 - alpha) * previous


@dataclass(slots=True)  # built for every decision: no frozen-dataclass overhead
class ModelSignals:
    """One model's state at one instant, as the router sees it."""

    role: str
    state: str
    queue_depth: int  # waiting, not yet started
    in_flight: int
    ttft_s: float | None
    tokens_per_s: float | None
    latency_s: float | None  # end to end, queueing included
    service_s: float | None  # start to end on the worker
    latency_per_token_s: float | None
    success_rate: float
    consecutive_failures: int
    cooldown_left_s: float
    completed: int
    failed: int
    running_for_s: float | None = None  # how long the running job has run; None: unknown
    # The newest answer's time to first token, known at its first token (ttft_s
    # above is the average over finished answers, which the router uses).
    last_ttft_s: float | None = None
    # Service time per task kind, once KIND_SAMPLES answers of that kind ran here:
    # a code answer on the coder is not a reasoning answer on the reasoner.
    service_by_kind: dict[str, float] = field(default_factory=dict)
    # (task kind, prompt tokens) of the jobs waiting here (in order) and
    # running ('' / 0 when not known): the wait is each one's own reading and
    # answer here.
    waiting_jobs: PendingJobs = ()
    running_jobs: PendingJobs = ()
    # Reading the prompt: seconds per (estimated) prompt token, and the answer
    # after the first token per task kind (KIND_SAMPLES answers, as above).
    prefill_s_per_token: float | None = None
    decode_by_kind: dict[str, float] = field(default_factory=dict)
    # The newest finished answer's tokens, and of those its thinking (a
    # thinking model's reasoning counts as tokens: it takes decode time).
    last_tokens: int = 0
    last_thinking_tokens: int = 0
    # The endpoint: the role it serves (its own key for a role's first
    # replica), how many requests it runs at once, and whether it runs on
    # this machine (the GPU ceilings apply only there).
    group: str = ""
    slots: int = 1
    local: bool = True

    @property
    def role_name(self) -> str:
        return self.group or self.role

    @property
    def newest_ttft_s(self) -> float | None:
        """What to show: the newest answer's, or the average before any first token."""
        return self.last_ttft_s if self.last_ttft_s is not None else self.ttft_s

    @property
    def cooling_down(self) -> bool:
        return self.cooldown_left_s > 0

    @property
    def load(self) -> int:
        return self.queue_depth + self.in_flight


@dataclass(slots=True)
class Snapshot:
    models: dict[str, ModelSignals]
    machine: MachineReading | None
    taken_at: float


class ModelTelemetry:
    """Mutable signals of one model. Every method is thread-safe."""

    def __init__(
        self,
        role: str,
        depth: Callable[[], tuple[int, int, str]],
        running_for: Callable[[], float | None] | None = None,
        slots: Callable[[], int] | None = None,
        group: str = "",
        local: bool = True,
        jobs: Callable[[], tuple[PendingJobs, PendingJobs]] | None = None,
    ) -> None:
        self.role = role  # the endpoint's key
        self._jobs = jobs
        self.group = group or role
        self.local = local
        self._depth = depth  # live (queued, in flight, state) from the worker
        self._running_for = running_for
        self._slots = slots
        self._lock = threading.Lock()
        self.ttft_s: float | None = None
        self.last_ttft_s: float | None = None
        self.last_tokens = self.last_thinking_tokens = 0
        self.tokens_per_s: float | None = None
        self.latency_s: float | None = None
        self.service_s: float | None = None
        self.latency_per_token_s: float | None = None
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=SUCCESS_WINDOW)
        self._rate_cache: tuple[float, float] = (float("inf"), 1.0)  # (valid until, rate)
        self._services: deque[float] = deque(maxlen=50)
        self._kind_service: dict[str, tuple[float, int]] = {}  # kind -> (EWMA, answers)
        # What signals() hands out: the kinds with enough answers (a new dict on
        # each change, so a snapshot's copy never changes under its reader).
        self._kind_service_known: dict[str, float] = {}
        self.prefill_s_per_token: float | None = None
        self._kind_decode: dict[str, tuple[float, int]] = {}
        self._kind_decode_known: dict[str, float] = {}
        self.consecutive_failures = 0
        self._cooldown_until = 0.0
        self.completed = 0
        self.failed = 0
        self._tokens_seen = 0

    def record_token(self) -> None:
        with self._lock:
            self._tokens_seen += 1

    def record_first_token(self, ttft_s: float) -> None:
        with self._lock:
            self.last_ttft_s = ttft_s

    def take_token_count(self) -> int:
        with self._lock:
            count, self._tokens_seen = self._tokens_seen, 0
            return count

    def record_success(
        self,
        ttft_s: float,
        tokens_per_s: float,
        latency_s: float,
        service_s: float,
        n_tokens: int,
        now: float | None = None,
        kind: str | None = None,
        thinking_tokens: int = 0,
        prompt_tokens: int = 0,
    ) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.last_tokens, self.last_thinking_tokens = n_tokens, thinking_tokens
            self.ttft_s = _ewma(self.ttft_s, ttft_s)
            if tokens_per_s > 0:
                self.tokens_per_s = _ewma(self.tokens_per_s, tokens_per_s)
            self.latency_s = _ewma(self.latency_s, latency_s)
            self.service_s = _ewma(self.service_s, service_s)
            if n_tokens > 0:
                self.latency_per_token_s = _ewma(self.latency_per_token_s, latency_s / n_tokens)
            self._services.append(service_s)
            if prompt_tokens > 0 and n_tokens > 0:
                self.prefill_s_per_token = _ewma(self.prefill_s_per_token,
                                                 ttft_s / prompt_tokens)
            if kind is not None:
                self._kind_service_known = _learn(self._kind_service, kind, service_s)
                if n_tokens > 0:
                    self._kind_decode_known = _learn(
                        self._kind_decode, kind, max(0.0, service_s - ttft_s))
            self._outcomes.append((now, True))
            self._rate_cache = (float("-inf"), 1.0)
            self.consecutive_failures = 0
            self._cooldown_until = 0.0
            self.completed += 1

    def record_backoff(self, seconds: float, now: float | None = None) -> None:
        """A busy server asked us to wait (429/503 Retry-After): keep off it that
        long, without counting a failure against it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._cooldown_until = max(self._cooldown_until, now + seconds)

    def record_failure(self, now: float | None = None) -> float:
        """Count a failure and open the breaker; returns the cooldown in seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._outcomes.append((now, False))
            self._rate_cache = (float("-inf"), 1.0)
            self.consecutive_failures += 1
            self.failed += 1
            cooldown = min(BREAKER_MAX_S, BREAKER_BASE_S * 2.0 ** (self.consecutive_failures - 1))
            self._cooldown_until = now + cooldown
            return cooldown

    def _success_rate(self, now: float) -> float:
        """Share of recent outcomes that succeeded; cached until one ages out."""
        valid_until, rate = self._rate_cache
        if now <= valid_until and now >= valid_until - SUCCESS_WINDOW_S:
            return rate
        recent = [(at, ok) for at, ok in self._outcomes if now - at <= SUCCESS_WINDOW_S]
        rate = sum(ok for _, ok in recent) / len(recent) if recent else 1.0
        oldest = min((at for at, _ in recent), default=now)
        self._rate_cache = (oldest + SUCCESS_WINDOW_S, rate)
        return rate

    def recent_services(self) -> list[float]:
        with self._lock:
            return list(self._services)

    def set_service_estimate(self, value: float) -> None:
        with self._lock:
            self.service_s = value

    def signals(self, now: float) -> ModelSignals:
        queued, in_flight, state = self._depth()
        running_for = self._running_for() if self._running_for is not None else None
        slots = self._slots() if self._slots is not None else 1
        waiting, running = self._jobs() if self._jobs is not None else ((), ())
        with self._lock:
            rate = self._success_rate(now)
            return ModelSignals(
                role=self.role,
                state=state,
                queue_depth=queued,
                in_flight=in_flight,
                ttft_s=self.ttft_s,
                tokens_per_s=self.tokens_per_s,
                latency_s=self.latency_s,
                service_s=self.service_s,
                latency_per_token_s=self.latency_per_token_s,
                success_rate=rate,
                consecutive_failures=self.consecutive_failures,
                cooldown_left_s=max(0.0, self._cooldown_until - now),
                completed=self.completed,
                failed=self.failed,
                running_for_s=running_for,
                last_ttft_s=self.last_ttft_s,
                last_tokens=self.last_tokens,
                last_thinking_tokens=self.last_thinking_tokens,
                group=self.group,
                slots=slots,
                local=self.local,
                waiting_jobs=waiting,
                running_jobs=running,
                service_by_kind=self._kind_service_known,
                prefill_s_per_token=self.prefill_s_per_token,
                decode_by_kind=self._kind_decode_known,
            )


class Series:
    """Fixed-length ring buffers of plot values, one per name (numpy, so a copy is cheap)."""

    def __init__(self, names: Iterable[str], length: int = SERIES_SECONDS * SAMPLE_HZ) -> None:
        self._lock = threading.Lock()
        self._length = length
        self._times = np.full(length, -np.inf)
        self._values = {n: np.full(length, np.nan) for n in names}
        self._next = 0  # slot of the next sample
        self._count = 0

    def append(self, at: float, values: dict[str, float]) -> None:
        with self._lock:
            slot = self._next
            self._times[slot] = at
            for name, buffer in self._values.items():
                buffer[slot] = values.get(name, np.nan)
            self._next = (slot + 1) % self._length
            self._count = min(self._count + 1, self._length)

    def copy(self, since: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Samples in time order, optionally only those at or after `since`."""
        with self._lock:
            times = self._ordered(self._times)
            start = int(np.searchsorted(times, since)) if since is not None else 0
            # Only the part asked for is copied: a 60 s plot of a 10 min buffer
            # needs a tenth of it, ten times a second.
            return times[start:], {n: self._ordered(b, start) for n, b in self._values.items()}

    def _ordered(self, buffer: np.ndarray, start: int = 0) -> np.ndarray:
        """The filled part of a ring buffer from its `start`th oldest sample on (a copy)."""
        if self._count < self._length:  # not wrapped yet: slots 0..count-1
            return buffer[start : self._count].copy()
        older = self._length - self._next  # the oldest samples sit in buffer[next:]
        if start >= older:
            return buffer[start - older : self._next].copy()
        return np.concatenate((buffer[self._next + start :], buffer[: self._next]))


MODEL_SERIES = ("queue", "in_flight", "tokens_per_s", "ttft_s")


class Telemetry:
    """All models' signals plus the latest machine reading."""

    def __init__(self) -> None:
        self.models: dict[str, ModelTelemetry] = {}
        self.model_series: dict[str, Series] = {}
        self.machine_series = Series(("gpu_util", "gpu_mem", "cpu", "ram"))
        self._machine: MachineReading | None = None
        self._lock = threading.Lock()
        self._last_sample = time.monotonic()

    def register(
        self,
        role: str,
        depth: Callable[[], tuple[int, int, str]],
        running_for: Callable[[], float | None] | None = None,
        slots: Callable[[], int] | None = None,
        group: str = "",
        local: bool = True,
        jobs: Callable[[], tuple[PendingJobs, PendingJobs]] | None = None,
    ) -> ModelTelemetry:
        """Track an endpoint: `role` is its key, `group` the role it serves."""
        with self._lock:
            model = ModelTelemetry(role, depth, running_for, slots, group, local, jobs)
            self.models[role] = model
            self.model_series.setdefault(role, Series(MODEL_SERIES))
            return model

    def unregister(self, role: str) -> None:
        """Stop tracking an endpoint that is gone (its series stay for the plot)."""
        with self._lock:
            self.models.pop(role, None)

    def model(self, role: str) -> ModelTelemetry:
        return self.models[role]

    def recent_tokens_per_s(
        self, role: str, seconds: float = 2.0, now: float | None = None
    ) -> float | None:
        """Decode speed over the last `seconds` of samples: live, while an answer
        streams (ModelSignals.tokens_per_s is the average over finished ones)."""
        series = self.model_series.get(role)
        if series is None:
            return None
        now = time.monotonic() if now is None else now
        _, values = series.copy(now - seconds)
        rates = values["tokens_per_s"]
        return float(rates.mean()) if len(rates) else None

    def set_machine(self, reading: MachineReading) -> None:
        self._machine = reading

    @property
    def machine(self) -> MachineReading | None:
        return self._machine

    def snapshot(self, now: float | None = None) -> Snapshot:
        now = time.monotonic() if now is None else now
        models = {role: model.signals(now) for role, model in list(self.models.items())}
        return Snapshot(models, self._machine, now)

    def sample(self, now: float | None = None) -> Snapshot:
        """Append one point to every series (called by the sampler thread)."""
        now = time.monotonic() if now is None else now
        elapsed = max(1e-3, now - self._last_sample)
        self._last_sample = now
        snap = self.snapshot(now)
        for role, signals in snap.models.items():
            tokens = self.models[role].take_token_count()
            self.model_series[role].append(
                now,
                {
                    "queue": float(signals.queue_depth),
                    "in_flight": float(signals.in_flight),
                    "tokens_per_s": tokens / elapsed,
                    # Plotted live: the newest answer's, from its first token on.
                    "ttft_s": _or_nan(signals.newest_ttft_s),
                },
            )
        machine = snap.machine
        if machine is not None:
            self.machine_series.append(
                now,
                {
                    "gpu_util": _or_nan(machine.max_gpu_util_pct),
                    "gpu_mem": _or_nan(machine.max_gpu_mem_pct),
                    "cpu": machine.cpu_pct,
                    "ram": machine.ram_pct,
                },
            )
        return snap
