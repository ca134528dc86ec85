"""The document library's tables: their schema, and every query on them.

Plain functions on a connection, run inside jobs on the history store's
thread (the library's `run_db`, the store's `run`), one at a time, as
everything else on that file. Each job is one transaction, opened and closed
by the store: nothing here begins, commits or rolls back.

The history's tables are the store's: what the library needs of them (the
messages it embeds and finds) it reads through the store's view
`message_texts`, never from `messages` or `conversations`.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from zeta_desktop.core.documents.chunking import Chunk

# The tables, as a file written before they moved here has them (the
# history's migration 3 made them then): each made if missing. They may name
# the history's tables, never the other way round: a message's vector goes
# with its message, and the last two triggers keep a conversation's attached
# collections ones that exist (ids of others are not kept; a deleted one is
# detached), as a foreign key from the history into `collections` once did.
SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS collections (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at REAL NOT NULL,
        watch INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS collection_sources (
        collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        PRIMARY KEY (collection_id, path)
    )""",
    """CREATE TABLE IF NOT EXISTS documents (
        id INTEGER PRIMARY KEY,
        collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        sha256 TEXT NOT NULL,
        kind TEXT NOT NULL,
        error TEXT,
        model TEXT,
        indexed_at REAL NOT NULL,
        UNIQUE (collection_id, path)
    )""",
    """CREATE TABLE IF NOT EXISTS chunks (
        id INTEGER PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        heading TEXT NOT NULL,
        text TEXT NOT NULL,
        page INTEGER,
        line_start INTEGER,
        line_end INTEGER,
        tokens INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
        heading, text, content='chunks', content_rowid='id', tokenize='porter unicode61'
    )""",
    """CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, heading, text)
            VALUES ('delete', old.id, old.heading, old.text);
    END""",
    """CREATE TABLE IF NOT EXISTS chunk_vectors (
        chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        vector BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS message_vectors (
        message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        vector BLOB NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS attach_existing BEFORE INSERT ON conversation_collections
    WHEN NOT EXISTS (SELECT 1 FROM collections WHERE id = new.collection_id) BEGIN
        SELECT RAISE(IGNORE);
    END""",
    """CREATE TRIGGER IF NOT EXISTS detach_deleted AFTER DELETE ON collections BEGIN
        DELETE FROM conversation_collections WHERE collection_id = old.id;
    END""",
)


def create_tables(c: sqlite3.Connection) -> None:
    """The library's first job on a file: its tables, where they are missing.
    (One statement at a time: a script would end the job's transaction.)"""
    for statement in SCHEMA:
        c.execute(statement)


@dataclass(frozen=True)
class StoredFile:
    id: int
    path: str
    size: int
    mtime: float
    sha256: str
    error: str | None


@dataclass(frozen=True)
class CollectionInfo:
    id: str
    name: str
    watch: bool
    sources: tuple[str, ...]
    files: int = 0
    chunks: int = 0
    embedded: int = 0  # chunks with a vector from the current embedder
    problems: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (path, why)


@dataclass(frozen=True)
class StoredChunk:
    id: int
    collection_id: str
    path: str
    heading: str
    text: str
    page: int | None
    line_start: int | None
    line_end: int | None
    tokens: int

    @property
    def where(self) -> str:
        """'page 3', 'lines 10-24' or 'line 7', as a citation shows it."""
        if self.page is not None:
            return f"page {self.page}"
        if self.line_start is None:
            return ""
        if self.line_end is None or self.line_end == self.line_start:
            return f"line {self.line_start}"
        return f"lines {self.line_start}-{self.line_end}"

    def for_embedding(self) -> str:
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def create_collection(c: sqlite3.Connection, name: str, sources: Iterable[str] = ()) -> str:
    collection_id = uuid.uuid4().hex
    c.execute("INSERT INTO collections(id, name, created_at) VALUES (?, ?, ?)",
              (collection_id, name, time.time()))
    c.executemany("INSERT OR IGNORE INTO collection_sources VALUES (?, ?)",
                  [(collection_id, s) for s in sources])
    return collection_id


