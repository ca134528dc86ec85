"""A chat conversation over the role workers: history, role choice, events out.

The session is what the window (or a CLI, or a benchmark) talks to. It picks a
role for each prompt through a `RolePicker` (the seam the router plugs into),
submits a job to that role's worker, and reports progress to a listener.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from zeta_desktop.core.config import ROLE_NAMES, AppConfig, RoleConfig
from zeta_desktop.core.engine import ChatMessage, Engine, LoadSettings
from zeta_desktop.core.models import ModelFileError, ModelSource, resolve_model
from zeta_desktop.core.worker import (
    ChatJob,
    ChatListener,
    ChatStats,
    EmbedJob,
    ModelWorker,
    WorkerState,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoleChoice:
    role: str
    reason: str


class NoRoleAvailableError(Exception):
    pass


class RolePicker(Protocol):
    def pick(self, prompt: str, session: ChatSession) -> RoleChoice: ...


class FirstChatRolePicker:
    """Until the router lands: the embedder if it can chat, else the first chat role."""

    order: tuple[str, ...] = ("embedder", "coder", "reasoner")

    def pick(self, prompt: str, session: ChatSession) -> RoleChoice:
        candidates = [r for r in self.order if r in session.roles and session.can_chat(r)]
        for role in candidates:
            if session.worker(role).state is not WorkerState.UNAVAILABLE:
                return RoleChoice(role, "first role that can chat")
        reasons = "; ".join(
            f"{role}: {session.worker(role).detail}" for role in session.roles
        )
        raise NoRoleAvailableError(f"no model can answer right now ({reasons})")


class SessionListener(Protocol):
    """Everything the session reports. Called from worker threads."""

    def on_role_state(self, role: str, state: WorkerState, detail: str) -> None: ...
    def on_turn_started(self, turn_id: int, role: str, reason: str) -> None: ...
    def on_turn_token(self, turn_id: int, text: str) -> None: ...
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
    role: str = ""
    reason: str = ""
    answer: str = ""
    status: str = "queued"  # queued, streaming, done, stopped, failed
    error: str = ""
    stats: ChatStats | None = None
    job: ChatJob | None = field(default=None, repr=False)


EngineLoader = Callable[[Path, LoadSettings], Engine]


class ChatSession(ChatListener):
    def __init__(
        self,
        config: AppConfig,
        engine_loader: EngineLoader,
        listener: SessionListener | None = None,
        picker: RolePicker | None = None,
        system_prompt: str = "You are a helpful assistant.",
    ) -> None:
        self.config = config
        self._listener = listener
        self.picker: RolePicker = picker or FirstChatRolePicker()
        self.system_prompt = system_prompt
        self._engine_loader = engine_loader
        self._turns: list[Turn] = []
        self._turns_by_id: dict[int, Turn] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.roles: dict[str, RoleRuntime] = {}
        for name in ROLE_NAMES:
            self.roles[name] = self._make_role(name, config.roles[name])

    # -- roles --------------------------------------------------------------

    def _make_role(self, name: str, role_config: RoleConfig) -> RoleRuntime:
        settings = LoadSettings(
            n_ctx=role_config.n_ctx,
            n_gpu_layers=role_config.n_gpu_layers,
            n_threads=role_config.n_threads,
            embedding=role_config.can_embed,
        )
        try:
            source: ModelSource | None = resolve_model(role_config.model_path)
            path = source.path
            loader = self._engine_loader
        except ModelFileError as exc:
            source, path = None, Path(role_config.model_path or "demo model")
            message = str(exc)

            def loader(_path: Path, _settings: LoadSettings) -> Engine:
                from zeta_desktop.core.engine import ModelLoadError

                raise ModelLoadError(message)

        worker = ModelWorker(name, path, settings, loader, on_state=self._on_worker_state)
        return RoleRuntime(name, role_config, source, worker)

    def start(self) -> None:
        for runtime in self.roles.values():
            runtime.worker.start()

    def worker(self, role: str) -> ModelWorker:
        return self.roles[role].worker

    def workers(self) -> Mapping[str, ModelWorker]:
        return {name: runtime.worker for name, runtime in self.roles.items()}

    def can_chat(self, role: str) -> bool:
        return self.roles[role].config.can_chat

    def can_embed(self, role: str) -> bool:
        return self.roles[role].config.can_embed

    def replace_role(self, name: str, role_config: RoleConfig) -> None:
        """Point a role at another model: the old worker ends, a new one loads."""
        old = self.roles[name].worker
        old.shutdown()
        self.config.roles[name] = role_config
        runtime = self._make_role(name, role_config)
        self.roles[name] = runtime
        runtime.worker.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return all(r.worker.wait_loaded(timeout) for r in self.roles.values())

    def shutdown(self, timeout: float | None = None) -> None:
        for runtime in self.roles.values():
            runtime.worker.cancel_all()
        for runtime in self.roles.values():
            runtime.worker.shutdown(timeout)

    def _on_worker_state(self, role: str, state: WorkerState, detail: str) -> None:
        if self._listener is not None:
            self._listener.on_role_state(role, state, detail)

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
        for turn in self._turns:
            if turn is upto:
                break
            if turn.status in ("done", "stopped") and turn.answer:
                messages.append({"role": "user", "content": turn.prompt})
                messages.append({"role": "assistant", "content": turn.answer})
        messages.append({"role": "user", "content": upto.prompt})
        return messages

    def send(self, prompt: str, role: str | None = None) -> int:
        """Queue a prompt; returns the turn id. `role` forces a role for this prompt."""
        with self._lock:
            turn = Turn(next(self._ids), prompt)
            self._turns.append(turn)
            self._turns_by_id[turn.turn_id] = turn
            if role is not None:
                choice = RoleChoice(role, "chosen by you")
            else:
                try:
                    choice = self.picker.pick(prompt, self)
                except NoRoleAvailableError as exc:
                    turn.status, turn.error = "failed", str(exc)
                    if self._listener is not None:
                        self._listener.on_turn_failed(turn.turn_id, str(exc))
                    return turn.turn_id
            turn.role, turn.reason = choice.role, choice.reason
            role_config = self.roles[choice.role].config
            job = ChatJob(
                messages=self._history_messages(turn),
                listener=self,
                max_tokens=role_config.max_tokens,
                temperature=role_config.temperature,
                tag=turn.turn_id,
            )
            turn.job = job
        self.worker(choice.role).submit(job)
        return turn.turn_id

    def stop(self, turn_id: int | None = None) -> None:
        """Stop one turn, or every unfinished one."""
        with self._lock:
            turns = [self._turns_by_id[turn_id]] if turn_id is not None else self._turns
            for turn in turns:
                if turn.job is not None and turn.status in ("queued", "streaming"):
                    turn.job.cancel.set()

    def clear(self) -> None:
        self.stop()
        with self._lock:
            self._turns.clear()
            self._turns_by_id.clear()

    def embed(self, texts: list[str], timeout: float | None = None) -> list[list[float]]:
        role = next((r for r in self.roles if self.can_embed(r)), None)
        if role is None:
            raise NoRoleAvailableError("no role is set to embed")
        job = EmbedJob(texts)
        self.worker(role).submit(job)
        return job.result.result(timeout)

    # -- ChatListener (worker threads) -------------------------------------

    def _turn_for(self, job: ChatJob) -> Turn | None:
        with self._lock:
            return self._turns_by_id.get(job.tag)  # type: ignore[arg-type]

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
        turn.answer += text
        if self._listener is not None:
            self._listener.on_turn_token(turn.turn_id, text)

    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None:
        turn = self._turn_for(job)
        if turn is None:
            return
        turn.status = "stopped" if stopped else "done"
        turn.stats = stats
        if self._listener is not None:
            self._listener.on_turn_finished(turn.turn_id, stopped, stats)

    def on_failed(self, job: ChatJob, role: str, message: str, partial: bool) -> None:
        turn = self._turn_for(job)
        if turn is None:
            return
        if job.cancel.is_set() and not partial:
            turn.status = "stopped"
        else:
            turn.status = "failed"
        turn.error = message
        if self._listener is not None:
            self._listener.on_turn_failed(turn.turn_id, f"{role}: {message}")
