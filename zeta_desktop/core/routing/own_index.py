"""An embedding index for the user's own embedder, built in the background.

The shipped index holds the demo embedder's vectors of the labelled training
prompts. Any other embedder places prompts elsewhere, so its vote needs the
same labelled prompts embedded by it: a sample of them (every kind in its
share, each prompt keeping its weight), embedded a few at a time while the
embedder has nothing else to do, and kept in the cache directory under the
embedder's fingerprint (its vectors of the probe sentences), so the next
start, or the same model under another name, finds it done.

A big embedder on a CPU embeds slowly (the demo chat model, 135M, reads
about one and a half index prompts a second on one thread; a 4B model is some thirty
times slower): prompts are embedded in a fixed shuffle, timed as they go,
and a sample the embedder cannot embed in about OWN_INDEX_BUDGET_S is halved
until it can, down to OWN_INDEX_FEWEST_PROMPTS.

The blend's scales and the vote's temperature were fitted for the demo
embedder; an index built here uses them unfitted, and says so.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from zeta_desktop.core.routing.learned import (
    PROBE_MATCH,
    EmbeddingIndex,
    Float32Array,
    TextModelError,
    load_index_texts,
)
from zeta_desktop.core.settings import OWN_INDEX_PROMPTS

log = logging.getLogger(__name__)

OWN_INDEX_BUDGET_S = 900.0  # of the embedder's idle time, once per model
OWN_INDEX_FEWEST_PROMPTS = 500  # the smallest sample a slow embedder is cut to
BATCH = 8  # prompts per embedding job: short enough not to hold a chat prompt up long
FORMAT = 2

Embed = Callable[[Sequence[str]], list[list[float]]]
Progress = Callable[[int, int], None]  # (embedded so far, of)
FloatT = TypeVar("FloatT", bound=np.floating[Any])


class BuildCancelledError(Exception):
    """The embedder changed or the app is closing: the index was not finished."""


class EmbedderTooSlowError(Exception):
    """The embedder takes longer on one prompt than routing may wait for its vote."""


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


def fingerprint(probe_vectors: Sequence[Sequence[float]]) -> str:
    """Names an embedder's indexes: its vectors of the probe sentences
    (rounded, so the same model gives the same name)."""
    rounded = np.round(np.asarray(probe_vectors, dtype=np.float64), 3) + 0.0  # no -0.0
    digest = hashlib.sha256(rounded.tobytes() + f"|{FORMAT}".encode())
    return digest.hexdigest()[:24]


def affordable_prompts(wanted: int, seconds_per_prompt: float, budget_s: float,
                       fewest: int = OWN_INDEX_FEWEST_PROMPTS) -> int:
    """`wanted` halved until the embedder can embed it in `budget_s`, but not
    below `fewest` (nor above `wanted`)."""
    size = wanted
    while size // 2 >= fewest and size * seconds_per_prompt > budget_s:
        size //= 2
    return size


def _unit(matrix: npt.NDArray[FloatT]) -> npt.NDArray[FloatT]:
    norms: npt.NDArray[FloatT] = np.linalg.norm(matrix, axis=1, keepdims=True)
    nonzero = np.clip(norms, 1e-12, None)
    unit: npt.NDArray[FloatT] = matrix / nonzero
    return unit


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
        budget_s: float = OWN_INDEX_BUDGET_S,
        fewest: int = OWN_INDEX_FEWEST_PROMPTS,
        slowest_s: float | None = None,
    ) -> None:
        self._shipped = shipped
        self._embed = embed
        self._probe_vectors = probe_vectors
        self._model_name = model_name
        self._cache_dir = cache_dir
        self._fingerprint = fingerprint(probe_vectors)
        self._wanted = prompts
        self._budget_s = budget_s
        self._fewest = fewest
        self._slowest_s = slowest_s
        self._wait_idle = wait_idle
        self._cancelled = cancelled or threading.Event()
        self._progress = progress
        self._texts = load_index_texts(len(shipped.labels))
        self._sample(prompts)
        self.seconds_per_prompt: float | None = None  # measured on the first batch

    def _sample(self, prompts: int) -> None:
        self._rows = sample_rows(self._shipped.labels, prompts)
        self._path = self._cache_dir / f"own-index-{self._fingerprint}-{len(self._rows)}.npz"

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

    def _cached(self) -> Float32Array | None:
        """An index built before for this embedder and this setting, of the
        size the budget chose then (the largest such file)."""
        found = sorted(self._cache_dir.glob(f"own-index-{self._fingerprint}-*.npz"),
                       key=lambda p: -_size_of(p))
        for path in found:
            size = _size_of(path)
            if 0 < size <= len(self._rows):
                kept = self._read(path, size)
                if kept is not None:
                    return kept
        return None

    def _index(self, vectors: Float32Array) -> EmbeddingIndex:
        return replace(
            self._shipped,
            vectors=_unit(vectors.astype(np.float32)),
            labels=self._shipped.labels[self._rows],
            weights=self._shipped.weights[self._rows],
            model_name=self._model_name,
            probe_vectors=_unit(np.asarray(self._probe_vectors, dtype=np.float64)),
        )

    def _embedded(self) -> Float32Array:
        """The sample's vectors, embedded in a fixed shuffle, so the time per
        prompt so far is a fair guess at the rest (the index runs from short
        prompts to long). After every batch the sample is sized again from
        that time; a smaller sample is part of a bigger one, so what is done
        is kept."""
        done: dict[int, list[float]] = {}
        spent = 0.0
        self._progress(0, len(self._rows))
        order = self._order()
        while pending := [row for row in order if row not in done]:
            self._wait_idle()  # the user's own work on the embedder goes first
            if self._cancelled.is_set():
                raise BuildCancelledError(
                    f"stopped after {len(self._rows) - len(pending)} of {len(self._rows)} prompts")
            batch = pending[:BATCH]
            start = time.perf_counter()
            vectors = self._checked([self._texts[row] for row in batch])
            spent += time.perf_counter() - start
            first = not done
            done.update(zip(batch, vectors, strict=True))
            self.seconds_per_prompt = spent / len(done)
            if first and self._slowest_s is not None and self.seconds_per_prompt > self._slowest_s:
                raise EmbedderTooSlowError(
                    f"it takes {self.seconds_per_prompt:.1f} s to embed a prompt, and a prompt "
                    f"waits at most {self._slowest_s:g} s for the vote")
            if self._resize(self.seconds_per_prompt):
                order = self._order()
            self._progress(sum(1 for row in self._rows if row in done), len(self._rows))
        matrix = np.asarray([done[row] for row in self._rows], dtype=np.float32)
        if matrix.ndim != 2 or not np.isfinite(matrix).all():
            raise TextModelError("the embedder gave vectors of differing sizes, or not numbers")
        return matrix

    def _order(self) -> list[int]:
        """The sample in a fixed shuffle, the rows of the smallest sample it
        could be cut to first: those are never wasted."""
        smallest = set(sample_rows(self._shipped.labels,
                                   min(self._fewest, len(self._rows))).tolist())
        shuffled = [int(row) for row in np.random.default_rng(7).permutation(self._rows)]
        return ([row for row in shuffled if row in smallest]
                + [row for row in shuffled if row not in smallest])

    def _resize(self, seconds_per_prompt: float) -> bool:
        size = affordable_prompts(self._wanted, seconds_per_prompt, self._budget_s,
                                  min(self._fewest, self._wanted))
        before = len(self._rows)
        if len(sample_rows(self._shipped.labels, size)) != before:
            self._sample(size)
            log.info("the embedder takes %.2f s a prompt: its own index holds %d prompts, "
                     "not %d", seconds_per_prompt, len(self._rows), before)
            return True
        return False

    def _checked(self, texts: list[str]) -> list[list[float]]:
        vectors = self._embed(texts)
        if len(vectors) != len(texts):
            raise TextModelError(f"the embedder gave {len(vectors)} vectors for "
                                 f"{len(texts)} prompts")
        return vectors

    def _read(self, path: Path, size: int) -> Float32Array | None:
        """The vectors in `path`, if whole, this embedder's, and built for
        this setting; the builder then takes that file's sample."""
        try:
            with np.load(path, allow_pickle=False) as data:
                vectors: npt.NDArray[np.floating[Any]] = data["vectors"]  # float16 as saved
                rows, probes = data["rows"], data["probes"]
                wanted = int(data["wanted"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError) as exc:
            log.warning("rebuilding the embedding index in %s: %s", path, exc)
            return None
        given = _unit(np.asarray(self._probe_vectors, dtype=np.float64))
        same_embedder = (probes.shape == given.shape
                         and float((_unit(probes.astype(np.float64)) * given).sum(1).min())
                         >= PROBE_MATCH)
        expected = sample_rows(self._shipped.labels, size)
        if (not same_embedder or wanted != self._wanted or not np.array_equal(rows, expected)
                or len(vectors) != len(rows)):
            log.info("not using the embedding index in %s: built for another embedder, "
                     "sample or setting", path)
            return None
        self._sample(size)
        self._progress(len(rows), len(rows))
        return vectors.astype(np.float32)

    def _save(self, vectors: Float32Array) -> None:
        """Written whole or not at all (a crash mid-write leaves no half index)."""
        buffer = io.BytesIO()
        np.savez(buffer, vectors=vectors.astype(np.float16), rows=self._rows,
                 probes=np.asarray(self._probe_vectors, dtype=np.float32),
                 wanted=np.int64(self._wanted))
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            partial = self._path.with_suffix(".partial")
            partial.write_bytes(buffer.getvalue())
            os.replace(partial, self._path)
        except OSError as exc:  # it still votes this run; it is built again next time
            log.warning("could not keep the embedding index in %s: %s", self._path, exc)


def _size_of(path: Path) -> int:
    """The sample size in an index file's name (own-index-<fingerprint>-<size>.npz)."""
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0
