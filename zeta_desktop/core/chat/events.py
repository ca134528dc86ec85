"""What a session tells its clients: one frozen event per thing that happened.

The turn runner and the session publish these to every subscriber, on
worker and dispatcher threads; a subscriber that needs another thread (the
window's GUI thread) hands them over itself. Each turn event names the turn,
its conversation and its answer message, so a client never has to look the
turn up again to know where it belongs. A new kind of event is a class here
and a case in each subscriber that cares.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from zeta_desktop.core.fleet.worker import ChatStats, WorkerState
from zeta_desktop.core.routing.router import Decision

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnEvent:
    turn_id: int
    conversation_id: str
    answer_id: str  # the answer's message in the conversation model


@dataclass(frozen=True, slots=True)
class TurnRouted(TurnEvent):
    """The router chose a model for the turn (again, after a retry)."""

    decision: Decision


@dataclass(frozen=True, slots=True)
class TurnStarted(TurnEvent):
    """A model began on the turn."""

    role: str
    reason: str  # why the router chose it


@dataclass(frozen=True, slots=True)
class AnswerText(TurnEvent):
    """A piece of the answer arrived."""

    piece: str
    so_far: str  # this attempt's whole answer, the piece included


@dataclass(frozen=True, slots=True)
class DocumentsSearched(TurnEvent):
    """A question's documents were searched (before it is routed): what was found."""

    passages: int
    note: str  # why none, when none ("" when some were found)


@dataclass(frozen=True, slots=True)
class TurnRetried(TurnEvent):
    """The turn failed on a model, or must wait for one, and goes on elsewhere."""

    failed_role: str
    message: str


@dataclass(frozen=True, slots=True)
class TurnEnded(TurnEvent):
    """The turn is over: answered, stopped by the user, or failed (`error`)."""

    prompt: str
    answer: str  # what came, partial when stopped or failed
    stopped: bool
    stats: ChatStats | None  # None when no model answered
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass(frozen=True, slots=True)
class RoleStateChanged:
    """A role's model (or one replica, `role#2`) loaded, failed, unloaded..."""

    role: str
    state: WorkerState
    detail: str


@dataclass(frozen=True, slots=True)
class Alert:
    """A problem that outlives any one conversation (the history file, settings)."""

    text: str


SessionEvent = (TurnRouted | TurnStarted | AnswerText | TurnRetried | TurnEnded
                | DocumentsSearched | RoleStateChanged | Alert)
Subscriber = Callable[[SessionEvent], None]


class EventHub:
    """Hands each event to every subscriber, in the publisher's thread.

    Each call is guarded: a subscriber's bug (the window, the store) is logged
    and never reaches the publisher, so it cannot fail an answer or trip a
    model's breaker.
    """

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:  # publishers read the tuple without the lock
            self._subscribers = (*self._subscribers, subscriber)

    def publish(self, event: SessionEvent) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber failed on %s", type(event).__name__)
