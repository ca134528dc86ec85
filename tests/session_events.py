"""A headless session over real workers, and the events it reported, for tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import ChatStats, WorkerState
from zeta_desktop.core.routing.router import Decision
from zeta_desktop.core.settings import AppConfig

TIMEOUT = 60


@dataclass
class Events:
    routed: dict[int, Decision] = field(default_factory=dict)
    started: dict[int, str] = field(default_factory=dict)
    tokens: dict[int, list[str]] = field(default_factory=dict)
    retried: dict[int, tuple[str, str]] = field(default_factory=dict)
    finished: dict[int, bool] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    states: list[tuple[str, WorkerState]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def on_role_state(self, role: str, state: WorkerState, detail: str) -> None:
        self.states.append((role, state))

    def on_turn_routed(self, turn_id: int, decision: Decision) -> None:
        self.routed[turn_id] = decision

    def on_turn_started(self, turn_id: int, role: str, reason: str) -> None:
        self.started[turn_id] = role

    def on_turn_token(self, turn_id: int, text: str) -> None:
        with self.changed:
            self.tokens.setdefault(turn_id, []).append(text)
            self.changed.notify_all()

    def on_turn_retried(self, turn_id: int, failed_role: str, message: str) -> None:
        self.retried[turn_id] = (failed_role, message)

    def on_turn_finished(self, turn_id: int, stopped: bool, stats: ChatStats) -> None:
        with self.changed:
            self.finished[turn_id] = stopped
            self.changed.notify_all()

    def on_turn_failed(self, turn_id: int, message: str) -> None:
        with self.changed:
            self.failed[turn_id] = message
            self.changed.notify_all()

    def wait_tokens(self, turn_id: int, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(
                lambda: len(self.tokens.get(turn_id, [])) >= count, TIMEOUT
            )

    def wait_done(self, *turn_ids: int) -> None:
        with self.changed:
            assert self.changed.wait_for(
                lambda: all(t in self.finished or t in self.failed for t in turn_ids), TIMEOUT
            )


def make_session(config: AppConfig, loader=LlamaEngine.load, store=None, machine=None  # type: ignore[no-untyped-def]
                 ) -> ChatSession:
    events = Events()
    session = ChatSession(config, loader, listener=events, store=store, machine=machine)
    session.events = events  # type: ignore[attr-defined]
    session.start()
    assert session.wait_loaded(TIMEOUT)
    return session


def events_of(session: ChatSession) -> Events:
    return session.events  # type: ignore[attr-defined,no-any-return]
