"""The runner's turns: each by id, under one lock, and how a turn ends.

Every part of the runner (dispatch, grounding, commands, retries, the
watchdog) finds turns and ends them here, so a turn's end is always told
the same way: one `TurnEnded` event, after its history is let go.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from zeta_desktop.core.chat.events import (
    AnswerText,
    SessionEvent,
    TurnEnded,
    TurnStarted,
)
from zeta_desktop.core.chat.turn import Turn, TurnStatus
from zeta_desktop.core.engines.base import ChatMessage
from zeta_desktop.core.fleet.worker import ChatJob, ChatStats

STOPPED_EARLY = "stopped before it started"
# Finished turns kept (the newest): what the route preview, the router log and
# a follow-up's reading need, with a bound, so a server answering for weeks
# does not keep every answer it ever gave. Trimmed in batches, not per turn.
KEPT_FINISHED = 2000
TRIM_EVERY = 250
CLIENT_PROMPT_KEPT = 200  # characters of a client's prompt kept once its turn ended


def where(turn: Turn) -> tuple[int, str, str]:
    """The fields every turn event starts with."""
    return turn.turn_id, turn.conversation_id, turn.answer_id


class TurnLedger:
    def __init__(self, publish: Callable[[SessionEvent], None],
                 clock: Callable[[], float]) -> None:
        self.publish = publish
        self.clock = clock
        # Re-entrant: a part holding it may end a turn, which takes it again.
        self.lock = threading.RLock()
        self._turns: dict[int, Turn] = {}
        self._ids = itertools.count(1)

    def new(self, prompt: str, history: Callable[[], list[ChatMessage]],
            **fields: Any) -> Turn:
        with self.lock:
            turn = Turn(next(self._ids), prompt, history, created_at=self.clock(), **fields)
            self._turns[turn.turn_id] = turn
        return turn

    def get(self, turn_id: int) -> Turn:
        with self.lock:
            return self._turns[turn_id]

    def all(self) -> list[Turn]:
        with self.lock:
            return list(self._turns.values())

    def of_job(self, job: ChatJob) -> Turn | None:
        """The turn a job is the current attempt of; None for a stale job
        (a retried or failed-over turn has a new one, or none)."""
        with self.lock:
            turn = self._turns.get(job.tag) if isinstance(job.tag, int) else None
            return turn if turn is not None and turn.job is job else None

    # -- how a turn ends ------------------------------------------------------------

    def end(self, turn: Turn, status: TurnStatus, error: str = "") -> None:
        """Done, stopped or failed: tell the subscribers once, with what came."""
        with self.lock:
            turn.status = status
            if error:
                turn.error = error
            # It holds the whole conversation; the turn is kept, its history is not.
            turn.history = _no_history
            if len(self._turns) > KEPT_FINISHED + TRIM_EVERY:
                self._trim(keep=turn)
        ended = TurnEnded(*where(turn), prompt=turn.prompt, answer=turn.answer,
                          stopped=status is TurnStatus.STOPPED, stats=turn.stats, error=error)
        if turn.from_client:
            # A client's prompt can be a whole pasted file, kept by no one else:
            # the preview's line of it stays, the answer goes out with the event
            # (trimmed before it is told, so no subscriber sees it change after).
            with self.lock:
                turn.prompt, turn.answer = turn.prompt[:CLIENT_PROMPT_KEPT], ""
        self.publish(ended)

    def _trim(self, keep: Turn) -> None:
        """Forget the oldest finished turns beyond KEPT_FINISHED (ids are in
        creation order); unfinished ones, and the one ending now (its
        subscribers look it up), are never forgotten."""
        excess = len(self._turns) - KEPT_FINISHED
        old = [t for t, turn in self._turns.items()
               if not turn.status.active and turn is not keep][:excess]
        for turn_id in old:
            del self._turns[turn_id]

    def fail(self, turn: Turn, message: str) -> None:
        self.end(turn, TurnStatus.FAILED, message)

    def stopped_early(self, turn: Turn) -> None:
        """Stopped by the user before a model took it."""
        self.end(turn, TurnStatus.STOPPED, STOPPED_EARLY)

    def answer_at_once(self, turn: Turn, role: str, answer: str) -> None:
        """An answer that is not streamed (a command's): started, said and done."""
        with self.lock:
            turn.status, turn.answer = TurnStatus.STREAMING, answer
            turn.stats = ChatStats(0, 0.0, 0.0, 0.0, 0.0)
        self.publish(TurnStarted(*where(turn), role, turn.reason))
        self.publish(AnswerText(*where(turn), answer, answer))
        self.end(turn, TurnStatus.DONE)


def _no_history() -> list[ChatMessage]:
    return []
