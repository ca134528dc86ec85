"""The fleet: one worker per role, built from the config, replaced one at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from zeta_desktop.core.engines.base import Engine, LoadSettings, ModelLoadError
from zeta_desktop.core.fleet.worker import EmbedJob, ModelWorker, StateCallback, WorkerState
from zeta_desktop.core.models.files import ModelFileError, ModelSource, resolve_model

log = logging.getLogger(__name__)

EngineLoader = Callable[[Path, LoadSettings], Engine]


class RoleSettings(Protocol):
    """What the fleet reads of a role's config (duck-typed: core.config.RoleConfig)."""

    model_path: str
    n_ctx: int
    n_gpu_layers: int
    n_threads: int
    can_chat: bool
    can_embed: bool
    low_priority: bool
    max_tokens: int
    temperature: float


@dataclass
class RoleRuntime:
    name: str
    config: RoleSettings
    source: ModelSource | None
    worker: ModelWorker

    @property
    def can_chat(self) -> bool:
        """The config allows chat and the model can (the demo embedder cannot)."""
        return self.config.can_chat and (self.source is None or self.source.can_chat)


def _unloadable(message: str) -> EngineLoader:
    def loader(_path: Path, _settings: LoadSettings) -> Engine:
        raise ModelLoadError(message)

    return loader


# A new worker: (role name, worker) -> None; the telemetry registers it.
WorkerAdded = Callable[[str, ModelWorker], None]


class Fleet:
    """The role workers. Each worker owns its model on its own thread."""

    def __init__(
        self,
        roles: dict[str, RoleSettings],
        engine_loader: EngineLoader,
        on_state: StateCallback,
        on_worker_added: WorkerAdded,
    ) -> None:
        self._engine_loader = engine_loader
        self._on_state = on_state
        self._on_worker_added = on_worker_added
        # A swap racing the app's shutdown must not start a worker nobody ends.
        self._swap_lock = threading.Lock()
        self._closed = False
        self.roles: dict[str, RoleRuntime] = {
            name: self._make_role(name, config) for name, config in roles.items()
        }

    def _make_role(self, name: str, config: RoleSettings) -> RoleRuntime:
        settings = LoadSettings(
            n_ctx=config.n_ctx,
            n_gpu_layers=config.n_gpu_layers,
            n_threads=config.n_threads,
            embedding=config.can_embed,
            low_priority=config.low_priority,
        )
        try:
            source: ModelSource | None = resolve_model(
                config.model_path, embedding_role=config.can_embed
            )
            path, loader = source.path, self._engine_loader
        except ModelFileError as exc:
            source, path = None, Path(config.model_path or "demo model")
            loader = _unloadable(str(exc))
        worker = ModelWorker(name, path, settings, loader, on_state=self._on_state)
        self._on_worker_added(name, worker)
        return RoleRuntime(name, config, source, worker)

    def start(self) -> None:
        for runtime in self.roles.values():
            runtime.worker.start()

    def worker(self, role: str) -> ModelWorker:
        return self.roles[role].worker

    def can_chat(self, role: str) -> bool:
        return self.roles[role].can_chat

    def can_embed(self, role: str) -> bool:
        return self.roles[role].config.can_embed

    def embed_role(self) -> str | None:
        return next((r for r in self.roles if self.can_embed(r)), None)

    def model_file(self, role: str) -> str:
        source = self.roles[role].source
        return source.path.name if source is not None else ""

    def replace(self, name: str, config: RoleSettings, timeout: float | None = None) -> None:
        """Point a role at another model: the old worker ends, a new one loads.

        Joins the old worker (which may still be loading), so call it off the
        GUI thread.
        """
        self.roles[name].worker.shutdown(timeout)
        with self._swap_lock:
            if self._closed:
                log.info("not loading %s for %s: the app is closing", config.model_path, name)
                return
            runtime = self._make_role(name, config)
            self.roles[name] = runtime
            runtime.worker.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return all(r.worker.wait_loaded(timeout) for r in self.roles.values())

    def usable(self, role: str) -> bool:
        return self.roles[role].worker.state not in (WorkerState.UNAVAILABLE, WorkerState.STOPPED)

    def shutdown(self, timeout: float | None = None) -> None:
        with self._swap_lock:
            self._closed = True
        for runtime in self.roles.values():
            runtime.worker.cancel_all()
        for runtime in self.roles.values():
            runtime.worker.shutdown(timeout)

    def embed_on(self, role: str, texts: list[str], timeout: float | None) -> list[list[float]]:
        job = EmbedJob(texts)
        self.worker(role).submit(job)
        return job.result.result(timeout)
