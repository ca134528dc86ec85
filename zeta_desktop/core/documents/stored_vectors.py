"""The in-memory copies of the stored vectors, one matrix per kind, for the
current embedding model. Only the history store's thread touches them (every
call comes inside a job run there), so they need no lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from zeta_desktop.core.documents import index_db
from zeta_desktop.core.documents.vectors import VectorCache


class StoredVectors:
    def __init__(self) -> None:
        self._chunks: VectorCache | None = None
        self._messages: VectorCache | None = None

    def chunks(self, c: sqlite3.Connection, model: str) -> VectorCache:
        """The chunks' vectors from `model` (read from the file on first use)."""
        if self._chunks is None or self._chunks.model != model:
            cache = VectorCache(model)
            cache.add(index_db.chunk_vectors(c, model))
            self._chunks = cache
        return self._chunks

    def messages(self, c: sqlite3.Connection, model: str) -> VectorCache:
        if self._messages is None or self._messages.model != model:
            cache = VectorCache(model)
            cache.add(index_db.message_vectors(c, model))
            self._messages = cache
        return self._messages

    def add_chunks(self, model: str, rows: Sequence[tuple[int, str, bytes]]) -> None:
        """Just stored; kept in step if that model's matrix is loaded (else read later)."""
        if self._chunks is not None and self._chunks.model == model:
            self._chunks.add(rows)

    def remove_chunks(self, ids: Collection[int]) -> None:
        if self._chunks is not None:
            self._chunks.remove(ids)

    def add_messages(self, model: str, rows: Sequence[tuple[str, str, bytes]]) -> None:
        if self._messages is not None and self._messages.model == model:
            self._messages.add(rows)
