"""An embedding index for the user's own embedder, built in the background.

The shipped index holds the demo embedder's vectors of the labelled training
prompts. Any other embedder places prompts elsewhere, so its vote needs the
same labelled prompts embedded by it: a sample of them (every kind in its
share, each prompt keeping its weight), embedded a few at a time while the
embedder has nothing else to do, and kept in the cache directory under the
embedder's fingerprint (its vectors of the probe sentences), so the next
start, or the same model under another name, finds it done.

The blend's scales and the vote's temperature were fitted for the demo
embedder; an index built here uses them unfitted, and says so.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from zeta_desktop.core.routing.learned import (
    PROBE_MATCH,
    EmbeddingIndex,
    TextModelError,
    load_index_texts,
)

log = logging.getLogger(__name__)

OWN_INDEX_PROMPTS = 4000  # enough neighbours per kind; minutes, not hours, on a 4B model
OWN_INDEX_MAX_PROMPTS = 100_000  # more than the shipped index holds: all of it
BATCH = 8  # prompts per embedding job: short enough not to hold a chat prompt up long
FORMAT = 1

Embed = Callable[[Sequence[str]], list[list[float]]]
Progress = Callable[[int, int], None]  # (embedded so far, of)


class BuildCancelledError(Exception):
    """The embedder changed or the app is closing: the index was not finished."""


def sample_rows(labels: np.ndarray, count: int) -> np.ndarray:
    """`count` rows of the shipped index, each kind in its share, the same
    rows every time (a fixed shuffle), in index order."""
    if count >= len(labels):
        return np.arange(len(labels))
    order = np.random.default_rng(20261203).permutation(len(labels))
    chosen: list[np.ndarray] = []
    for label in np.unique(labels):
        of_kind = order[labels[order] == label]
        share = max(1, round(count * len(of_kind) / len(labels)))
        chosen.append(of_kind[:share])
    return np.sort(np.concatenate(chosen))


def fingerprint(probe_vectors: Sequence[Sequence[float]], prompts: int) -> str:
    """Names an embedder's index: its vectors of the probe sentences (rounded,
    so the same model gives the same name) and the sample's size."""
    rounded = np.round(np.asarray(probe_vectors, dtype=np.float64), 3) + 0.0  # no -0.0
    digest = hashlib.sha256(rounded.tobytes() + f"|{prompts}|{FORMAT}".encode())
    return digest.hexdigest()[:24]


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)


class OwnIndexBuilder:
    """Builds (or finds) the index for one embedder. `build` runs on the
    caller's thread and blocks until done, cancelled, or the embedder fails."""

    def __init__(
        self,
        shipped: EmbeddingIndex,
        embed: Embed,
        probe_vectors: list[list[float]],
        model_name: str,
        cache_dir: Path,
        prompts: int = OWN_INDEX_PROMPTS,
        wait_idle: Callable[[], None] = lambda: None,
        cancelled: threading.Event | None = None,
        progress: Progress = lambda done, total: None,
    ) -> None:
        self._shipped = shipped
        self._embed = embed
        self._probe_vectors = probe_vectors
        self._model_name = model_name
        self._rows = sample_rows(shipped.labels, prompts)
        self._path = cache_dir / f"own-index-{fingerprint(probe_vectors, len(self._rows))}.npz"
        self._wait_idle = wait_idle
        self._cancelled = cancelled or threading.Event()
        self._progress = progress

    @property
    def path(self) -> Path:
        return self._path

    @property
    def cancelled(self) -> threading.Event:
        return self._cancelled

    @property
    def prompts(self) -> int:
        return len(self._rows)

    def build(self) -> EmbeddingIndex:
        vectors = self._cached()
        if vectors is None:
            vectors = _unit(self._embedded())  # unit length first: float16 holds it
            self._save(vectors)
        return self._index(vectors)

    def _index(self, vectors: np.ndarray) -> EmbeddingIndex:
        return replace(
            self._shipped,
            vectors=_unit(vectors.astype(np.float32)),
            labels=self._shipped.labels[self._rows],
            weights=self._shipped.weights[self._rows],
            model_name=self._model_name,
            probe_vectors=_unit(np.asarray(self._probe_vectors, dtype=np.float64)),
        )

    def _embedded(self) -> np.ndarray:
        texts = load_index_texts(len(self._shipped.labels))
        wanted = [texts[row] for row in self._rows]
        done: list[list[float]] = []
        self._progress(0, len(wanted))
        for start in range(0, len(wanted), BATCH):
            self._wait_idle()  # the user's own work on the embedder goes first
            if self._cancelled.is_set():
                raise BuildCancelledError(f"stopped after {len(done)} of {len(wanted)} prompts")
            batch = self._embed(wanted[start:start + BATCH])
            if len(batch) != len(wanted[start:start + BATCH]):
                raise TextModelError(f"the embedder gave {len(batch)} vectors for "
                                     f"{len(wanted[start:start + BATCH])} prompts")
            done.extend(batch)
            self._progress(len(done), len(wanted))
        matrix = np.asarray(done, dtype=np.float32)
        if matrix.ndim != 2 or not np.isfinite(matrix).all():
            raise TextModelError("the embedder gave vectors of differing sizes, or not numbers")
        return matrix

    def _cached(self) -> np.ndarray | None:
        """The vectors built before for this embedder, if whole and its own."""
        try:
            with np.load(self._path, allow_pickle=False) as data:
                vectors, rows, probes = data["vectors"], data["rows"], data["probes"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError) as exc:
            log.warning("rebuilding the embedding index in %s: %s", self._path, exc)
            return None
        given = _unit(np.asarray(self._probe_vectors, dtype=np.float64))
        same_embedder = (probes.shape == given.shape
                         and float((_unit(probes.astype(np.float64)) * given).sum(1).min())
                         >= PROBE_MATCH)
        if not same_embedder or not np.array_equal(rows, self._rows) or len(vectors) != len(rows):
            log.warning("rebuilding the embedding index in %s: built for another embedder "
                        "or sample", self._path)
            return None
        self._progress(len(rows), len(rows))
        return vectors.astype(np.float32)

    def _save(self, vectors: np.ndarray) -> None:
        """Written whole or not at all (a crash mid-write leaves no half index)."""
        buffer = io.BytesIO()
        np.savez(buffer, vectors=vectors.astype(np.float16), rows=self._rows,
                 probes=np.asarray(self._probe_vectors, dtype=np.float32))
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            partial = self._path.with_suffix(".partial")
            partial.write_bytes(buffer.getvalue())
            os.replace(partial, self._path)
        except OSError as exc:  # it still votes this run; it is built again next time
            log.warning("could not keep the embedding index in %s: %s", self._path, exc)
