"""The chat session over three real workers (tiny model in every role)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zeta_desktop.core.config import AppConfig
from zeta_desktop.core.llama_engine import LlamaEngine
from zeta_desktop.core.session import ChatSession, RoleChoice
from zeta_desktop.core.worker import ChatStats, WorkerState

pytestmark = pytest.mark.model
TIMEOUT = 60


@dataclass
class Events:
    started: dict[int, str] = field(default_factory=dict)
    tokens: dict[int, list[str]] = field(default_factory=dict)
    finished: dict[int, bool] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    states: list[tuple[str, WorkerState]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def on_role_state(self, role: str, state: WorkerState, detail: str) -> None:
        self.states.append((role, state))

    def on_turn_started(self, turn_id: int, role: str, reason: str) -> None:
        self.started[turn_id] = role

    def on_turn_token(self, turn_id: int, text: str) -> None:
        with self.changed:
            self.tokens.setdefault(turn_id, []).append(text)
            self.changed.notify_all()

    def wait_tokens(self, turn_id: int, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(
                lambda: len(self.tokens.get(turn_id, [])) >= count, TIMEOUT
            )

    def on_turn_finished(self, turn_id: int, stopped: bool, stats: ChatStats) -> None:
        with self.changed:
            self.finished[turn_id] = stopped
            self.changed.notify_all()

    def on_turn_failed(self, turn_id: int, message: str) -> None:
        with self.changed:
            self.failed[turn_id] = message
            self.changed.notify_all()

    def wait_done(self, turn_id: int) -> None:
        with self.changed:
            assert self.changed.wait_for(
                lambda: turn_id in self.finished or turn_id in self.failed, TIMEOUT
            )


@pytest.fixture
def session(tiny_config: AppConfig) -> ChatSession:
    events = Events()
    s = ChatSession(tiny_config, LlamaEngine.load, listener=events)
    s.events = events  # type: ignore[attr-defined]
    s.start()
    assert s.wait_loaded(TIMEOUT)
    yield s
    s.shutdown(TIMEOUT)


def test_prompt_goes_to_the_embedder_when_it_can_chat(session: ChatSession) -> None:
    events: Events = session.events  # type: ignore[attr-defined]
    turn_id = session.send("hello there")
    events.wait_done(turn_id)
    turn = session.turn(turn_id)
    assert turn.role == "embedder" and events.started[turn_id] == "embedder"
    assert turn.status == "done"
    assert turn.answer == "".join(events.tokens[turn_id]) and turn.answer


def test_history_is_sent_with_the_next_prompt(session: ChatSession) -> None:
    events: Events = session.events  # type: ignore[attr-defined]
    first = session.send("alpha beta")
    events.wait_done(first)
    second = session.send("gamma delta")
    events.wait_done(second)
    messages = session.turn(second).job.messages  # type: ignore[union-attr]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "alpha beta"
    assert messages[2]["content"] == session.turn(first).answer


def test_a_forced_role_is_used(session: ChatSession) -> None:
    events: Events = session.events  # type: ignore[attr-defined]
    turn_id = session.send("def f(): pass", role="coder")
    events.wait_done(turn_id)
    assert session.turn(turn_id).role == "coder"
    assert session.turn(turn_id).reason == "chosen by you"


def test_picker_is_the_seam_for_routing(session: ChatSession) -> None:
    class AlwaysReasoner:
        def pick(self, prompt: str, s: ChatSession) -> RoleChoice:
            return RoleChoice("reasoner", "test picker")

    session.picker = AlwaysReasoner()
    events: Events = session.events  # type: ignore[attr-defined]
    turn_id = session.send("why?")
    events.wait_done(turn_id)
    assert events.started[turn_id] == "reasoner"


def test_stop_marks_the_turn_stopped_and_keeps_the_partial_answer(session: ChatSession) -> None:
    events: Events = session.events  # type: ignore[attr-defined]
    session.roles["embedder"].config.max_tokens = 100000
    turn_id = session.send("talk forever")
    events.wait_tokens(turn_id, 3)
    session.stop()
    events.wait_done(turn_id)
    turn = session.turn(turn_id)
    assert turn.status == "stopped" and events.finished[turn_id] is True
    assert turn.answer and len(turn.answer) > 0


def test_prompt_too_long_fails_clearly_and_keeps_the_prompt(session: ChatSession) -> None:
    events: Events = session.events  # type: ignore[attr-defined]
    prompt = "alpha " * 2000
    turn_id = session.send(prompt)
    events.wait_done(turn_id)
    assert "context holds 512" in events.failed[turn_id]
    assert session.turn(turn_id).prompt == prompt
    assert session.turn(turn_id).status == "failed"


def test_a_role_that_cannot_load_does_not_stop_the_others(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    tiny_config.roles["embedder"].model_path = str(tmp_path / "missing.gguf")
    events = Events()
    s = ChatSession(tiny_config, LlamaEngine.load, listener=events)
    s.start()
    try:
        assert s.wait_loaded(TIMEOUT)
        assert s.worker("embedder").state is WorkerState.UNAVAILABLE
        assert s.worker("coder").state is WorkerState.READY
        turn_id = s.send("hello")
        events.wait_done(turn_id)
        assert s.turn(turn_id).role == "coder"  # the picker skipped the broken role
        assert s.turn(turn_id).status == "done"
    finally:
        s.shutdown(TIMEOUT)


def test_no_chat_role_at_all_is_reported(tiny_config: AppConfig, tmp_path: Path) -> None:
    for role in tiny_config.roles.values():
        role.model_path = str(tmp_path / "missing.gguf")
    events = Events()
    s = ChatSession(tiny_config, LlamaEngine.load, listener=events)
    s.start()
    try:
        assert s.wait_loaded(TIMEOUT)
        turn_id = s.send("hello")
        assert "no model can answer" in events.failed[turn_id]
        assert "not found" in events.failed[turn_id]
    finally:
        s.shutdown(TIMEOUT)


def test_embed_through_the_session(session: ChatSession) -> None:
    vectors = session.embed(["a", "b", "c"], timeout=TIMEOUT)
    assert len(vectors) == 3
