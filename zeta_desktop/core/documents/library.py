"""Document collections and the history's vectors: the one object the
session and the window use.

Collections are created, changed and listed here; the indexing itself runs on
its own thread (`indexer.Indexer`). Retrieval is hybrid: the question's
vector against the chunks' (exact cosine, `vectors.VectorCache`) and its words
against FTS5 (BM25), fused by weighted reciprocal rank. Searches use only
vectors of the current embedding model, never two models' mixed.

Every database call runs on the history store's thread (`run_db`, the
store's `run`), each call one transaction there, and that thread is the only
one that touches the vector caches (`stored_vectors.StoredVectors`). The
library's tables are its own (`index_db`); it reads the history's messages
only through the store's view of them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from zeta_desktop.core.documents import index_db
from zeta_desktop.core.documents.grounding import TOP_PASSAGES, fuse
from zeta_desktop.core.documents.index_db import CollectionInfo, StoredChunk
from zeta_desktop.core.documents.indexer import Embedder, Indexer, Progress
from zeta_desktop.core.documents.stored_vectors import StoredVectors

__all__ = ["DocumentLibrary", "Embedder", "MessageHit", "Progress", "StoreRunner"]

log = logging.getLogger(__name__)

T = TypeVar("T")
CANDIDATES = 20  # from each of the vector and keyword searches, before fusion
# Keyword matches count for less than meaning in the fusion (set on the dev
# questions of tests/data/docs_eval.toml, never on the held-out ones).
KEYWORD_WEIGHT = 0.5
QUERY_TIMEOUT_S = 30.0


class StoreRunner(Protocol):
    """The history store's `run`: a job on its thread, as one transaction."""

    def __call__(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]: ...


@dataclass(frozen=True)
class MessageHit:
    conversation_id: str
    conversation_title: str
    message_id: str
    snippet: str
    score: float


