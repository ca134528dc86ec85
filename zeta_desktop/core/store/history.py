"""The chat history in SQLite, owned by one writer thread.

One thread owns the connection and runs every read and write in order, as
Anki serialises its collection: callers on the GUI or a worker thread hand it
a job and get a Future back, so nobody waits on the disk unless they choose
to. WAL mode with `synchronous = FULL`: a committed prompt survives a crash
of the app and of the machine.

What can go wrong never stops the app and never deletes a file:
- a corrupt file, or one written by a newer version, is moved aside (kept)
  and a fresh database started, with a problem saying so and where;
- a data directory that is read-only or full: the store keeps working in
  memory and says plainly that history is not being saved.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from zeta_desktop.core.conversation.model import (
    AnswerMeta,
    Conversation,
    ConversationInfo,
    Message,
    MessageStatus,
)
from zeta_desktop.core.fleet.thread_priority import lower_current_thread_priority
from zeta_desktop.core.paths import unused_sibling
from zeta_desktop.core.store.schema import SCHEMA_VERSION, migrate, version_of

log = logging.getLogger(__name__)

DB_FILENAME = "history.sqlite3"
UNDO_S = 10.0  # a deleted conversation stays on disk this long
SEARCH_LIMIT = 50

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]


@dataclass(frozen=True)
class SearchHit:
    conversation_id: str
    conversation_title: str
    message_id: str | None  # None: the title matched
    snippet: str


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
            migrate(connection)
            return connection, problems, True
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
    connection = _connect(":memory:")
    migrate(connection)
    return connection, problems, False


_STOP = object()


class HistoryStore:
    """Conversations on disk. Every method returns at once; results come as Futures."""

    def __init__(
        self,
        path: Path,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self._on_problem = on_problem
        self.problems: list[str] = []
        self.persistent = False
        # Set once the file is open (or the store fell back to memory); jobs
        # handed in before then wait their turn behind the opening.
        self.opened: Future[list[str]] = Future()
        self._jobs: queue.Queue[object] = queue.Queue()
        self._write_failed = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="zeta-store", daemon=True)
        self._thread.start()

    def wait_open(self, timeout: float | None = 10.0) -> list[str]:
        """Block until the file is open; returns the problems met (tests, the CLI)."""
        return self.opened.result(timeout)

    # -- the writer thread ---------------------------------------------------

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
            while True:
                item = self._jobs.get()
                if item is _STOP:
                    return
                job, future = item  # type: ignore[misc]
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(job(connection))
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

    def _submit(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        if self._closed:
            future.set_exception(StoreClosedError("the history store is closed"))
            return future
        self._jobs.put((job, future))
        return future

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish every job handed in so far, then close the file."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        self._thread.join(timeout)

    def run(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Any job on the store's thread, in turn with the rest (the document library's)."""
        return self._submit(job)

    def flush(self, timeout: float | None = 10.0) -> None:
        """Wait until every job handed in so far is done (tests, shutdown)."""
        self._submit(lambda _c: None).result(timeout)

    # -- writes ----------------------------------------------------------------

    def save_conversation(self, info: ConversationInfo) -> Future[None]:
        row = (info.id, info.title, info.created_at, info.updated_at, info.system_prompt,
               info.leaf_id)

        def job(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO conversations (id, title, created_at, updated_at, system_prompt, "
                "leaf_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "title = excluded.title, updated_at = excluded.updated_at, "
                "system_prompt = excluded.system_prompt, leaf_id = excluded.leaf_id",
                row,
            )

        return self._submit(job)

    def save_message(self, message: Message, info: ConversationInfo | None = None) -> Future[None]:
        """Insert or replace one message (and its conversation's row, in one transaction)."""
        row = (message.id, message.conversation_id, message.parent_id, message.author,
               message.content, message.status.value, message.created_at,
               json.dumps(message.meta.to_dict()))
        conversation = None if info is None else (
            info.id, info.title, info.created_at, info.updated_at, info.system_prompt,
            info.leaf_id)

        def job(c: sqlite3.Connection) -> None:
            with _transaction(c):
                if conversation is not None:
                    c.execute(
                        "INSERT INTO conversations (id, title, created_at, updated_at, "
                        "system_prompt, leaf_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) "
                        "DO UPDATE SET title = excluded.title, updated_at = excluded.updated_at,"
                        " system_prompt = excluded.system_prompt, leaf_id = excluded.leaf_id",
                        conversation,
                    )
                c.execute(
                    "INSERT INTO messages (id, conversation_id, parent_id, author, content, "
                    "status, created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET content = excluded.content, "
                    "status = excluded.status, meta = excluded.meta",
                    row,
                )

        return self._submit(job)

    def update_answer(self, message_id: str, content: str, status: MessageStatus) -> Future[None]:
        """The streaming answer so far (called with each token batch)."""

        def job(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE messages SET content = ?, status = ? WHERE id = ?",
                (content, status.value, message_id),
            )

        return self._submit(job)

    def set_leaf(self, conversation_id: str, leaf_id: str | None) -> Future[None]:
        return self._submit(lambda c: c.execute(
            "UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf_id, conversation_id)))

    def rename(self, conversation_id: str, title: str) -> Future[None]:
        return self._submit(lambda c: c.execute(
            "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)))

    def delete_conversation(self, conversation_id: str) -> Future[None]:
        """Hidden at once, removed from disk only once the undo time is over."""
        now = time.time()
        return self._submit(lambda c: c.execute(
            "UPDATE conversations SET deleted_at = ? WHERE id = ?", (now, conversation_id)))

    def undelete_conversation(self, conversation_id: str) -> Future[None]:
        return self._submit(lambda c: c.execute(
            "UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,)))

    def purge_deleted(self, older_than_s: float = UNDO_S) -> Future[int]:
        """Remove conversations deleted longer ago than the undo time; returns how many."""
        cutoff = time.time() - older_than_s

        def job(c: sqlite3.Connection) -> int:
            with _transaction(c):
                ids = [r[0] for r in c.execute(
                    "SELECT id FROM conversations WHERE deleted_at IS NOT NULL "
                    "AND deleted_at <= ?", (cutoff,))]
                for conversation_id in ids:
                    c.execute("DELETE FROM messages WHERE conversation_id = ?",
                              (conversation_id,))
                    c.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            return len(ids)

        return self._submit(job)

    def mark_interrupted(self) -> Future[int]:
        """Answers left unfinished by a crash or kill become `interrupted`; returns how many."""

        def job(c: sqlite3.Connection) -> int:
            cursor = c.execute(
                "UPDATE messages SET status = ? WHERE status IN (?, ?)",
                (MessageStatus.INTERRUPTED.value, MessageStatus.PENDING.value,
                 MessageStatus.STREAMING.value),
            )
            return cursor.rowcount

        return self._submit(job)

    def set_collections(self, conversation_id: str,
                        collection_ids: tuple[str, ...]) -> Future[None]:
        """The document collections a conversation asks against (kept once it is saved)."""
        def job(c: sqlite3.Connection) -> None:
            with _transaction(c):
                c.execute("DELETE FROM conversation_collections WHERE conversation_id = ?",
                          (conversation_id,))
                if c.execute("SELECT 1 FROM conversations WHERE id = ?",
                             (conversation_id,)).fetchone():
                    c.executemany(
                        "INSERT OR IGNORE INTO conversation_collections SELECT ?, id"
                        " FROM collections WHERE id = ?",
                        [(conversation_id, cid) for cid in collection_ids])

        return self._submit(job)

    def set_state(self, key: str, value: str) -> Future[None]:
        return self._submit(lambda c: c.execute(
            "INSERT INTO app_state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value)))

    def save_preset(self, name: str, text: str) -> Future[None]:
        return self._submit(lambda c: c.execute(
            "INSERT INTO presets (name, text) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET text = excluded.text", (name, text)))

    def import_conversation(self, conversation: Conversation) -> Future[None]:
        """Write a whole conversation (an import) in one transaction."""
        info = conversation.info
        rows = [(m.id, m.conversation_id, m.parent_id, m.author, m.content, m.status.value,
                 m.created_at, json.dumps(m.meta.to_dict())) for m in conversation.all_messages()]

        def job(c: sqlite3.Connection) -> None:
            with _transaction(c):
                c.execute(
                    "INSERT INTO conversations (id, title, created_at, updated_at, "
                    "system_prompt, leaf_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (info.id, info.title, info.created_at, info.updated_at, info.system_prompt,
                     info.leaf_id),
                )
                c.executemany(
                    "INSERT INTO messages (id, conversation_id, parent_id, author, content, "
                    "status, created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

        return self._submit(job)

    # -- reads -----------------------------------------------------------------

    def get_state(self, key: str) -> Future[str | None]:
        def job(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT value FROM app_state WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return self._submit(job)

    def presets(self) -> Future[dict[str, str]]:
        return self._submit(lambda c: dict(c.execute(
            "SELECT name, text FROM presets ORDER BY name").fetchall()))

    def list_conversations(self) -> Future[list[ConversationInfo]]:
        """Every conversation not deleted, most recently active first."""

        def job(c: sqlite3.Connection) -> list[ConversationInfo]:
            rows = c.execute(
                "SELECT id, title, created_at, updated_at, system_prompt, leaf_id "
                "FROM conversations WHERE deleted_at IS NULL ORDER BY updated_at DESC"
            ).fetchall()
            return [ConversationInfo(*row) for row in rows]

        return self._submit(job)

    def load_conversation(self, conversation_id: str) -> Future[Conversation]:
        def job(c: sqlite3.Connection) -> Conversation:
            row = c.execute(
                "SELECT id, title, created_at, updated_at, system_prompt, leaf_id "
                "FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            if row is None:
                raise KeyError(f"no conversation {conversation_id}")
            messages = [
                Message(mid, cid, parent, author, content, _status(status), created,
                        AnswerMeta.from_dict(_json(meta)))
                for mid, cid, parent, author, content, status, created, meta in c.execute(
                    "SELECT id, conversation_id, parent_id, author, content, status, "
                    "created_at, meta FROM messages WHERE conversation_id = ? "
                    "ORDER BY created_at", (conversation_id,))
            ]
            conversation = Conversation(ConversationInfo(*row), messages)
            conversation.collections = tuple(r[0] for r in c.execute(
                "SELECT collection_id FROM conversation_collections WHERE conversation_id = ?",
                (conversation_id,)))
            return conversation

        return self._submit(job)

    def search(self, text: str, limit: int = SEARCH_LIMIT) -> Future[list[SearchHit]]:
        """Titles and message text (FTS5), newest conversations first."""
        words = [w for w in text.replace('"', " ").split() if w]

        def job(c: sqlite3.Connection) -> list[SearchHit]:
            if not words:
                return []
            hits: list[SearchHit] = []
            like = "%" + "%".join(words) + "%"
            for cid, title in c.execute(
                "SELECT id, title FROM conversations WHERE deleted_at IS NULL AND title "
                "LIKE ? ORDER BY updated_at DESC LIMIT ?", (like, limit)):
                hits.append(SearchHit(cid, title, None, title))
            # Each word as a quoted prefix: user text is never FTS syntax.
            query = " ".join(f'"{w}"*' for w in words)
            # Newest first by rowid inside the FTS query, so only the rows
            # shown are ranked and snippeted: ordering the join by time made
            # SQLite snippet every match (72 ms vs 1 ms over 20,000 messages).
            for mid, cid, title, snippet in c.execute(
                "SELECT m.id, m.conversation_id, cv.title, h.snip FROM ("
                "  SELECT rowid, snippet(messages_fts, 0, '[', ']', '…', 12) AS snip"
                "  FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?"
                ") h JOIN messages m ON m.rowid = h.rowid "
                "JOIN conversations cv ON cv.id = m.conversation_id "
                "WHERE cv.deleted_at IS NULL LIMIT ?", (query, 2 * limit, limit)):
                hits.append(SearchHit(cid, title, mid, snippet))
            return hits[:limit]

        return self._submit(job)

    def integrity_check(self) -> Future[str]:
        return self._submit(lambda c: str(c.execute("PRAGMA integrity_check").fetchone()[0]))


@contextlib.contextmanager
def _transaction(c: sqlite3.Connection):  # type: ignore[no-untyped-def]
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")


def _status(value: str) -> MessageStatus:
    try:
        return MessageStatus(value)
    except ValueError:
        return MessageStatus.FAILED


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
