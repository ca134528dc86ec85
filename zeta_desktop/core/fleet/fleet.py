"""The fleet: the workers of every role, built from the config, replaced a role at a time.

A role is served by replicas: its local GGUF model, OpenAI-compatible
servers, or both. Each replica is an endpoint with its own worker, and so its
own telemetry, breaker, service time and slots. Its key is the role's name
for the first replica and `role#2`, `role#3` ... for the others, so a role
with one replica reads as before everywhere.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zeta_desktop.core.engines.base import Engine, LoadSettings, ModelLoadError
from zeta_desktop.core.engines.build_info import build_info
from zeta_desktop.core.engines.endpoint import EndpointError, EndpointSpec, replica_spec
from zeta_desktop.core.fleet.health import HealthPoller, Watched
from zeta_desktop.core.fleet.worker import (
    CountJob,
    EmbedJob,
    ModelWorker,
    StateCallback,
    WorkerState,
)
from zeta_desktop.core.models.files import (
    ModelFileError,
    ModelSource,
    check_model_file,
    resolve_model,
)
from zeta_desktop.core.models.fit import FitPlan, Reservations, plan_load
from zeta_desktop.core.models.gguf_info import read_info
from zeta_desktop.core.models.load_check import check_model_loads
from zeta_desktop.core.settings import ReplicaConfig, RoleConfig

log = logging.getLogger(__name__)

EngineLoader = Callable[[Path, LoadSettings], Engine]


@dataclass
class Replica:
    """One endpoint of a role: a local model or a server."""

    key: str
    role: str
    worker: ModelWorker
    endpoint: EndpointSpec | None = None  # None: the local model

    @property
    def label(self) -> str:
        return self.endpoint.label if self.endpoint else self.worker.model_path.name


@dataclass
class RoleRuntime:
    name: str
    config: RoleConfig
    source: ModelSource | None  # the local model's file, if the role has one
    replicas: list[Replica] = field(default_factory=list)

    @property
    def worker(self) -> ModelWorker:
        """The first replica's worker (the only one, for most roles)."""
        return self.replicas[0].worker

    @property
    def can_chat(self) -> bool:
        """The config allows chat and the model can (the demo embedder cannot)."""
        return self.config.can_chat and (self.source is None or self.source.can_chat)


def endpoint_role(key: str) -> str:
    """The role an endpoint key belongs to: `reasoner#2` -> `reasoner`."""
    return key.split("#", 1)[0]


# Free (RAM, VRAM or None without a GPU) in bytes, from the machine readings.
FreeMemory = Callable[[], tuple[int, int | None]]


def psutil_free_memory() -> tuple[int, int | None]:
    import psutil

    return int(psutil.virtual_memory().available), None


def _unloadable(message: str) -> EngineLoader:
    def loader(_path: Path, _settings: LoadSettings) -> Engine:
        raise ModelLoadError(message)

    return loader


# A new endpoint's worker: (its key, its role, the worker); the telemetry registers it.
WorkerAdded = Callable[[str, str, ModelWorker], None]