class DocumentLibrary:
    def __init__(self, run_db: StoreRunner, embedder: Embedder,
                 on_change: Callable[[], None] | None = None,
                 max_file_bytes: int | None = None) -> None:
        self._run_db = run_db
        # The first job on the file: every later one finds the tables there.
        run_db(index_db.create_tables)
        self._embedder = embedder
        self._vectors = StoredVectors()
        self.indexer = Indexer(run_db, embedder, self._vectors, on_change, max_file_bytes)

    def start(self) -> None:
        self.indexer.start()

    def stop(self) -> None:
        """Stop indexing after the current step (a batch being embedded ends first)."""
        self.indexer.stop()

    def shutdown(self, timeout: float | None = 10.0) -> None:
        self.indexer.stop()
        self.indexer.join(timeout)

    def _db(self, job: Callable[[sqlite3.Connection], T], timeout: float | None = 60.0) -> T:
        return self._run_db(job).result(timeout)

    @property
    def note(self) -> str:
        """Why indexing waits, if it does (no embedder, it failed), for the window."""
        return self.indexer.note

    @property
    def indexed_chunks(self) -> int:
        return self.indexer.indexed_chunks

    # -- what the window and the session call (any thread) ------------------------

    def create_collection(self, name: str, sources: Sequence[str]) -> Future[str]:
        paths = [str(Path(s).expanduser().resolve()) for s in sources]
        future = self._run_db(lambda c: index_db.create_collection(c, name, paths))
        return self._refresh_after(future, lambda created: created)

    def add_sources(self, collection_id: str, sources: Sequence[str]) -> Future[None]:
        paths = [str(Path(s).expanduser().resolve()) for s in sources]
        future = self._run_db(lambda c: index_db.add_sources(c, collection_id, paths))
        return self._refresh_after(future, lambda _none: collection_id)

    def remove_source(self, collection_id: str, source: str) -> Future[None]:
        future = self._run_db(lambda c: index_db.remove_source(c, collection_id, source))
        return self._refresh_after(future, lambda _none: collection_id)

    def _refresh_after(self, future: Future[T], collection_of: Callable[[T], str]) -> Future[T]:
        """Once the change is stored, the collection's files are looked at again."""

        def done(f: Future[T]) -> None:
            if not f.cancelled() and f.exception() is None:
                self.refresh(collection_of(f.result()))

        future.add_done_callback(done)
        return future

    def delete_collection(self, collection_id: str) -> Future[None]:
        self.indexer.forget_collection(collection_id)
        return self._run_db(lambda c: self._vectors.remove_chunks(
            index_db.delete_collection(c, collection_id)))

    def rename_collection(self, collection_id: str, name: str) -> Future[None]:
        return self._run_db(lambda c: index_db.rename_collection(c, collection_id, name))

    def set_watch(self, collection_id: str, watch: bool) -> Future[None]:
        return self._run_db(lambda c: index_db.set_watch(c, collection_id, watch))

    def collections(self) -> Future[list[CollectionInfo]]:
        model = self._embedder.model_id()
        return self._run_db(lambda c: index_db.collections(c, model))

    def refresh(self, collection_id: str, force: bool = False) -> None:
        """Look at a collection's files again (force: read every one again)."""
        self.indexer.refresh(collection_id, force)

    def embedder_changed(self) -> None:
        """The embedding role loaded, or points at another model: embed what
        has no vector from it, in the background."""
        self.indexer.embedder_changed()

    def messages_changed(self) -> None:
        """A message was stored: its vector comes when the thread is free."""
        self.indexer.messages_changed()

    def progress(self) -> dict[str, Progress]:
        return self.indexer.progress()

    def is_idle(self) -> bool:
        """Nothing queued, nothing being indexed (tests and benchmarks wait on it)."""
        return self.indexer.is_idle()

    # -- retrieval (blocking; the turn runner's dispatcher, benchmarks) -----------

    def retrieve(self, question: str, collection_ids: Sequence[str],
                 k: int = TOP_PASSAGES, mode: str = "fused",
                 query_vector: Sequence[float] | None = None) -> list[StoredChunk]:
        """The `k` chunks that best answer `question`: vector and keyword
        rankings fused (mode "vector" or "keyword": one alone). `query_vector`:
        the question's embedding when the caller has it (benchmarks time the
        search alone with it)."""
        ids = list(collection_ids)
        model = self._embedder.model_id()
        if mode != "keyword" and model is not None and query_vector is None:
            try:
                query_vector = self._embedder.embed([question])[0]
            except Exception as exc:  # keywords alone still answer
                log.warning("the question could not be embedded (%s): keywords only", exc)

        def job(c: sqlite3.Connection) -> list[StoredChunk]:
            rankings: list[list[int]] = []
            weights: list[float] = []
            if query_vector is not None and model is not None and mode != "keyword":
                cache = self._vectors.chunks(c, model)
                if cache.dimension in (None, len(query_vector)):
                    rankings.append([key for key, _s in cache.search(
                        query_vector, CANDIDATES, groups=ids) if isinstance(key, int)])
                    weights.append(1.0)
            if mode != "vector":
                rankings.append(index_db.keyword_search(c, question, ids, CANDIDATES))
                weights.append(KEYWORD_WEIGHT)
            best = fuse(rankings, weights)[:k]
            found = index_db.chunks_by_id(c, best)
            return [found[i] for i in best if i in found]

        return self._db(job, QUERY_TIMEOUT_S)

    def search_messages(self, text: str, k: int = 20) -> list[MessageHit]:
        """Past messages by meaning, across every conversation (blocking)."""
        model = self._embedder.model_id()
        if model is None or not text.strip():
            return []
        query = self._embedder.embed([text])[0]

        def job(c: sqlite3.Connection) -> list[MessageHit]:
            cache = self._vectors.messages(c, model)
            if cache.dimension not in (None, len(query)):
                return []
            nearest = [(str(key), score) for key, score in cache.search(query, 3 * k)]
            found = index_db.visible_messages(c, [key for key, _s in nearest])
            hits = [MessageHit(m.conversation_id, m.conversation_title, key,
                               " ".join(m.content.split())[:160], score)
                    for key, score in nearest if (m := found.get(key)) is not None]
            return hits[:k]

        return self._db(job, QUERY_TIMEOUT_S)
