"""The indexing thread: files read and chunked, chunks and messages embedded.

One thread ("zeta-docs", below the window's priority):
- reading: a collection's files are listed, the changed ones read and cut
  into chunks (their sizes counted by the embedder's tokenizer), and their
  chunks stored, without vectors yet, in place of the old ones;
- embedding: chunks with no vector from the current embedder are embedded in
  small batches on the embedding role's worker, so a chat prompt sent to that
  model waits at most one batch; the vectors go into SQLite and the in-memory
  matrix the searches use;
- then the messages of the history that have no vector yet, newest first;
- then, every few seconds, watched collections are looked at again.
Everything persistent is in the history file, so an interrupted run resumes
where it stopped: unembedded chunks are simply the next batch, and a new
embedding model makes every chunk unembedded again (vectors keep their model).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from zeta_desktop.core.documents import index_db
from zeta_desktop.core.documents.chunking import chunk_sections
from zeta_desktop.core.documents.extract import UnreadableError, extract, kind_of
from zeta_desktop.core.documents.scan import compare, files_under, sha256_of
from zeta_desktop.core.documents.stored_vectors import StoredVectors
from zeta_desktop.core.documents.vectors import to_blob
from zeta_desktop.core.engines.base import EngineError, TransientEngineError
from zeta_desktop.core.fleet.thread_priority import lower_current_thread_priority

log = logging.getLogger(__name__)

T = TypeVar("T")
EMBED_BATCH = 16  # chunks per embedding job: a prompt on the embedder waits one batch
WATCH_INTERVAL_S = 10.0
RETRY_S = (2.0, 5.0, 15.0, 30.0, 60.0)  # the embedder failed: try again after these


class Embedder(Protocol):
    """The embedding role, as the library uses it (from its own thread, blocking)."""

    def model_id(self) -> str | None:
        """Names the model the vectors come from; None: no embedder now."""
        ...

    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


class DbRunner(Protocol):
    """Runs a job on the history store's thread; its answer comes back through a Future."""

    def __call__(self, job: Callable[[sqlite3.Connection], T], /) -> Future[T]: ...


@dataclass(frozen=True)
class Progress:
    """A collection's indexing, as the window shows it."""

    state: str  # "idle", "reading", "embedding", "waiting"
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    eta_s: float | None = None
    note: str = ""  # what it waits for, or the file being read

    @property
    def fraction(self) -> float:
        if self.state == "reading" and self.files_total:
            return self.files_done / self.files_total
        if self.chunks_total:
            return self.chunks_done / self.chunks_total
        return 1.0 if self.state == "idle" else 0.0


