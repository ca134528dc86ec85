"""The history file and the one thread that runs every job on it.

One thread owns the connection and runs every read and write in order, as
Anki serialises its collection: callers on the GUI or a worker thread hand it
a job and get a Future back, so nobody waits on the disk unless they choose
to. Each job is one transaction (a unit of work): it commits when the job
returns and rolls back when it raises, so the parts that keep tables in the
file (the history, the document library) never open or close transactions
themselves. WAL mode with `synchronous = FULL`: a committed job survives a
crash of the app and of the machine.

What can go wrong never stops the app and never deletes a file:
- a corrupt file, or one written by a newer version, is moved aside (kept)
  and a fresh database started, with a problem saying so and where;
- a data directory that is read-only or full: the store keeps working in
  memory and says plainly that history is not being saved.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from zeta_desktop.core.fleet.thread_priority import lower_current_thread_priority
from zeta_desktop.core.paths import unused_sibling
from zeta_desktop.core.store.schema import SCHEMA_VERSION, migrate, publish_views, version_of

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]


class StoreClosedError(Exception):
    pass


def _moved_aside(path: Path, why: str) -> Path:
    target = unused_sibling(path, why)
    path.rename(target)
    for suffix in ("-wal", "-shm"):  # they belong to the file moved aside
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


def _connect(path: Path | str) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch to WAL (journal mode {mode})")
        connection.execute("PRAGMA synchronous = FULL")
    return connection


def _damaged(exc: sqlite3.Error) -> bool:
    """A file that is not a database or is corrupt (not: cannot be opened or written)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.OperationalError
    )


def _ready(connection: sqlite3.Connection) -> sqlite3.Connection:
    migrate(connection)
    publish_views(connection)
    return connection


def open_database(path: Path) -> tuple[sqlite3.Connection, list[str], bool]:
    """Open (or create) the history file; returns (connection, problems, persistent)."""
    problems: list[str] = []
    for _attempt in range(3):
        connection: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = _connect(path)
            version = version_of(connection)
            if version > SCHEMA_VERSION:
                connection.close()
                kept = _moved_aside(path, f"newer-v{version}")
                problems.append(
                    f"the history at {path} is from a newer Zeta Desktop (schema {version}, "
                    f"this one reads {SCHEMA_VERSION}); it was kept as {kept} and a new "
                    "history started"
                )
                continue
            check = connection.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check}")
            return _ready(connection), problems, True
        except (OSError, sqlite3.Error) as exc:
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            if not (isinstance(exc, sqlite3.Error) and _damaged(exc) and path.exists()):
                return _in_memory(problems, f"{path} cannot be opened or written ({exc})")
            try:
                kept = _moved_aside(path, "corrupt")
            except OSError as move_error:
                return _in_memory(problems, f"{path} is damaged ({exc}) and cannot be moved "
                                            f"aside ({move_error})")
            problems.append(
                f"the history at {path} was damaged ({exc}); it was kept as {kept} and a "
                "new history started"
            )
    return _in_memory(problems, f"{path} could not be opened")


def _in_memory(problems: list[str], why: str) -> tuple[sqlite3.Connection, list[str], bool]:
    problems.append(f"history is not being saved: {why}. Chats work, but are lost on exit.")
    return _ready(_connect(":memory:")), problems, False


def _in_transaction(job: Job[T], connection: sqlite3.Connection) -> T:
    """The one place a transaction opens and closes."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = job(connection)
        connection.execute("COMMIT")
    except BaseException:
        # A full disk or an I/O error may have rolled it back already.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


class Writer:
    """The file's one thread. Every method returns at once; results come as Futures."""

    def __init__(self, path: Path, on_problem: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._on_problem = on_problem
        self.problems: list[str] = []
        self.persistent = False
        # Set once the file is open (or the store fell back to memory); jobs
        # handed in before then wait their turn behind the opening.
        self.opened: Future[list[str]] = Future()
        # A job and its future, or None: stop.
        self._jobs: queue.Queue[tuple[Job[Any], Future[Any]] | None] = queue.Queue()
        self._write_failed = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="zeta-store", daemon=True)
        self._thread.start()

    def run(self, job: Job[T]) -> Future[T]:
        """`job` on the file's thread, in turn with every other, as one transaction."""
        future: Future[T] = Future()
        if self._closed:
            future.set_exception(StoreClosedError("the history store is closed"))
            return future
        self._jobs.put((job, future))
        return future

    def wait_open(self, timeout: float | None = 10.0) -> list[str]:
        """Block until the file is open; returns the problems met (tests, the CLI)."""
        return self.opened.result(timeout)

    def flush(self, timeout: float | None = 10.0) -> None:
        """Wait until every job handed in so far is done (tests, shutdown)."""
        self.run(lambda _c: None).result(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish every job handed in so far, then close the file."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        # Below the window's priority, as the models are: a write may wait a
        # few ms, the window's next frame should not.
        lower_current_thread_priority()
        # Opened here, not by the caller: checking and migrating a large file
        # is disk work the GUI thread must not wait for.
        connection, problems, persistent = open_database(self.path)
        self.problems.extend(problems)
        self.persistent = persistent
        self.opened.set_result(list(problems))
        try:
            while (item := self._jobs.get()) is not None:
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(_in_transaction(job, connection))
                except Exception as exc:  # reported to the caller, the thread lives on
                    if isinstance(exc, sqlite3.Error):
                        self._report_write_failure(exc)
                    future.set_exception(exc)
        finally:
            connection.close()

    def _report_write_failure(self, exc: sqlite3.Error) -> None:
        if self._write_failed:
            return
        self._write_failed = True
        message = f"history could not be written ({exc}); chats stay open but may be lost on exit"
        log.error(message)
        self.problems.append(message)
        if self._on_problem is not None:
            self._on_problem(message)
