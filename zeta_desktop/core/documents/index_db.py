"""The collections' tables (store/schema.py, migration 3), read and written.

Plain functions on a connection: the library runs them on the history
store's thread, one at a time, as it runs everything else on that file.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from zeta_desktop.core.documents.chunking import Chunk


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
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO collections(id, name, created_at) VALUES (?, ?, ?)",
              (collection_id, name, time.time()))
    c.executemany("INSERT OR IGNORE INTO collection_sources VALUES (?, ?)",
                  [(collection_id, s) for s in sources])
    c.execute("COMMIT")
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
    c.execute("BEGIN IMMEDIATE")
    c.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
    c.execute("COMMIT")
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
    c.execute("BEGIN IMMEDIATE")
    try:
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
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return old


def remove_files(c: sqlite3.Connection, collection_id: str, paths: Sequence[str]) -> list[int]:
    """Files gone from disk (or from the collection); returns their chunks' ids."""
    ids: list[int] = []
    c.execute("BEGIN IMMEDIATE")
    for path in paths:
        ids += [row[0] for row in c.execute(
            "SELECT ch.id FROM chunks ch JOIN documents d ON d.id = ch.document_id "
            "WHERE d.collection_id = ? AND d.path = ?", (collection_id, path))]
        c.execute("DELETE FROM documents WHERE collection_id = ? AND path = ?",
                  (collection_id, path))
    c.execute("COMMIT")
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
    c.execute("BEGIN IMMEDIATE")
    stored = []
    for chunk_id, blob in rows:
        row = c.execute("SELECT d.collection_id FROM chunks ch JOIN documents d "
                        "ON d.id = ch.document_id WHERE ch.id = ?", (chunk_id,)).fetchone()
        if row is None:
            continue
        c.execute("INSERT OR REPLACE INTO chunk_vectors VALUES (?, ?, ?)",
                  (chunk_id, model, blob))
        stored.append((chunk_id, row[0], blob))
    c.execute("COMMIT")
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
    """Finished messages with no vector from `model`: (id, text)."""
    return c.execute(
        "SELECT m.id, m.content FROM messages m LEFT JOIN message_vectors v"
        " ON v.message_id = m.id WHERE (v.model IS NULL OR v.model != ?)"
        " AND m.status IN ('done', 'stopped') AND length(trim(m.content)) > 0"
        " ORDER BY m.rowid DESC LIMIT ?", (model, limit)).fetchall()


def store_message_vectors(c: sqlite3.Connection, model: str,
                          rows: Sequence[tuple[str, bytes]]) -> list[tuple[str, str, bytes]]:
    c.execute("BEGIN IMMEDIATE")
    stored = []
    for message_id, blob in rows:
        row = c.execute("SELECT conversation_id FROM messages WHERE id = ?",
                        (message_id,)).fetchone()
        if row is None:
            continue
        c.execute("INSERT OR REPLACE INTO message_vectors VALUES (?, ?, ?)",
                  (message_id, model, blob))
        stored.append((message_id, row[0], blob))
    c.execute("COMMIT")
    return stored


def message_vectors(c: sqlite3.Connection, model: str) -> list[tuple[str, str, bytes]]:
    return c.execute(
        "SELECT v.message_id, m.conversation_id, v.vector FROM message_vectors v"
        " JOIN messages m ON m.id = v.message_id WHERE v.model = ?", (model,)).fetchall()
