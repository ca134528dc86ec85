"""One background thread that asks every remote replica how it is.

Down replicas show as unavailable and get nothing; when the server answers
again the replica comes back by itself. Slots and context size are learned
from the server where it says them (llama-server's /props).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from zeta_desktop.core.engines.server_probe import ProbeResult, ServerProbe
from zeta_desktop.core.fleet.worker import ModelWorker

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 2.0


@dataclass
class Watched:
    worker: ModelWorker
    probe: ServerProbe
    on_context: Callable[[int], None]  # the server's context size, once known
    # Which server it is and the slots it reports (RemoteEngine.learn_server),
    # at every probe that reached it.
    on_server: Callable[[str, int | None], None] = field(default=lambda _kind, _slots: None)


class HealthPoller:
    def __init__(self, every_s: float = HEALTH_EVERY_S) -> None:
        self.every_s = every_s
        self._watched: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.checks = 0  # rounds done, for tests and the panel

    def watch(self, key: str, watched: Watched) -> None:
        with self._lock:
            old = self._watched.pop(key, None)
            self._watched[key] = watched
        if old is not None:
            old.probe.close()
        self._wake.set()

    def forget(self, key: str) -> None:
        with self._lock:
            old = self._watched.pop(key, None)
        if old is not None:
            old.probe.close()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="zeta-health", daemon=True)
            self._thread.start()

    def check_now(self) -> None:
        """Ask every server at once rather than at the next tick."""
        self._wake.set()

    def check_all(self) -> dict[str, ProbeResult]:
        with self._lock:
            watched = dict(self._watched)
        results = {}
        for key, entry in watched.items():
            if self._stop.is_set():
                break
            result = entry.probe.check()
            results[key] = result
            self.apply(key, entry, result)
        self.checks += 1
        return results

    @staticmethod
    def apply(key: str, entry: Watched, result: ProbeResult) -> None:
        worker = entry.worker
        was = worker.state.value
        load = (result.load.running, result.load.waiting) if result.load else None
        hit_rate = result.load.prefix_cache_hit_rate if result.load else None
        worker.set_server_state(result.up, result.detail, load, result.slots, hit_rate)
        if result.up:
            entry.on_server(result.kind, result.slots)
        if result.n_ctx:
            entry.on_context(result.n_ctx)
        if was != worker.state.value:
            log.info("%s: %s -> %s (%s)", key, was, worker.state.value, result.detail)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_all()
            except Exception:  # a probe bug must not end health checks for good
                log.exception("health check failed")
            self._wake.wait(self.every_s)
            self._wake.clear()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            watched, self._watched = list(self._watched.values()), {}
        for entry in watched:
            entry.probe.close()
