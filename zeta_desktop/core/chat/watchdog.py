"""The watchdog: an answer that goes silent too long fails over to another model.

A model can hang inside a call that never returns; its worker cannot say
so. A thread looks at every streaming attempt twice a second: one without a
token for too long counts as a crash of its model (cooled down, the prompt
retried elsewhere), and the prompts queued behind it go elsewhere too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from zeta_desktop.core.chat.dispatch_queue import DispatchQueue
from zeta_desktop.core.chat.ledger import TurnLedger
from zeta_desktop.core.chat.retries import Retries
from zeta_desktop.core.chat.turn import Turn, TurnStatus
from zeta_desktop.core.fleet.worker import ChatJob

log = logging.getLogger(__name__)

WATCHDOG_EVERY_S = 0.5


@dataclass(frozen=True)
class Watchdog:
    """How long a model may go without a token before it counts as failed."""

    token_timeout_s: float = 60.0
    first_token_timeout_s: float = 600.0

    def overdue(self, turn: Turn, now: float) -> str:
        """Why this streaming attempt counts as hung, or ''."""
        if turn.job_started_at is None or turn.status is not TurnStatus.STREAMING:
            return ""
        if turn.last_token_at is None:
            silent = now - turn.job_started_at
            limit = self.first_token_timeout_s
            what = "no first token"
        else:
            silent = now - turn.last_token_at
            limit = self.token_timeout_s
            what = "no token"
        return f"{what} for {silent:.0f} s (watchdog limit {limit:g} s)" if silent > limit else ""


class StallWatch:
    """The watchdog's thread, and what it does with a silent attempt."""

    def __init__(self, watchdog: Watchdog, ledger: TurnLedger, dispatch: DispatchQueue,
                 retries: Retries, on_model_failure: Callable[[str], float]) -> None:
        self.watchdog = watchdog
        self._ledger = ledger
        self._dispatch = dispatch
        self._retries = retries
        self._on_model_failure = on_model_failure  # the model cools down, as after a crash
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="zeta-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _watch(self) -> None:
        while not self._closing.wait(WATCHDOG_EVERY_S):
            self.check()

    def check(self) -> list[int]:
        """Fail over every attempt that has gone silent too long; returns their turn ids.

        The hung job is cancelled (a model that still reads the cancel flag
        stops at its next token) and dropped: its late events are ignored, as
        a retried turn's are, so a model stuck inside a call it never returns
        from cannot hold the prompt.
        """
        now = self._ledger.clock()
        stalled: list[tuple[Turn, str, ChatJob, str]] = []
        with self._ledger.lock:
            for turn in self._ledger.all():
                why = turn.status.active and self.watchdog.overdue(turn, now)
                if why and turn.job is not None:
                    # Detached before it is cancelled: the worker's answer to the
                    # cancel (a "stopped" end) must find the job stale, not end the turn.
                    stalled.append((turn, why, turn.job, turn.role))
                    turn.job = None
        for turn, why, job, role in stalled:
            # The prompts queued behind it first: once cancelled, the model may
            # take the next job in its queue at once.
            self._requeue_behind(role)
            job.cancel.set()
            log.warning("turn %d: %s on %s; failing over", turn.turn_id, why, role)
            self._on_model_failure(role)
            self._retries.retry_or_fail(turn, role, why)
        return [turn.turn_id for turn, *_ in stalled]

    def _requeue_behind(self, endpoint: str) -> None:
        """Prompts queued behind a hung model go elsewhere; it may never get to them."""
        waiting: list[Turn] = []
        with self._ledger.lock:
            for turn in self._ledger.all():
                if turn.role == endpoint and turn.status is TurnStatus.QUEUED and turn.job:
                    turn.job.cancel.set()  # the worker skips it
                    turn.job, turn.status = None, TurnStatus.ROUTING
                    waiting.append(turn)
        for turn in waiting:
            self._dispatch.put(turn, frozenset({endpoint}))
