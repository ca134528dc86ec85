"""The embedding role as the document library uses it: vectors, token counts, identity."""

from __future__ import annotations

from pathlib import Path

from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.fleet.worker import WorkerState

EMBED_TIMEOUT_S = 300.0  # a batch behind a long queue on a slow embedder
NOT_SERVING = (WorkerState.LOADING, WorkerState.UNAVAILABLE, WorkerState.STOPPED)


class FleetEmbedder:
    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def _role(self) -> str:
        role = self._fleet.embed_role()
        if role is None:
            raise RuntimeError("no role is set to embed")
        return role

    def model_id(self) -> str | None:
        """The embedding model's identity: its file (path and size) or its
        server's model; None while none serves. Vectors keep it, so vectors of
        two models are never compared."""
        role = self._fleet.embed_role()
        if role is None or self._fleet.worker(role).state in NOT_SERVING:
            return None
        replica = self._fleet.replica(role)
        if replica.endpoint is not None:
            return f"server:{replica.endpoint.label}"
        source = self._fleet.roles[role].source
        if source is None:
            return None
        path = Path(source.path)
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        return f"file:{path.resolve()}:{size}"

    def unavailable_reason(self) -> str:
        """Why model_id() is None, for the documents window."""
        role = self._fleet.embed_role()
        if role is None:
            return "no role is set to embed (Models: tick “embeds” on one)"
        worker = self._fleet.worker(role)
        if worker.state is WorkerState.LOADING:
            return f"waiting for the {role}'s model to load"
        return f"the {role} is {worker.state.value}: {worker.detail}".rstrip(": ")

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._fleet.embed_on(self._role(), texts, EMBED_TIMEOUT_S)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self._fleet.count_tokens_on(self._role(), texts, EMBED_TIMEOUT_S)