class Fleet:
    """The role workers. Each worker owns its model on its own thread."""

    def __init__(
        self,
        roles: dict[str, RoleConfig],
        engine_loader: EngineLoader,
        on_state: StateCallback,
        on_worker_added: WorkerAdded,
        free_memory: FreeMemory = psutil_free_memory,
    ) -> None:
        self._engine_loader = engine_loader
        self._on_state = on_state
        self._on_worker_added = on_worker_added
        # A swap racing the app's shutdown must not start a worker nobody ends.
        self._swap_lock = threading.Lock()
        self._closed = False
        self.health = HealthPoller()
        self._free_memory = free_memory
        self._reservations = Reservations()
        self.plans: dict[str, FitPlan] = {}  # each local model's memory plan, once made
        self.roles: dict[str, RoleRuntime] = {
            name: self._make_role(name, config) for name, config in roles.items()
        }

    def _make_role(self, name: str, config: RoleConfig, register: bool = True) -> RoleRuntime:
        settings = LoadSettings(
            n_ctx=config.n_ctx,
            n_gpu_layers=config.n_gpu_layers,
            n_threads=config.n_threads,
            embedding=config.can_embed,
            low_priority=config.low_priority,
        )
        runtime = RoleRuntime(name, config, None)
        if config.uses_local_model:
            try:
                runtime.source = resolve_model(config.model_path, embedding_role=config.can_embed)
                path, loader = runtime.source.path, self._guarded(name, self._engine_loader)
            except ModelFileError as exc:
                path = Path(config.model_path or "demo model")
                loader = _unloadable(str(exc))
            idle_min = config.idle_unload_min
            worker = ModelWorker(name, path, settings, loader, on_state=self._on_state,
                                 idle_unload_s=idle_min * 60 if idle_min > 0 else None)
            runtime.replicas.append(Replica(name, name, worker))
        for remote in config.replicas:
            key = name if not runtime.replicas else f"{name}#{len(runtime.replicas) + 1}"
            runtime.replicas.append(self._remote_replica(key, name, remote, settings))
        if register:
            for replica in runtime.replicas:
                self._on_worker_added(replica.key, name, replica.worker)
        return runtime

    def _guarded(self, key: str, loader: EngineLoader) -> EngineLoader:
        """Before a local load: plan it against free memory (refused with the
        numbers if it does not fit; "auto" layers resolved), then, for a file
        not loaded before, load it once in a child process, so a file that
        makes ggml abort fails there and not in the app."""

        def load(path: Path, settings: LoadSettings) -> Engine:
            try:
                check_model_file(path)  # missing, empty, not GGUF: said plainly first
            except ModelFileError as exc:
                raise ModelLoadError(str(exc)) from exc
            info = read_info(path)
            if not info.error:  # an unreadable header: the load says why
                ram, vram = self._free_memory()
                held_ram, held_vram = self._reservations.others(key)
                plan = plan_load(info, settings.n_ctx, settings.n_gpu_layers, ram - held_ram,
                                 None if vram is None else vram - held_vram,
                                 can_offload=build_info().can_offload)
                self.plans[key] = plan
                if not plan.ok:
                    raise ModelLoadError(plan.message)
                if plan.message:
                    log.info("%s: %s", key, plan.message)
                settings = dataclasses.replace(settings, n_gpu_layers=plan.n_gpu_layers)
                self._reservations.hold(key, plan.estimate)
            try:
                result = check_model_loads(path, settings.n_ctx, settings.embedding)
                if not result.ok:
                    raise ModelLoadError(result.reason)
                if not result.cached:
                    log.info("%s passed its load check in %.2f s", path.name, result.seconds)
                return loader(path, settings)
            finally:
                self._reservations.release(key)

        return load

    def _remote_replica(self, key: str, role: str, replica: ReplicaConfig,
                        settings: LoadSettings) -> Replica:
        try:
            spec = replica_spec(replica)
        except EndpointError as exc:
            worker = ModelWorker(key, Path("server"), settings, _unloadable(str(exc)),
                                 on_state=self._on_state, remote=True)
            return Replica(key, role, worker)
        holder: list[ModelWorker] = []
        worker = ModelWorker(key, Path(spec.label), settings,
                             self._remote_loader(key, spec, holder),
                             on_state=self._on_state, slots=spec.slots or 1, remote=True)
        holder.append(worker)
        return Replica(key, role, worker, spec)

    def _remote_loader(self, key: str, spec: EndpointSpec,
                       holder: list[ModelWorker]) -> EngineLoader:
        """Connecting is asking the server once: a replica starts unavailable,
        with the reason, if the server is down or lacks the model."""

        def load(_path: Path, _settings: LoadSettings) -> Engine:
            from zeta_desktop.core.engines.remote import RemoteEngine
            from zeta_desktop.core.engines.server_probe import ServerProbe

            engine = RemoteEngine(spec)
            worker = holder[0]
            watched = Watched(worker, ServerProbe(spec), engine.learn_context,
                              engine.learn_server)
            HealthPoller.apply(key, watched, watched.probe.check())
            self.health.watch(key, watched)
            return engine

        return load

    def start(self) -> None:
        for runtime in self.roles.values():
            for replica in runtime.replicas:
                replica.worker.start()
        self.health.start()

    @property
    def endpoints(self) -> dict[str, Replica]:
        """Every replica of every role, by key."""
        return {r.key: r for runtime in self.roles.values() for r in runtime.replicas}

    def replica(self, key: str) -> Replica:
        for runtime in self.roles.values():
            for replica in runtime.replicas:
                if replica.key == key:
                    return replica
        raise KeyError(key)

    def role_of(self, key: str) -> str:
        """The role an endpoint serves (a role's own name is its first replica's key)."""
        return endpoint_role(key)

    def worker(self, key: str) -> ModelWorker:
        """An endpoint's worker; a role's name gives its first replica's."""
        return self.replica(key).worker

    def can_chat(self, role: str) -> bool:
        return self.roles[role].can_chat

    def can_embed(self, role: str) -> bool:
        return self.roles[role].config.can_embed

    def embed_role(self) -> str | None:
        return next((r for r in self.roles if self.can_embed(r)), None)

    def model_file(self, key: str) -> str:
        """What served an answer: the local file's name, or model@host for a server."""
        try:
            replica = self.replica(key)
        except KeyError:
            return ""
        if replica.endpoint is not None:
            return replica.endpoint.label
        source = self.roles[replica.role].source
        return source.path.name if source is not None else ""

    def replace(self, name: str, config: RoleConfig, timeout: float | None = None) -> None:
        """Point a role at another model: the old worker ends, a new one loads.

        Joins the old worker (which may still be loading), so call it off the
        GUI thread.
        """
        old = self.roles.get(name)
        for replica in old.replicas if old is not None else []:
            self.health.forget(replica.key)
            replica.worker.shutdown(timeout)
        with self._swap_lock:
            if self._closed:
                log.info("not loading %s for %s: the app is closing", config.model_path, name)
                return
            runtime = self._make_role(name, config)
            self.roles[name] = runtime
            for replica in runtime.replicas:
                replica.worker.start()

    def replace_hot(self, name: str, config: RoleConfig, timeout: float | None = None) -> str:
        """Load a role's new model beside the old one, and swap once it is ready.

        The old replicas keep answering meanwhile and finish what they hold.
        Returns '' once swapped, or why not (the old model is kept): a local
        model that does not load, or does not fit beside the one serving.
        Waits for the load, so call it off the GUI thread.
        """
        with self._swap_lock:
            if self._closed:
                return "the app is closing"
            runtime = self._make_role(name, config, register=False)
        for replica in runtime.replicas:
            replica.worker.start()
        for replica in runtime.replicas:
            replica.worker.wait_loaded(timeout)
        local = [r for r in runtime.replicas if r.endpoint is None]
        failed = [r for r in local if r.worker.state is WorkerState.UNAVAILABLE]
        if failed:
            why = failed[0].worker.detail
            for replica in runtime.replicas:
                self.health.forget(replica.key)
                replica.worker.shutdown(timeout)
            return why
        with self._swap_lock:
            if self._closed:
                for replica in runtime.replicas:
                    replica.worker.shutdown(timeout)
                return "the app is closing"
            old = self.roles.get(name)
            self.roles[name] = runtime
        for replica in runtime.replicas:
            self._on_worker_added(replica.key, name, replica.worker)
        for replica in old.replicas if old is not None else []:
            if replica.key not in {r.key for r in runtime.replicas}:
                self.health.forget(replica.key)
            replica.worker.retire(timeout)
        return ""

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return all(r.worker.wait_loaded(timeout) for r in self.endpoints.values())

    def usable(self, role: str) -> bool:
        """Some replica of the role can take work now."""
        return any(r.worker.state not in (WorkerState.UNAVAILABLE, WorkerState.STOPPED)
                   for r in self.roles[role].replicas)

    def shutdown(self, timeout: float | None = None) -> None:
        with self._swap_lock:
            self._closed = True
        self.health.stop(timeout)
        workers = [r.worker for r in self.endpoints.values()]
        for worker in workers:
            worker.cancel_all()
        for worker in workers:
            worker.shutdown(timeout)

    def embed_on(self, role: str, texts: list[str], timeout: float | None) -> list[list[float]]:
        job = EmbedJob(texts)
        self.worker(role).submit(job)
        return job.result.result(timeout)

    def count_tokens_on(self, role: str, texts: list[str], timeout: float | None) -> list[int]:
        job = CountJob(texts)
        self.worker(role).submit(job)
        return job.result.result(timeout)