def add_sources(c: sqlite3.Connection, collection_id: str, sources: Iterable[str]) -> None:
    c.executemany("INSERT OR IGNORE INTO collection_sources VALUES (?, ?)",
                  [(collection_id, s) for s in sources])


def remove_source(c: sqlite3.Connection, collection_id: str, source: str) -> None:
    c.execute("DELETE FROM collection_sources WHERE collection_id = ? AND path = ?",
              (collection_id, source))


def rename_collection(c: sqlite3.Connection, collection_id: str, name: str) -> None:
    c.execute("UPDATE collections SET name = ? WHERE id = ?", (name, collection_id))


def set_watch(c: sqlite3.Connection, collection_id: str, watch: bool) -> None:
    c.execute("UPDATE collections SET watch = ? WHERE id = ?", (int(watch), collection_id))


def delete_collection(c: sqlite3.Connection, collection_id: str) -> list[int]:
    """Returns the ids of the chunks that went (for the vector cache)."""
    ids = [row[0] for row in c.execute(
        "SELECT ch.id FROM chunks ch JOIN documents d ON d.id = ch.document_id "
        "WHERE d.collection_id = ?", (collection_id,))]
    c.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
    return ids


def collections(c: sqlite3.Connection, model: str | None) -> list[CollectionInfo]:
    infos = []
    for cid, name, watch in c.execute(
            "SELECT id, name, watch FROM collections ORDER BY created_at").fetchall():
        sources = tuple(r[0] for r in c.execute(
            "SELECT path FROM collection_sources WHERE collection_id = ? ORDER BY path", (cid,)))
        files, chunks, embedded = c.execute(
            "SELECT (SELECT count(*) FROM documents WHERE collection_id = :c AND error IS NULL),"
            " (SELECT count(*) FROM chunks ch JOIN documents d ON d.id = ch.document_id"
            "  WHERE d.collection_id = :c),"
            " (SELECT count(*) FROM chunk_vectors v JOIN chunks ch ON ch.id = v.chunk_id"
            "  JOIN documents d ON d.id = ch.document_id"
            "  WHERE d.collection_id = :c AND v.model = :m)",
            {"c": cid, "m": model or ""}).fetchone()
        problems = tuple(c.execute(
            "SELECT path, error FROM documents WHERE collection_id = ? AND error IS NOT NULL "
            "ORDER BY path", (cid,)).fetchall())
        infos.append(CollectionInfo(cid, name, bool(watch), sources, files, chunks, embedded,
                                    problems))
    return infos


def stored_files(c: sqlite3.Connection, collection_id: str) -> dict[str, StoredFile]:
    return {row[1]: StoredFile(*row) for row in c.execute(
        "SELECT id, path, size, mtime, sha256, error FROM documents WHERE collection_id = ?",
        (collection_id,))}


def touch_file(c: sqlite3.Connection, file_id: int, size: int, mtime: float) -> None:
    """Same content, new timestamp (a copy or a `touch`): nothing to embed again."""
    c.execute("UPDATE documents SET size = ?, mtime = ? WHERE id = ?", (size, mtime, file_id))


def replace_file(
    c: sqlite3.Connection, collection_id: str, path: str, size: int, mtime: float,
    sha256: str, kind: str, error: str | None, chunks: Sequence[Chunk],
) -> list[int]:
    """The file's new chunks (without vectors yet) in place of its old ones;
    returns the old chunks' ids."""
    old = [row[0] for row in c.execute(
        "SELECT ch.id FROM chunks ch JOIN documents d ON d.id = ch.document_id "
        "WHERE d.collection_id = ? AND d.path = ?", (collection_id, path))]
    c.execute("DELETE FROM documents WHERE collection_id = ? AND path = ?",
              (collection_id, path))
    file_id = c.execute(
        "INSERT INTO documents(collection_id, path, size, mtime, sha256, kind, error, "
        "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (collection_id, path, size, mtime, sha256, kind, error, time.time())).lastrowid
    c.executemany(
        "INSERT INTO chunks(document_id, ordinal, heading, text, page, line_start, "
        "line_end, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(file_id, i, ch.heading, ch.text, ch.page, ch.line_start, ch.line_end, ch.tokens)
         for i, ch in enumerate(chunks)])
    return old


