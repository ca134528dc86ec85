"""Document retrieval runs off the dispatcher thread: a question whose search
is slow holds up no other prompt, and still ends when stopped or failed.

The retriever is the session's real one (the demo embedder over a real
collection) behind a gate the test opens; the chat model is the tiny one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from doc_files import write_collection
from docs_eval import wait_idle
from session_events import TIMEOUT, events_of, make_session

from zeta_desktop.core.chat.grounding_step import STOPPED_SEARCHING
from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.chat.turn_runner import TurnStatus
from zeta_desktop.core.conversation.model import MessageStatus
from zeta_desktop.core.documents.index_db import StoredChunk
from zeta_desktop.core.settings import AppConfig
from zeta_desktop.core.store.history import HistoryStore

QUESTION = "Where will the new warehouse open?"


class GatedRetriever:
    """The session's retriever, held until `gate` is set."""

    def __init__(self, session: ChatSession) -> None:
        real = session.runner.retrieve
        assert real is not None
        self._real = real
        self.entered = threading.Event()  # a search has begun
        self.gate = threading.Event()
        session.runner.retrieve = self

    def __call__(self, question: str, collection_ids: Sequence[str]) -> list[StoredChunk]:
        self.entered.set()
        assert self.gate.wait(TIMEOUT)
        return self._real(question, collection_ids)


@pytest.fixture
def session(docs_config: AppConfig, tmp_path: Path) -> Iterator[ChatSession]:
    store = HistoryStore(tmp_path / "history.sqlite3")
    session = make_session(docs_config, store=store)
    assert session.library is not None
    collection = session.library.create_collection(
        "notes", [str(write_collection(tmp_path / "docs"))]).result(10)
    wait_idle(session.library)
    session.set_collections([collection])
    yield session
    session.shutdown(30)
    store.close()


def retrieval_thread(turn_id: int) -> threading.Thread:
    return next(t for t in threading.enumerate() if t.name == f"zeta-retrieve-{turn_id}")


def test_a_slow_search_holds_up_no_other_prompt_and_its_answer_is_grounded_once_found(
        session: ChatSession) -> None:
    retriever = GatedRetriever(session)
    events = events_of(session)
    grounded = session.send(QUESTION)
    assert retriever.entered.wait(TIMEOUT)
    session.set_collections([])
    plain = session.send("Say hello")
    events.wait_done(plain)
    # Routed and answered while the first question's documents are still searched.
    assert events.finished[plain] is False and session.turn(plain).answer
    assert grounded not in events.routed and grounded not in events.searched
    assert session.turn(grounded).status is TurnStatus.ROUTING
    retriever.gate.set()
    events.wait_done(grounded)
    # The window hears what was found before the answer is routed.
    searched = events.searched[grounded]
    assert searched.passages > 0 and searched.note == ""
    turn = session.turn(grounded)
    assert turn.status is TurnStatus.DONE and turn.answer
    assert any(s.path.endswith("report.pdf") for s in turn.sources)
    assert "passage(s) given to the model" in turn.grounding_note
    prompt = turn.job.messages[-1]["content"]  # type: ignore[union-attr]
    assert "<passages>" in prompt and prompt.rstrip().endswith(f"Question: {QUESTION}")


def test_a_question_stopped_while_searched_ends_at_once_and_stays_stopped(
        session: ChatSession) -> None:
    retriever = GatedRetriever(session)
    events = events_of(session)
    turn_id = session.send(QUESTION)
    assert retriever.entered.wait(TIMEOUT)
    session.stop(turn_id)
    events.wait_done(turn_id)  # without the search coming back
    assert events.failed[turn_id] == STOPPED_SEARCHING
    retriever.gate.set()
    retrieval_thread(turn_id).join(TIMEOUT)
    turn = session.turn(turn_id)
    assert turn.status is TurnStatus.STOPPED and turn_id not in events.routed
    assert turn_id not in events.searched  # its late result is dropped, unannounced
    assert turn.job is None and not turn.sources
    # Kept as the user left it: a stopped answer that says why.
    assert session.store is not None
    session.store.flush()
    stored = session.store.load_conversation(session.conversation.id).result(10)
    answer = stored.get(turn.answer_id)
    assert answer is not None and answer.status is MessageStatus.STOPPED
    assert answer.meta.error == STOPPED_SEARCHING


def test_a_search_that_fails_still_answers_and_says_why(session: ChatSession) -> None:
    def broken(question: str, collection_ids: Sequence[str]) -> list[StoredChunk]:
        raise OSError("the index is unreadable")

    session.runner.retrieve = broken
    turn_id = session.send(QUESTION)
    events_of(session).wait_done(turn_id)
    turn = session.turn(turn_id)
    assert turn.status is TurnStatus.DONE and turn.answer and not turn.sources
    assert turn.grounding_note == "the documents could not be searched (the index is unreadable)"
    assert events_of(session).searched[turn_id].note == turn.grounding_note
    assert "<passages>" not in turn.job.messages[-1]["content"]  # type: ignore[union-attr]
