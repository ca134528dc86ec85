"""A chat conversation over the role workers: routing, history, retries, events out.

The session is what the window (or the CLI, or a benchmark) talks to. `send()`
never blocks: the turn goes to a dispatcher thread that classifies the prompt,
asks the router for a model and submits the job to that model's worker. When a
job fails it is retried once on the next best model, so no prompt is lost.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from zeta_desktop.core import embed_commands
from zeta_desktop.core.classifier import Classification, TaskClassifier, TaskKind, explicit_command
from zeta_desktop.core.config import ROLE_NAMES, AppConfig, RoleConfig, user_data_dir
from zeta_desktop.core.engine import (
    ChatMessage,
    Engine,
    EngineError,
    LoadSettings,
    ModelLoadError,
    NoRoleAvailableError,
    PromptTooLongError,
)
from zeta_desktop.core.machine import MachineSource, NvmlSource
from zeta_desktop.core.models import ModelFileError, ModelSource, resolve_model
from zeta_desktop.core.router import DEFAULT_PREFERENCES, Decision, RoleProfile, ZetaDynamicRouter
from zeta_desktop.core.sampler import TelemetrySampler
from zeta_desktop.core.telemetry import Telemetry
from zeta_desktop.core.worker import (
    ChatJob,
    ChatListener,
    ChatStats,
    EmbedJob,
    ModelWorker,
    WorkerState,
)

log = logging.getLogger(__name__)

SEMANTIC_TIMEOUT_S = 2.0


class SessionListener(Protocol):
    """Everything the session reports. Called from worker and dispatcher threads."""

    def on_role_state(self, role: str, state: WorkerState, detail: str) -> None: ...
    def on_turn_routed(self, turn_id: int, decision: Decision) -> None: ...
    def on_turn_started(self, turn_id: int, role: str, reason: str) -> None: ...
    def on_turn_token(self, turn_id: int, text: str) -> None: ...
    def on_turn_retried(self, turn_id: int, failed_role: str, message: str) -> None: ...
    def on_turn_finished(self, turn_id: int, stopped: bool, stats: ChatStats) -> None: ...
    def on_turn_failed(self, turn_id: int, message: str) -> None: ...


@dataclass
class RoleRuntime:
    name: str
    config: RoleConfig
    source: ModelSource | None
    worker: ModelWorker


@dataclass
class Turn:
    turn_id: int
    prompt: str
    forced_role: str | None = None
    with_history: bool = True
    role: str = ""
    reason: str = ""
    answer: str = ""
    status: str = "routing"  # routing, queued, streaming, done, stopped, failed
    error: str = ""
    stats: ChatStats | None = None
    classification: Classification | None = None
    decision: Decision | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (role, failure)
    job: ChatJob | None = field(default=None, repr=False)
    cancelled: bool = False

    @property
    def retried(self) -> bool:
        return bool(self.attempts)


EngineLoader = Callable[[Path, LoadSettings], Engine]


def _unloadable(message: str) -> EngineLoader:
    def loader(_path: Path, _settings: LoadSettings) -> Engine:
        raise ModelLoadError(message)

    return loader


class ChatSession(ChatListener):
    def __init__(
        self,
        config: AppConfig,
        engine_loader: EngineLoader,
        listener: SessionListener | None = None,
        machine: MachineSource | None = None,
        system_prompt: str = "You are a helpful assistant.",
        max_retries: int = 1,
    ) -> None:
        self.config = config
        self._listener = listener
        self.system_prompt = system_prompt
        self.max_retries = max_retries
        self._engine_loader = engine_loader
        self._turns: list[Turn] = []
        self._turns_by_id: dict[int, Turn] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.telemetry = Telemetry()
        self.roles: dict[str, RoleRuntime] = {}
        for name in ROLE_NAMES:
            self.roles[name] = self._make_role(name, config.roles[name])
        self.router = ZetaDynamicRouter(
            {name: self._profile(name) for name in self.roles},
            self.telemetry,
            thresholds=config.router.thresholds(),
            policy=config.router.policy,
        )
        self.classifier = TaskClassifier()
        self._sampler = TelemetrySampler(
            self.telemetry, self.router, machine if machine is not None else NvmlSource()
        )
        self._dispatch: queue.Queue[tuple[Turn, frozenset[str]] | None] = queue.Queue()
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="zeta-dispatch", daemon=True
        )
        self._started = False
        self._semantic_thread: threading.Thread | None = None
        self.semantic_ready = threading.Event()  # set once prompts are also classified by meaning

    # -- roles --------------------------------------------------------------

    def _profile(self, name: str) -> RoleProfile:
        role_config = self.config.roles[name]
        preference = dict(DEFAULT_PREFERENCES.get(name, {}))
        for kind, weight in role_config.preference.items():
            preference[TaskKind(kind)] = weight
        return RoleProfile(
            role=name,
            can_chat=role_config.can_chat,
            can_embed=role_config.can_embed,
            preference=preference,
            on_gpu=role_config.n_gpu_layers != 0,
        )

    def _make_role(self, name: str, role_config: RoleConfig) -> RoleRuntime:
        settings = LoadSettings(
            n_ctx=role_config.n_ctx,
            n_gpu_layers=role_config.n_gpu_layers,
            n_threads=role_config.n_threads,
            embedding=role_config.can_embed,
            low_priority=role_config.low_priority,
        )
        try:
            source: ModelSource | None = resolve_model(role_config.model_path)
            path, loader = source.path, self._engine_loader
        except ModelFileError as exc:
            source, path = None, Path(role_config.model_path or "demo model")
            loader = _unloadable(str(exc))
        worker = ModelWorker(name, path, settings, loader, on_state=self._on_worker_state)

        def depth(w: ModelWorker = worker) -> tuple[int, int, str]:
            return w.queue_depth, w.in_flight, w.state.value

        self.telemetry.register(name, depth, lambda w=worker: w.running_for_s)
        return RoleRuntime(name, role_config, source, worker)

    def start(self) -> None:
        self._started = True
        self._dispatcher.start()
        self._sampler.start()
        for runtime in self.roles.values():
            runtime.worker.start()

    def worker(self, role: str) -> ModelWorker:
        return self.roles[role].worker

    def can_chat(self, role: str) -> bool:
        return self.roles[role].config.can_chat

    def can_embed(self, role: str) -> bool:
        return self.roles[role].config.can_embed

    def replace_role(self, name: str, role_config: RoleConfig) -> None:
        """Point a role at another model: the old worker ends, a new one loads."""
        self.roles[name].worker.shutdown()
        self.config.roles[name] = role_config
        runtime = self._make_role(name, role_config)
        self.roles[name] = runtime
        self.router.set_profile(self._profile(name))
        if role_config.can_embed:
            self.classifier.semantic = None  # rebuilt for the new model once it loads
            self.semantic_ready.clear()
            if self._semantic_thread is not None:
                self._semantic_thread.join()
                self._semantic_thread = None
        runtime.worker.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return all(r.worker.wait_loaded(timeout) for r in self.roles.values())

    def shutdown(self, timeout: float | None = None) -> None:
        self.stop()
        if self._started:
            self._dispatch.put(None)
            self._dispatcher.join(timeout)
            self._sampler.stop(timeout)
        for runtime in self.roles.values():
            runtime.worker.cancel_all()
        for runtime in self.roles.values():
            runtime.worker.shutdown(timeout)
        if self._semantic_thread is not None:
            # Its pending embeddings were rejected by the shutdown above.
            self._semantic_thread.join(timeout)

    def _on_worker_state(self, role: str, state: WorkerState, detail: str) -> None:
        if (
            state is WorkerState.READY
            and self.config.router.semantic
            and self.can_embed(role)
            and self.classifier.semantic is None
            and self._semantic_thread is None
        ):
            self._semantic_thread = threading.Thread(
                target=self._build_semantic, args=(role,), name="zeta-semantic", daemon=True
            )
            self._semantic_thread.start()
        if self._listener is not None:
            self._listener.on_role_state(role, state, detail)

    def _build_semantic(self, role: str) -> None:
        from zeta_desktop.core.semantic import build_scorer

        source = self.roles[role].source
        if source is None:
            return
        try:
            scorer = build_scorer(
                source.path,
                lambda texts: self._embed_on(role, list(texts), timeout=120),
                user_data_dir() / "cache",
                # A prompt never waits long on a busy embedder: rules answer instead.
                prompt_embed=lambda texts: self._embed_on(
                    role, list(texts), timeout=SEMANTIC_TIMEOUT_S
                ),
            )
        except (EngineError, OSError, ValueError, TimeoutError) as exc:
            log.warning("semantic classification unavailable: %s", exc)
            return
        self.classifier.semantic = scorer
        self.semantic_ready.set()
        log.info("semantic classification ready (embeddings from %s)", role)

    # -- conversation -------------------------------------------------------

    @property
    def turns(self) -> list[Turn]:
        with self._lock:
            return list(self._turns)

    def turn(self, turn_id: int) -> Turn:
        with self._lock:
            return self._turns_by_id[turn_id]

    def _history_messages(self, upto: Turn) -> list[ChatMessage]:
        messages: list[ChatMessage] = [{"role": "system", "content": self.system_prompt}]
        with self._lock:
            for turn in self._turns if upto.with_history else ():
                if turn is upto:
                    break
                if turn.status in ("done", "stopped") and turn.answer and turn.job is not None:
                    messages.append({"role": "user", "content": turn.prompt})
                    messages.append({"role": "assistant", "content": turn.answer})
        messages.append({"role": "user", "content": upto.prompt})
        return messages

    def send(self, prompt: str, role: str | None = None, with_history: bool = True) -> int:
        """Queue a prompt and return its turn id at once.

        `role` skips the router; `with_history=False` sends the prompt on its
        own, as an independent request (benchmarks, scripts).
        """
        with self._lock:
            turn = Turn(next(self._ids), prompt, forced_role=role, with_history=with_history)
            self._turns.append(turn)
            self._turns_by_id[turn.turn_id] = turn
        self._dispatch.put((turn, frozenset()))
        return turn.turn_id

    def stop(self, turn_id: int | None = None) -> None:
        """Stop one turn, or every unfinished one."""
        with self._lock:
            turns = [self._turns_by_id[turn_id]] if turn_id is not None else list(self._turns)
            for turn in turns:
                if turn.status in ("routing", "queued", "streaming"):
                    turn.cancelled = True
                    if turn.job is not None:
                        turn.job.cancel.set()

    def classify(self, prompt: str) -> Classification:
        """Rules, plus similarity to examples when the embedder is idle (never waits on it)."""
        semantic = self.classifier.semantic
        if semantic is None or explicit_command(prompt):
            return self.classifier.classify(prompt)
        embed_role = next((r for r in self.roles if self.can_embed(r)), None)
        worker = self.worker(embed_role) if embed_role else None
        if worker is None or worker.queue_depth or worker.in_flight:
            rules_only = TaskClassifier().classify(prompt)
            return Classification(
                rules_only.kind,
                rules_only.confidence,
                (*rules_only.evidence, "semantic skipped: the embedder is busy"),
                rules_only.scores,
            )
        return self.classifier.classify(prompt)

    def route(self, prompt: str, exclude: Collection[str] = ()) -> Decision:
        classification = self.classify(prompt)
        return self.router.route(classification.kind, exclude=exclude,
                                 classification=classification)

    # -- dispatcher thread ----------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            item = self._dispatch.get()
            if item is None:
                return
            turn, exclude = item
            try:
                self._route_and_submit(turn, exclude)
            except Exception as exc:  # never lose a prompt silently
                log.exception("dispatching turn %d failed", turn.turn_id)
                self._fail(turn, f"could not dispatch: {type(exc).__name__}: {exc}")

    def _route_and_submit(self, turn: Turn, exclude: frozenset[str]) -> None:
        if turn.cancelled:
            self._finish_cancelled(turn)
            return
        try:
            if turn.forced_role is not None and turn.forced_role not in exclude:
                classification = self.classify(turn.prompt)
                role = turn.forced_role
                decision = Decision(
                    role=role,
                    kind=classification.kind,
                    policy="override",
                    reason=f"{classification.kind.value} -> {role}: chosen by you",
                    runner_up=None,
                    spilled=False,
                    preferred=role,
                    classification=classification,
                )
            else:
                decision = self.route(turn.prompt, exclude=exclude)
        except NoRoleAvailableError as exc:
            self._fail(turn, str(exc))
            return
        with self._lock:
            turn.role, turn.reason, turn.decision = decision.role, decision.reason, decision
            turn.classification = decision.classification
            turn.status = "queued"
        if self._listener is not None:
            self._listener.on_turn_routed(turn.turn_id, decision)
        if decision.kind is TaskKind.EMBEDDING:
            self._submit_embedding(turn, decision.role)
            return
        role_config = self.roles[decision.role].config
        job = ChatJob(
            messages=self._history_messages(turn),
            listener=self,
            max_tokens=role_config.max_tokens,
            temperature=role_config.temperature,
            tag=turn.turn_id,
        )
        with self._lock:
            turn.job = job
            if turn.cancelled:
                job.cancel.set()
        self.worker(decision.role).submit(job)

    def _submit_embedding(self, turn: Turn, role: str) -> None:
        try:
            command = embed_commands.parse(turn.prompt)
        except embed_commands.CommandUsageError as exc:
            self._fail(turn, str(exc))
            return
        job = EmbedJob(list(command.texts))
        job.result.add_done_callback(lambda f: self._on_embedding_done(turn, role, command, f))
        self.worker(role).submit(job)

    def _on_embedding_done(
        self,
        turn: Turn,
        role: str,
        command: embed_commands.EmbedCommand,
        result: Future[list[list[float]]],
    ) -> None:
        try:
            answer = embed_commands.answer(command, result.result())
        except EngineError as exc:
            self._fail(turn, f"{role}: {exc}")
            return
        with self._lock:
            turn.status, turn.answer = "done", answer
            turn.stats = ChatStats(0, 0.0, 0.0, 0.0, 0.0)
        if self._listener is not None:
            self._listener.on_turn_started(turn.turn_id, role, turn.reason)
            self._listener.on_turn_token(turn.turn_id, answer)
            self._listener.on_turn_finished(turn.turn_id, False, turn.stats)

    def _fail(self, turn: Turn, message: str) -> None:
        with self._lock:
            turn.status, turn.error = "failed", message
        if self._listener is not None:
            self._listener.on_turn_failed(turn.turn_id, message)

    def _finish_cancelled(self, turn: Turn) -> None:
        with self._lock:
            turn.status, turn.error = "stopped", "stopped before it started"
        if self._listener is not None:
            self._listener.on_turn_failed(turn.turn_id, "stopped before it started")

    # -- embeddings for callers -----------------------------------------------

    def _embed_on(self, role: str, texts: list[str], timeout: float | None) -> list[list[float]]:
        job = EmbedJob(texts)
        self.worker(role).submit(job)
        return job.result.result(timeout)

    def embed(self, texts: list[str], timeout: float | None = None) -> list[list[float]]:
        role = next((r for r in self.roles if self.can_embed(r)), None)
        if role is None:
            raise NoRoleAvailableError("no role is set to embed")
        return self._embed_on(role, texts, timeout)

    # -- ChatListener (worker threads) -------------------------------------

    def _turn_for(self, job: ChatJob) -> Turn | None:
        with self._lock:
            turn = self._turns_by_id.get(job.tag)  # type: ignore[arg-type]
            # A retried turn has a new job; events of the old one are stale.
            return turn if turn is not None and turn.job is job else None

    def on_started(self, job: ChatJob, role: str) -> None:
        turn = self._turn_for(job)
        if turn is None:
            return
        turn.status = "streaming"
        if self._listener is not None:
            self._listener.on_turn_started(turn.turn_id, role, turn.reason)

    def on_token(self, job: ChatJob, text: str) -> None:
        turn = self._turn_for(job)
        if turn is None:
            return
        model = self.telemetry.model(turn.role)
        if not turn.answer:  # this job's first token (a retry starts the answer over)
            # Shown (card, plot) while the answer still streams, not once it ends.
            ttft = self.roles[turn.role].worker.running_for_s
            if ttft is not None:
                model.record_first_token(ttft)
        model.record_token()
        turn.answer += text
        if self._listener is not None:
            self._listener.on_turn_token(turn.turn_id, text)

    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None:
        if not stopped:  # a stopped answer says nothing about the model's speed
            self.telemetry.model(role).record_success(
                ttft_s=stats.ttft_s,
                tokens_per_s=stats.tokens_per_s,
                latency_s=stats.total_s,
                service_s=stats.total_s - stats.queued_s,
                n_tokens=stats.n_tokens,
            )
        turn = self._turn_for(job)
        if turn is None:
            return
        turn.status = "stopped" if stopped else "done"
        turn.stats = stats
        if self._listener is not None:
            self._listener.on_turn_finished(turn.turn_id, stopped, stats)

    def on_failed(
        self,
        job: ChatJob,
        role: str,
        message: str,
        partial: bool,
        error: Exception | None = None,
    ) -> None:
        turn = self._turn_for(job)
        if job.cancel.is_set() and not partial:
            if turn is not None:
                self._finish_cancelled(turn)
            return
        if isinstance(error, PromptTooLongError):
            # The prompt's fault, not the model's: no breaker; only a model
            # with a larger context could take it.
            if turn is not None:
                self._retry_for_context(turn, role, message)
            return
        cooldown = self.telemetry.model(role).record_failure()
        if turn is None:
            return
        if job.cancel.is_set():  # stopped by the user while failing: keep what came
            turn.status = "stopped"
            if self._listener is not None:
                self._listener.on_turn_failed(turn.turn_id, f"{role}: {message}")
            return
        failed_roles = frozenset(r for r, _ in turn.attempts) | {role}
        if len(turn.attempts) < self.max_retries:
            with self._lock:
                turn.attempts.append((role, message))
                turn.answer = ""
                turn.job = None
                turn.status = "routing"
            log.info("turn %d failed on %s (%s); retrying, %s cools down %.0f s",
                     turn.turn_id, role, message, role, cooldown)
            if self._listener is not None:
                self._listener.on_turn_retried(turn.turn_id, role, message)
            self._dispatch.put((turn, failed_roles))
            return
        self._fail(turn, f"{role}: {message}")

    def _retry_for_context(self, turn: Turn, role: str, message: str) -> None:
        n_ctx = self.roles[role].config.n_ctx
        tried = {r for r, _ in turn.attempts} | {role}
        larger = [
            r for r, rt in self.roles.items()
            if r not in tried and rt.config.can_chat and rt.config.n_ctx > n_ctx
            and rt.worker.state not in (WorkerState.UNAVAILABLE, WorkerState.STOPPED)
        ]
        if not larger:
            self._fail(turn, f"{role}: {message}")
            return
        with self._lock:
            turn.attempts.append((role, message))
            turn.answer, turn.job, turn.status = "", None, "routing"
            turn.forced_role = max(larger, key=lambda r: self.roles[r].config.n_ctx)
        if self._listener is not None:
            self._listener.on_turn_retried(turn.turn_id, role, message)
        self._dispatch.put((turn, frozenset(tried)))
