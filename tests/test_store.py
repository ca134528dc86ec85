"""The history store on real SQLite files: round trip, migrations, damage, no disk."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from zeta_desktop.core.conversation import exchange
from zeta_desktop.core.conversation.model import Conversation, MessageStatus
from zeta_desktop.core.store.history import HistoryStore
from zeta_desktop.core.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate

TIMEOUT = 10


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = HistoryStore(tmp_path / "history.sqlite3")
    yield s
    s.close()


def _conversation_with_answer() -> Conversation:
    conversation = Conversation.new("Be brief.")
    question = conversation.add(None, "user", "What is the capital of France?")
    answer = conversation.add(question.id, "assistant", "Paris.")
    answer.meta.role, answer.meta.kind, answer.meta.ttft_s = "coder", "simple", 0.12
    return conversation


def _save(store: HistoryStore, conversation: Conversation) -> None:
    for message in conversation.all_messages():
        store.save_message(message, conversation.info)
    store.flush(TIMEOUT)


def test_round_trip_keeps_tree_meta_and_branch(store: HistoryStore) -> None:
    conversation = _conversation_with_answer()
    first = conversation.visible()[0]
    conversation.add(first.parent_id, "user", "And of Spain?")  # a second branch
    _save(store, conversation)
    loaded = store.load_conversation(conversation.id).result(TIMEOUT)
    assert [m.content for m in loaded.visible()] == ["And of Spain?"]
    assert loaded.info.title == "What is the capital of France?"
    assert loaded.info.system_prompt == "Be brief."
    loaded.select(first.id)
    answer = loaded.visible()[-1]
    assert answer.content == "Paris." and answer.meta.role == "coder"
    assert answer.meta.ttft_s == pytest.approx(0.12)
    assert loaded.siblings(first.id) == conversation.siblings(first.id)


def test_migrations_run_from_the_first_version_forward(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, upto=1)
    old.execute("INSERT INTO conversations VALUES ('c1', 'old chat', 1, 2, 'sys', 'm1')")
    old.execute("INSERT INTO messages VALUES "
                "('m1', 'c1', NULL, 'user', 'a penguin question', 'done', 1, '{}')")
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    old.close()
    store = HistoryStore(path)
    try:
        assert store.wait_open() == [] and store.persistent
        infos = store.list_conversations().result(TIMEOUT)
        assert [i.title for i in infos] == ["old chat"]
        hits = store.search("penguin").result(TIMEOUT)  # the FTS index built by migration 2
        assert [h.message_id for h in hits] == ["m1"]
    finally:
        store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    check.close()


# Step 3 as versions before 4 wrote it: the library's tables in the history's
# schema, and the history's attachments a foreign key into them.
EARLIER_STEP_3 = """
CREATE TABLE collections (id TEXT PRIMARY KEY, name TEXT NOT NULL,
    created_at REAL NOT NULL, watch INTEGER NOT NULL DEFAULT 0);