def remove_files(c: sqlite3.Connection, collection_id: str, paths: Sequence[str]) -> list[int]:
    """Files gone from disk (or from the collection); returns their chunks' ids."""
    ids: list[int] = []
    for path in paths:
        ids += [row[0] for row in c.execute(
            "SELECT ch.id FROM chunks ch JOIN documents d ON d.id = ch.document_id "
            "WHERE d.collection_id = ? AND d.path = ?", (collection_id, path))]
        c.execute("DELETE FROM documents WHERE collection_id = ? AND path = ?",
                  (collection_id, path))
    return ids


def unembedded_chunks(c: sqlite3.Connection, model: str, limit: int,
                      collection_id: str | None = None) -> list[StoredChunk]:
    """Chunks with no vector from `model` (new ones, or the old model's)."""
    where = "AND d.collection_id = :c" if collection_id else ""
    rows = c.execute(
        "SELECT ch.id, d.collection_id, d.path, ch.heading, ch.text, ch.page, ch.line_start,"
        " ch.line_end, ch.tokens FROM chunks ch JOIN documents d ON d.id = ch.document_id"
        " LEFT JOIN chunk_vectors v ON v.chunk_id = ch.id"
        f" WHERE (v.model IS NULL OR v.model != :m) {where} ORDER BY ch.id LIMIT :n",
        {"m": model, "n": limit, "c": collection_id}).fetchall()
    return [StoredChunk(*row) for row in rows]


def count_unembedded(c: sqlite3.Connection, model: str) -> dict[str, int]:
    return dict(c.execute(
        "SELECT d.collection_id, count(*) FROM chunks ch JOIN documents d"
        " ON d.id = ch.document_id LEFT JOIN chunk_vectors v ON v.chunk_id = ch.id"
        " WHERE v.model IS NULL OR v.model != ? GROUP BY d.collection_id", (model,)).fetchall())


def chunk_counts(c: sqlite3.Connection) -> dict[str, int]:
    return dict(c.execute(
        "SELECT d.collection_id, count(*) FROM chunks ch JOIN documents d"
        " ON d.id = ch.document_id GROUP BY d.collection_id").fetchall())


def store_chunk_vectors(c: sqlite3.Connection, model: str,
                        rows: Sequence[tuple[int, bytes]]) -> list[tuple[int, str, bytes]]:
    """Vectors for chunks that still exist (a file may have changed meanwhile);
    returns (chunk id, collection id, blob) for those stored."""
    stored = []
    for chunk_id, blob in rows:
        row = c.execute("SELECT d.collection_id FROM chunks ch JOIN documents d "
                        "ON d.id = ch.document_id WHERE ch.id = ?", (chunk_id,)).fetchone()
        if row is None:
            continue
        c.execute("INSERT OR REPLACE INTO chunk_vectors VALUES (?, ?, ?)",
                  (chunk_id, model, blob))
        stored.append((chunk_id, row[0], blob))
    return stored


def chunk_vectors(c: sqlite3.Connection, model: str) -> list[tuple[int, str, bytes]]:
    return c.execute(
        "SELECT v.chunk_id, d.collection_id, v.vector FROM chunk_vectors v"
        " JOIN chunks ch ON ch.id = v.chunk_id JOIN documents d ON d.id = ch.document_id"
        " WHERE v.model = ?", (model,)).fetchall()


