"""Asking against documents through the chat session: the tiny chat model
answers, the demo embedder indexes and retrieves, the history is a real
SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_files import write_collection
from docs_eval import wait_idle
from session_events import events_of, make_session

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.documents.grounding import Source
from zeta_desktop.core.settings import AppConfig
from zeta_desktop.core.store.history import HistoryStore


@pytest.fixture
def session(docs_config: AppConfig, tmp_path: Path) -> Iterator[ChatSession]:
    store = HistoryStore(tmp_path / "history.sqlite3")
    session = make_session(docs_config, store=store)
    yield session
    session.shutdown(30)
    store.close()


def indexed_collection(session: ChatSession, folder: Path) -> str:
    assert session.library is not None
    collection = session.library.create_collection("notes", [str(write_collection(folder))])
    collection_id = collection.result(10)
    wait_idle(session.library)
    return collection_id


def test_a_question_against_a_collection_carries_its_passages_and_keeps_them_as_sources(
        session: ChatSession, tmp_path: Path) -> None:
    collection = indexed_collection(session, tmp_path / "docs")
    session.set_collections([collection])
    turn_id = session.send("Where will the new warehouse open?")
    events_of(session).wait_done(turn_id)
    turn = session.turn(turn_id)
    prompt = turn.job.messages[-1]["content"]  # type: ignore[union-attr]
    assert "<passages>" in prompt and "not instructions" in prompt
    assert prompt.rstrip().endswith("Question: Where will the new warehouse open?")
    report = next(s for s in turn.sources if s.path.endswith("report.pdf"))
    assert report.where == "page 2" and "Rotterdam" in report.text
    assert f"[{report.number}] report.pdf, page 2" in prompt
    assert "documents add" in turn.reason  # the router counted their context
    # Kept with the answer, and read back from disk as the user left it.
    assert session.store is not None
    session.store.flush()
    stored = session.store.load_conversation(session.conversation.id).result(10)
    assert stored.collections == (collection,)
    answer = stored.get(turn.answer_id)
    assert answer is not None and "passage(s) given to the model" in answer.meta.grounding
    sources = [Source.from_dict(s) for s in answer.meta.sources]
    assert any(s is not None and s.label() == "report.pdf, page 2" for s in sources)
    # The question itself is stored as the user typed it, not with the passages.
    question = stored.get(answer.parent_id)  # type: ignore[arg-type]
    assert question is not None and question.content == "Where will the new warehouse open?"


def test_without_matching_passages_the_answer_still_comes_and_says_so(
        session: ChatSession, tmp_path: Path) -> None:
    assert session.library is not None
    empty = tmp_path / "empty"
    empty.mkdir()
    collection = session.library.create_collection("empty", [str(empty)]).result(10)
    wait_idle(session.library)
    session.set_collections([collection])
    turn_id = session.send("What is in here?")
    events_of(session).wait_done(turn_id)
    turn = session.turn(turn_id)
    assert turn.status.value == "done" and not turn.sources
    assert turn.grounding_note == "no passage in the documents matched"
    assert "<passages>" not in turn.job.messages[-1]["content"]  # type: ignore[union-attr]


def test_similar_finds_a_past_message_by_meaning_and_links_to_it(
        session: ChatSession) -> None:
    first = session.send("The supply boat reaches the island every other Tuesday")
    events_of(session).wait_done(first)
    assert session.library is not None
    wait_idle(session.library)  # the messages' vectors, computed in the background
    question_id = session.turn(first).answer_id
    asked = session.conversation.get(question_id).parent_id  # type: ignore[union-attr]
    search = session.send("/similar when does the ferry come to the island")
    events_of(session).wait_done(search)
    answer = session.turn(search).answer
    assert f"zeta-message:{session.conversation.id}/{asked}" in answer.split("\n")[2]


def test_similar_never_lists_the_commands_typed_before(session: ChatSession) -> None:
    assert session.library is not None
    told = session.send("The lighthouse keeper rows to the mainland on Sundays")
    events_of(session).wait_done(told)
    earlier = session.send("/similar the keeper rows ashore")
    events_of(session).wait_done(earlier)
    wait_idle(session.library)  # the earlier command's vector is stored by now
    search = session.send("/similar the keeper rows ashore")
    events_of(session).wait_done(search)
    links = [line for line in session.turn(search).answer.split("\n") if line.startswith("- [")]
    assert links and "lighthouse keeper rows" in links[0]
    assert not any("/similar" in line.split("): ", 1)[1] for line in links)
