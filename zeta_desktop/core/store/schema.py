"""The history's tables, as numbered migrations from the first version on,
and the one view of them that other parts may read.

`PRAGMA user_version` holds the version a file is at; opening a file runs
every migration above it in order, each in its own transaction. A file whose
version is above the newest here was written by a newer app and is never
touched (the store moves it aside). The document library keeps its own tables
in the same file (core/documents/index_db.py) and reads the history only
through `message_texts`.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: conversations and their messages, each message naming its parent.
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        system_prompt TEXT NOT NULL,
        leaf_id TEXT
    );
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        parent_id TEXT,
        author TEXT NOT NULL,
        content TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, created_at);
    CREATE INDEX messages_unfinished ON messages(status) WHERE status IN ('pending', 'streaming');
    """,
    # 2: full-text search over messages, deletion with undo, saved system
    # prompts and the app's small state (the conversation last open).
    """
    ALTER TABLE conversations ADD COLUMN deleted_at REAL;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content='messages', content_rowid='rowid', tokenize='unicode61'
    );
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.rowid, old.content);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.rowid, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content);
    END;
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
    CREATE TABLE presets (name TEXT PRIMARY KEY, text TEXT NOT NULL);
    CREATE TABLE app_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 3: the document collections a conversation asks against, by their ids.
    # (Up to version 3 this step also made the document library's tables,
    # which core/documents now makes itself; a file an earlier version brought
    # to version 3 has them already.)
    """
    CREATE TABLE conversation_collections (
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        collection_id TEXT NOT NULL,
        PRIMARY KEY (conversation_id, collection_id)
    );
    """,
    # 4: the history names no table of the library's. An earlier version's
    # step 3 made `collection_id` a foreign key into `collections`, so the
    # history could not be written in a file without the library's tables;
    # rebuilt as step 3 now makes it (the library's triggers keep it pointing
    # at collections that exist). For a file step 3 made as above: the same table.
    """
    CREATE TABLE conversation_collections_v4 (
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        collection_id TEXT NOT NULL,
        PRIMARY KEY (conversation_id, collection_id)
    );
    INSERT INTO conversation_collections_v4 SELECT conversation_id, collection_id
        FROM conversation_collections;
    DROP TABLE conversation_collections;
    ALTER TABLE conversation_collections_v4 RENAME TO conversation_collections;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


# What the document library reads of the history: every message, whether its
# answer is finished (done or stopped: worth embedding) and whether its
# conversation is deleted (within the undo time). A temporary view, made on
# each opening: a reading, not part of the file, so the tables under it may
# change without the library noticing and without a migration.
PUBLISHED_VIEWS = """
CREATE TEMP VIEW message_texts AS
SELECT m.id AS message_id, m.rowid AS seq, m.conversation_id, cv.title AS conversation_title,
       m.content, m.status IN ('done', 'stopped') AS finished,
       cv.deleted_at IS NOT NULL AS deleted
FROM main.messages m LEFT JOIN main.conversations cv ON cv.id = m.conversation_id;
"""


def publish_views(connection: sqlite3.Connection) -> None:
    connection.executescript(PUBLISHED_VIEWS)


def version_of(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def migrate(connection: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the file from its version to `upto`; returns the version it was at."""
    start = version_of(connection)
    for version in range(start + 1, upto + 1):
        # executescript commits first; BEGIN makes the step all-or-nothing.
        try:
            connection.executescript(
                f"BEGIN; {MIGRATIONS[version - 1]} PRAGMA user_version = {version}; COMMIT;"
            )
        except sqlite3.Error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    return start