class Indexer:
    def __init__(self, run_db: DbRunner, embedder: Embedder, vectors: StoredVectors,
                 on_change: Callable[[], None] | None = None,
                 max_file_bytes: int | None = None) -> None:
        self._run_db = run_db
        self._embedder = embedder
        self._vectors = vectors
        self._on_change = on_change
        self._max_file_bytes = max_file_bytes
        self._commands: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._progress: dict[str, Progress] = {}
        self._progress_lock = threading.Lock()
        self._deleted: set[str] = set()
        # A collection's folders or files that were not there at its last scan
        # (an unplugged drive, a renamed folder): the window says so.
        self.missing: dict[str, list[str]] = {}
        self._messages_dirty = threading.Event()
        self._messages_dirty.set()  # at start: whatever the history holds
        self.note = ""  # why indexing waits (no embedder, it failed), for the window
        self.indexed_chunks = 0  # embedded by this run (benchmarks, tests)
        self.refused_chunks = 0  # the model would not embed them: found by keywords only
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zeta-docs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current step (a batch being embedded ends first)."""
        self._stopping.set()
        self._commands.put(None)

    def join(self, timeout: float | None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _db(self, job: Callable[[sqlite3.Connection], T], timeout: float | None = 60.0) -> T:
        return self._run_db(job).result(timeout)

    # -- what the library asks (any thread) ------------------------------------------

    def refresh(self, collection_id: str, force: bool = False) -> None:
        """Look at a collection's files again (force: read every one again)."""
        self._set_progress(collection_id, Progress("reading", note="queued"))
        self._commands.put(("scan", (collection_id, force)))

    def embedder_changed(self) -> None:
        self._commands.put(("embed", None))
        self._messages_dirty.set()

    def messages_changed(self) -> None:
        self._messages_dirty.set()
        self._commands.put(("messages", None))

    def forget_collection(self, collection_id: str) -> None:
        """It is being deleted: a scan of it under way stops, its progress goes."""
        with self._progress_lock:
            self._progress.pop(collection_id, None)
            self._deleted.add(collection_id)

    def progress(self) -> dict[str, Progress]:
        with self._progress_lock:
            return dict(self._progress)

    def is_idle(self) -> bool:
        with self._progress_lock:
            busy = any(p.state != "idle" for p in self._progress.values())
        return not busy and self._commands.empty() and not self._messages_dirty.is_set()

    # -- the thread ---------------------------------------------------------------------


    def _set_progress(self, collection_id: str, progress: Progress) -> None:
        with self._progress_lock:
            if collection_id in self._deleted:
                return
            self._progress[collection_id] = progress
        if self._on_change is not None:
            self._on_change()

    def _run(self) -> None:
        lower_current_thread_priority()
        failures = 0
        retry: list[tuple[str, Any]] = []  # scans the embedder's absence stopped
        next_watch = time.monotonic() + WATCH_INTERVAL_S
        self._commands.put(("embed", None))  # whatever an earlier run left unembedded
        while not self._stopping.is_set():
            wait = RETRY_S[min(failures - 1, len(RETRY_S) - 1)] if failures else max(
                0.0, next_watch - time.monotonic())
            try:
                command = self._commands.get(timeout=wait)
            except queue.Empty:
                command = ("watch", None)
                if failures:
                    for again in retry:
                        self._commands.put(again)
                    retry.clear()
                    command = ("embed", None)
            if command is None:
                return
            try:
                what, argument = command
                if what == "scan":
                    self._scan(*argument)
                if what == "watch":
                    next_watch = time.monotonic() + WATCH_INTERVAL_S
                    self._watch()
                if self._commands.empty():
                    self._embed_backlog()
                    self._embed_messages()
                failures = 0
                self.note = ""
            except Exception as exc:  # the thread lives on; the window shows why
                if self._stopping.is_set():
                    return  # the app is closing: its store or embedder went first
                if command[0] == "scan" and command not in retry:
                    retry.append(command)
                failures += 1
                if isinstance(exc, _EmbedderUnavailableError):
                    self.note = str(exc)
                else:
                    log.exception("indexing failed")
                    self.note = f"indexing failed: {type(exc).__name__}: {exc}"
                self._mark_waiting(self.note)

    def _mark_waiting(self, why: str) -> None:
        with self._progress_lock:
            for key, progress in self._progress.items():
                if progress.state != "idle":
                    self._progress[key] = replace(progress, state="waiting", note=why)
        if self._on_change is not None:
            self._on_change()

    def _watch(self) -> None:
        for info in self._db(lambda c: index_db.collections(c, None)):
            if info.watch:
                self._scan(info.id, False, quiet=True)

    def _model(self) -> str:
        model = self._embedder.model_id()
        if model is None:
            why = getattr(self._embedder, "unavailable_reason", lambda: "")()
            raise _EmbedderUnavailableError(why or "waiting for the embedding model")
        return model

    def _count(self, texts: Sequence[str]) -> list[int]:
        try:
            return self._embedder.count_tokens(list(texts))
        except Exception as exc:
            raise _EmbedderUnavailableError(f"the embedder cannot count tokens ({exc})") from exc

    def _scan(self, collection_id: str, force: bool, quiet: bool = False) -> None:
        infos = {i.id: i for i in self._db(lambda c: index_db.collections(c, None))}
        info = infos.get(collection_id)
        if info is None:  # deleted meanwhile
            return
        stored = self._db(lambda c: index_db.stored_files(c, collection_id))
        on_disk, missing = files_under(info.sources)
        changes = compare(on_disk, missing, stored)
        changed = on_disk if force else changes.changed
        if quiet and not changed and not changes.removed:
            return
        self._model()  # chunk sizes need the embedder's tokenizer
        if changes.removed:
            gone = self._db(lambda c: index_db.remove_files(c, collection_id, changes.removed))
            self._forget(gone)
        total = len(changed)
        for done, file in enumerate(changed):
            if self._stopping.is_set() or collection_id in self._deleted:
                return
            self._set_progress(collection_id, Progress(
                "reading", done, total, note=Path(file.path).name))
            self._read_file(collection_id, file.path, stored.get(file.path), force)
        for source in changes.missing_sources:
            log.warning("collection %s: %s is not there", info.name, source)
        with self._progress_lock:
            self.missing[collection_id] = list(changes.missing_sources)
        self._set_progress(collection_id, Progress("embedding", total, total))

    def _read_file(self, collection_id: str, path: str, before: index_db.StoredFile | None,
                   force: bool) -> None:
        kind = kind_of(Path(path)) or "unknown"
        try:
            stat = Path(path).stat()
            size, mtime = stat.st_size, stat.st_mtime
            digest = sha256_of(path)
        except OSError as exc:
            self._store_file(collection_id, path, 0, 0.0, "", kind,
                             f"cannot be read ({exc.strerror or exc})", [])
            return
        if before is not None and before.sha256 == digest and before.error is None and not force:
            self._db(lambda c: index_db.touch_file(c, before.id, size, mtime))
            return
        try:
            extracted = extract(Path(path), **(
                {"max_bytes": self._max_file_bytes} if self._max_file_bytes else {}))
            chunks = chunk_sections(extracted.sections, extracted.kind, self._count)
            error = None if chunks else "no text in it"
        except UnreadableError as exc:
            chunks, error = [], str(exc)
        self._store_file(collection_id, path, size, mtime, digest, kind, error, chunks)

    def _store_file(self, collection_id: str, path: str, size: int, mtime: float, digest: str,
                    kind: str, error: str | None, chunks: list[Any]) -> None:
        try:
            old = self._db(lambda c: index_db.replace_file(
                c, collection_id, path, size, mtime, digest, kind, error, chunks))
        except sqlite3.IntegrityError:
            if collection_id in self._deleted:
                return  # removed while this file was being read
            raise
        self._forget(old)

    def _forget(self, chunk_ids: list[int]) -> None:
        if chunk_ids:
            self._db(lambda _c: self._vectors.remove_chunks(chunk_ids))

    def _embed_backlog(self) -> None:
        model = self._model()
        remaining = self._db(lambda c: index_db.count_unembedded(c, model))
        if not remaining:
            self._finish_all()
            return
        totals = self._db(index_db.chunk_counts)
        for key, left in remaining.items():
            total = max(totals.get(key, 0), left)
            self._set_progress(key, Progress("embedding", chunks_done=total - left,
                                             chunks_total=total))
        started = time.perf_counter()
        embedded = 0
        while not self._stopping.is_set():
            if not self._commands.empty():  # a scan or a new folder first; back after it
                return
            batch = self._db(lambda c: index_db.unembedded_chunks(c, model, EMBED_BATCH))
            if not batch:
                break
            vectors = self._embed_chunks([ch.for_embedding() for ch in batch])
            if self._embedder.model_id() != model:  # switched meanwhile: not these vectors
                return
            rows = [(ch.id, to_blob(v)) for ch, v in zip(batch, vectors, strict=True)]

            def store(c: sqlite3.Connection, rows: list[tuple[int, bytes]] = rows) -> None:
                self._vectors.add_chunks(model, index_db.store_chunk_vectors(c, model, rows))

            self._db(store)
            embedded += len(batch)
            self.indexed_chunks += len(batch)
            rate = embedded / max(1e-6, time.perf_counter() - started)
            for chunk in batch:
                key = chunk.collection_id
                remaining[key] = max(0, remaining.get(key, 1) - 1)
            # Each collection as a whole: its chunks, and those with a current vector.
            for key, left in remaining.items():
                total = max(totals.get(key, 0), left)
                self._set_progress(key, Progress(
                    "embedding" if left else "idle", chunks_done=total - left,
                    chunks_total=total, eta_s=left / rate if rate > 0 else None))
        self._finish_all()

    def _embed_chunks(self, texts: list[str]) -> list[list[float]]:
        """Their vectors (chunks', or messages'). A text the model refuses (a server's limit, a
        tokenizer's error) gets a zero vector, found by keywords only, so one
        bad chunk never holds up the rest; an embedder that refuses everything,
        or is busy or gone, makes the whole run wait and try again."""
        try:
            return self._embedder.embed(texts)
        except TransientEngineError as exc:
            raise _EmbedderUnavailableError(f"the embedder is busy ({exc}); retrying") from exc
        except EngineError as exc:
            refused = exc
        except Exception as exc:
            raise _EmbedderUnavailableError(f"the embedder failed ({exc}); retrying") from exc
        try:
            dimension = len(self._embedder.embed(["a short check"])[0])
        except Exception as exc:
            raise _EmbedderUnavailableError(
                f"the embedder failed ({refused}); retrying") from exc
        vectors = []
        for text in texts:
            try:
                vectors.append(self._embedder.embed([text])[0])
            except EngineError as exc:
                log.warning("a chunk was refused by the embedder (%s): keywords only", exc)
                self.refused_chunks += 1
                vectors.append([0.0] * dimension)
        return vectors

    def _finish_all(self) -> None:
        with self._progress_lock:
            for key, progress in self._progress.items():
                if progress.state in ("embedding", "waiting"):
                    self._progress[key] = Progress(
                        "idle", progress.files_done, progress.files_total,
                        progress.chunks_total, progress.chunks_total)
        if self._on_change is not None:
            self._on_change()

    def _embed_messages(self) -> None:
        if not self._messages_dirty.is_set():
            return
        model = self._embedder.model_id()
        if model is None:
            return
        self._messages_dirty.clear()
        while not self._stopping.is_set() and self._commands.empty():
            batch = self._db(lambda c: index_db.unembedded_messages(c, model, EMBED_BATCH))
            if not batch:
                return
            try:
                vectors = self._embed_chunks([text[:2000] for _id, text in batch])
            except _EmbedderUnavailableError:
                self._messages_dirty.set()
                raise
            rows = [(mid, to_blob(v)) for (mid, _t), v in zip(batch, vectors, strict=True)]

            def store(c: sqlite3.Connection, rows: list[tuple[str, bytes]] = rows) -> None:
                self._vectors.add_messages(model,
                                           index_db.store_message_vectors(c, model, rows))

            self._db(store)
        if not self._commands.empty():
            self._messages_dirty.set()


class _EmbedderUnavailableError(Exception):
    pass