def chunks_by_id(c: sqlite3.Connection, ids: Sequence[int]) -> dict[int, StoredChunk]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = c.execute(
        "SELECT ch.id, d.collection_id, d.path, ch.heading, ch.text, ch.page, ch.line_start,"
        " ch.line_end, ch.tokens FROM chunks ch JOIN documents d ON d.id = ch.document_id"
        f" WHERE ch.id IN ({marks})", list(ids)).fetchall()
    return {row[0]: StoredChunk(*row) for row in rows}


# Words that match most chunks and say little: dropped from keyword queries,
# which BM25 would weigh low anyway after scoring every chunk they match.
STOPWORDS = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "let", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of",
    "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over",
    "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your", "yours", "yourself", "yourselves",
})


def keyword_query(text: str) -> str:
    """The user's words as an FTS5 query: each word quoted (never syntax),
    any of them matching, bm25 ranking those that match more and rarer ones."""
    words = [w for w in "".join(ch if ch.isalnum() else " " for ch in text.lower()).split()
             if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def keyword_search(c: sqlite3.Connection, text: str, collection_ids: Sequence[str],
                   k: int) -> list[int]:
    query = keyword_query(text)
    if not query or not collection_ids:
        return []
    marks = ",".join("?" * len(collection_ids))
    rows = c.execute(
        "SELECT f.rowid FROM chunks_fts f JOIN chunks ch ON ch.id = f.rowid"
        " JOIN documents d ON d.id = ch.document_id"
        f" WHERE chunks_fts MATCH ? AND d.collection_id IN ({marks})"
        # `rank` is bm25 with FTS5's own top-k ordering: about a third faster
        # than ORDER BY bm25() over 100,000 chunks, the same rows.
        " ORDER BY f.rank LIMIT ?", [query, *collection_ids, k]).fetchall()
    return [row[0] for row in rows]


# -- messages' vectors ------------------------------------------------------------


def unembedded_messages(c: sqlite3.Connection, model: str, limit: int) -> list[tuple[str, str]]:
    """Finished messages with no vector from `model`: (id, text), newest first."""
    return c.execute(
        "SELECT m.message_id, m.content FROM message_texts m LEFT JOIN message_vectors v"
        " ON v.message_id = m.message_id WHERE (v.model IS NULL OR v.model != ?)"
        " AND m.finished AND length(trim(m.content)) > 0"
        " ORDER BY m.seq DESC LIMIT ?", (model, limit)).fetchall()


def store_message_vectors(c: sqlite3.Connection, model: str,
                          rows: Sequence[tuple[str, bytes]]) -> list[tuple[str, str, bytes]]:
    """Vectors for messages that still exist; returns (message id,
    conversation id, blob) for those stored."""
    stored = []
    for message_id, blob in rows:
        row = c.execute("SELECT conversation_id FROM message_texts WHERE message_id = ?",
                        (message_id,)).fetchone()
        if row is None:
            continue
        c.execute("INSERT OR REPLACE INTO message_vectors VALUES (?, ?, ?)",
                  (message_id, model, blob))
        stored.append((message_id, row[0], blob))
    return stored


def message_vectors(c: sqlite3.Connection, model: str) -> list[tuple[str, str, bytes]]:
    return c.execute(
        "SELECT v.message_id, m.conversation_id, v.vector FROM message_vectors v"
        " JOIN message_texts m ON m.message_id = v.message_id WHERE v.model = ?",
        (model,)).fetchall()


@dataclass(frozen=True)
class MessageText:
    conversation_id: str
    conversation_title: str
    content: str


def visible_messages(c: sqlite3.Connection, ids: Sequence[str]) -> dict[str, MessageText]:
    """Those of `ids` whose conversation is not deleted, with its title."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = c.execute(
        "SELECT message_id, conversation_id, conversation_title, content FROM message_texts"
        f" WHERE message_id IN ({marks}) AND NOT deleted", list(ids)).fetchall()
    return {row[0]: MessageText(*row[1:]) for row in rows}
