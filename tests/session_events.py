"""A headless session over real workers, and the events it reported, for tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from zeta_desktop.core.chat.events import (
    AnswerText,
    DocumentsSearched,
    RoleStateChanged,
    SessionEvent,
    TurnEnded,
    TurnRetried,
    TurnRouted,
    TurnStarted,
)
from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import WorkerState
from zeta_desktop.core.routing.router import Decision
from zeta_desktop.core.settings import AppConfig

TIMEOUT = 60


@dataclass
class Events:
    routed: dict[int, Decision] = field(default_factory=dict)
    searched: dict[int, DocumentsSearched] = field(default_factory=dict)
    started: dict[int, str] = field(default_factory=dict)
    tokens: dict[int, list[str]] = field(default_factory=dict)
    retried: dict[int, tuple[str, str]] = field(default_factory=dict)
    finished: dict[int, bool] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    states: list[tuple[str, WorkerState]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, event: SessionEvent) -> None:
        match event:
            case RoleStateChanged():
                self.states.append((event.role, event.state))
            case DocumentsSearched():
                assert event.turn_id not in self.routed  # searched before it is routed
                self.searched[event.turn_id] = event
            case TurnRouted():
                with self.changed:
                    self.routed[event.turn_id] = event.decision
                    self.changed.notify_all()
            case TurnStarted():
                self.started[event.turn_id] = event.role
            case TurnRetried():
                self.retried[event.turn_id] = (event.failed_role, event.message)
            case AnswerText():
                with self.changed:
                    self.tokens.setdefault(event.turn_id, []).append(event.piece)
                    self.changed.notify_all()
            case TurnEnded():
                with self.changed:
                    if event.failed:
                        self.failed[event.turn_id] = event.error
                    else:
                        self.finished[event.turn_id] = event.stopped
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
    session = ChatSession(config, loader, subscriber=events, store=store, machine=machine)
    session.recorded = events  # type: ignore[attr-defined]
    session.start()
    assert session.wait_loaded(TIMEOUT)
    return session


def events_of(session: ChatSession) -> Events:
    return session.recorded  # type: ignore[attr-defined,no-any-return]