CREATE TABLE conversation_collections (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, collection_id));
PRAGMA user_version = 3;
"""


def test_a_file_from_version_3_keeps_its_attachments_and_names_no_library_table(
        tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, upto=2)
    old.executescript(EARLIER_STEP_3)
    old.execute("INSERT INTO conversations VALUES ('c1', 'old chat', 1, 2, 'sys', NULL, NULL)")
    old.execute("INSERT INTO collections VALUES ('notes', 'Notes', 1, 0)")
    old.execute("INSERT INTO conversation_collections VALUES ('c1', 'notes')")
    old.close()
    store = HistoryStore(path)
    try:
        assert store.wait_open() == []
        assert store.load_conversation("c1").result(TIMEOUT).collections == ("notes",)
        references = store.run(lambda c: c.execute(
            "SELECT \"table\" FROM pragma_foreign_key_list('conversation_collections')"
        ).fetchall()).result(TIMEOUT)
        assert references == [("conversations",)]
    finally:
        store.close()


def test_the_history_needs_no_library_table(store: HistoryStore) -> None:
    conversation = _conversation_with_answer()
    _save(store, conversation)
    store.set_collections(conversation.id, ("notes",)).result(TIMEOUT)
    assert store.load_conversation(conversation.id).result(TIMEOUT).collections == ("notes",)
    store.delete_conversation(conversation.id)
    assert store.purge_deleted(older_than_s=0).result(TIMEOUT) == 1
    tables = store.run(lambda c: {r[0] for r in c.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}).result(TIMEOUT)
    assert "collections" not in tables and "chunks" not in tables


def test_a_job_is_one_transaction(store: HistoryStore) -> None:
    def half_then_fail(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO presets (name, text) VALUES ('kept?', 'no')")
        raise ValueError("the second half failed")

    with pytest.raises(ValueError, match="second half"):
        store.run(half_then_fail).result(TIMEOUT)
    assert store.presets().result(TIMEOUT) == {}  # the first half rolled back
    store.save_preset("brief", "Be brief.").result(TIMEOUT)
    assert store.presets().result(TIMEOUT) == {"brief": "Be brief."}


def test_concurrent_writes_from_many_threads(store: HistoryStore) -> None:
    conversation = Conversation.new()
    question = conversation.add(None, "user", "q")
    store.save_message(question, conversation.info)
    answers = [conversation.add(question.id, "assistant", "") for _ in range(8)]
    for answer in answers:
        store.save_message(answer, conversation.info)

    def stream(answer_id: str) -> None:
        text = ""
        for i in range(50):
            text += f"{i} "
            store.update_answer(answer_id, text, MessageStatus.STREAMING)

    threads = [threading.Thread(target=stream, args=(a.id,)) for a in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.flush(TIMEOUT)
    loaded = store.load_conversation(conversation.id).result(TIMEOUT)
    expected = "".join(f"{i} " for i in range(50))
    assert all(loaded.get(a.id).content == expected for a in answers)  # type: ignore[union-attr]
    assert store.integrity_check().result(TIMEOUT) == "ok"


def test_a_corrupt_file_is_kept_aside_and_a_new_history_starts(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    store = HistoryStore(path)
    try:
        store.wait_open()
        assert store.persistent
        assert len(store.problems) == 1 and "damaged" in store.problems[0]
        kept = [p for p in tmp_path.glob("history.sqlite3.corrupt-*")
                if not p.name.endswith(("-wal", "-shm"))]  # its side files go with it
        assert len(kept) == 1 and str(kept[0]) in store.problems[0]
        assert kept[0].stat().st_size == 16 + 4096  # moved, not deleted or changed
        assert store.list_conversations().result(TIMEOUT) == []
    finally:
        store.close()


def test_a_file_from_a_newer_version_is_never_touched(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.execute("CREATE TABLE future (x)")
    newer.commit()
    newer.close()
    store = HistoryStore(path)
    try:
        assert "newer Zeta Desktop" in store.wait_open()[0]
        kept = next(tmp_path.glob(f"history.sqlite3.newer-v{SCHEMA_VERSION + 1}-*"))
        check = sqlite3.connect(kept)
        assert check.execute("SELECT name FROM sqlite_master").fetchall() == [("future",)]
        check.close()
    finally:
        store.close()


def test_an_unwritable_data_path_keeps_history_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    # A file where the data directory should be: nothing can be created under it
    # (a chmod would not do: these tests run as root, which writes through it).
    blocker.write_text("not a directory")
    store = HistoryStore(blocker / "history.sqlite3")
    try:
        store.wait_open()
        assert not store.persistent
        assert "history is not being saved" in store.problems[0]
        _save(store, _conversation_with_answer())
        assert len(store.list_conversations().result(TIMEOUT)) == 1  # works, in memory
    finally:
        store.close()


def test_delete_hides_at_once_and_removes_only_after_the_undo_time(store: HistoryStore) -> None:
    conversation = _conversation_with_answer()
    _save(store, conversation)
    store.delete_conversation(conversation.id)
    assert store.list_conversations().result(TIMEOUT) == []
    assert store.purge_deleted(older_than_s=60).result(TIMEOUT) == 0  # still undoable
    store.undelete_conversation(conversation.id)
    assert len(store.list_conversations().result(TIMEOUT)) == 1
    store.delete_conversation(conversation.id)
    assert store.purge_deleted(older_than_s=0).result(TIMEOUT) == 1
    with pytest.raises(KeyError):
        store.load_conversation(conversation.id).result(TIMEOUT)
    assert store.search("Paris").result(TIMEOUT) == []  # gone from the index too


def test_search_finds_titles_and_words_and_ignores_fts_syntax(store: HistoryStore) -> None:
    _save(store, _conversation_with_answer())
    hits = store.search("capital").result(TIMEOUT)
    assert hits[0].message_id is None  # the title
    assert any(h.message_id and "[capital]" in h.snippet for h in hits)
    assert [h.snippet for h in store.search("Par").result(TIMEOUT)] == ["[Paris]."]  # prefix
    assert store.search('"NEAR( AND *').result(TIMEOUT) == []  # no syntax error


def test_unfinished_answers_are_marked_interrupted(store: HistoryStore) -> None:
    conversation = Conversation.new()
    question = conversation.add(None, "user", "q")
    answer = conversation.add(question.id, "assistant", "half an ans", MessageStatus.STREAMING)
    _save(store, conversation)
    assert store.mark_interrupted().result(TIMEOUT) == 1
    loaded = store.load_conversation(conversation.id).result(TIMEOUT)
    assert loaded.get(answer.id).status is MessageStatus.INTERRUPTED  # type: ignore[union-attr]
    assert loaded.get(answer.id).content == "half an ans"  # type: ignore[union-attr]


def test_import_writes_a_new_conversation_with_fresh_ids(store: HistoryStore) -> None:
    original = _conversation_with_answer()
    copy = exchange.from_json(exchange.to_json(original))
    store.import_conversation(copy).result(TIMEOUT)
    store.import_conversation(exchange.from_json(exchange.to_json(original))).result(TIMEOUT)
    assert len(store.list_conversations().result(TIMEOUT)) == 2
    loaded = store.load_conversation(copy.id).result(TIMEOUT)
    assert [m.content for m in loaded.visible()] == [m.content for m in original.visible()]


def test_a_full_disk_is_reported_once_and_the_store_keeps_going(tmp_path: Path) -> None:
    said: list[str] = []
    store = HistoryStore(tmp_path / "history.sqlite3", on_problem=said.append)
    try:
        conversation = _conversation_with_answer()
        _save(store, conversation)
        # The file may not grow another page: SQLite answers "database or disk is full".
        store.run(lambda c: c.execute(
            "PRAGMA max_page_count = " + str(c.execute("PRAGMA page_count").fetchone()[0])
        )).result(TIMEOUT)
        big = conversation.add(conversation.info.leaf_id, "user", "x" * 200_000)
        failed = store.save_message(big, conversation.info)
        with pytest.raises(sqlite3.Error, match="full"):
            failed.result(TIMEOUT)
        store.save_message(conversation.add(big.id, "user", "y" * 200_000)).exception(TIMEOUT)
        assert len(said) == 1 and "could not be written" in said[0]
        assert store.list_conversations().result(TIMEOUT)  # reads still answer
    finally:
        store.close()
