"""After an attempt fails: the next model, a pause, or the end, saying why.

A failed model's prompt goes to the next best model not tried in this
round; once every one has failed it, it waits for the first to recover
(within the recovery window). A busy server (429/503) is waited for or
left for another replica, a bounded number of times. A prompt too long for
its model goes to one with a larger context. No prompt is lost: each path
ends in another attempt or in a failure that says why.
"""

from __future__ import annotations

import logging

from zeta_desktop.core.chat.dispatch_queue import DispatchQueue
from zeta_desktop.core.chat.events import TurnRetried
from zeta_desktop.core.chat.ledger import TurnLedger, where
from zeta_desktop.core.chat.turn import Turn
from zeta_desktop.core.engines.base import NoRoleAvailableError
from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.routing.classifier import TaskKind
from zeta_desktop.core.routing.router import UNSERVABLE_STATES, ZetaDynamicRouter

log = logging.getLogger(__name__)

# A busy server (429/503): how often a prompt waits for one before it fails,
# and how long it waits when the server does not say (Retry-After).
MAX_TRANSIENT_WAITS = 5
TRANSIENT_WAIT_S = 1.0
# Every model failed the prompt: it waits this long in all, from when it was
# sent, for one to recover (the soonest breaker to close) before it fails.
RECOVERY_WINDOW_S = 30.0
RECOVERY_MIN_WAIT_S = 0.25


class Retries:
    def __init__(self, ledger: TurnLedger, dispatch: DispatchQueue, router: ZetaDynamicRouter,
                 fleet: Fleet, max_retries: int = 1,
                 recovery_window_s: float = RECOVERY_WINDOW_S) -> None:
        self._ledger = ledger
        self._dispatch = dispatch
        self._router = router
        self._fleet = fleet
        self.max_retries = max_retries
        self.recovery_window_s = recovery_window_s

    def retry_or_fail(self, turn: Turn, endpoint: str, message: str) -> None:
        """After a model failed the prompt: the next best one not tried in this
        round; once every one has, wait for the first to recover."""
        tried = turn.tried(since_round=True) | {endpoint}
        if len(turn.attempts) - turn.round_start < self.max_retries:
            self._redispatch(turn, endpoint, message, tried)
            return
        self.wait_for_recovery(turn, endpoint, message)

    def wait_for_recovery(self, turn: Turn, endpoint: str, message: str) -> None:
        left = self.recovery_window_s - (self._ledger.clock() - turn.created_at)
        cooldowns = [s.cooldown_left_s for s in self._router.telemetry.snapshot().models.values()
                     if s.state not in UNSERVABLE_STATES]
        if (self._dispatch.closing.is_set() or turn.cancelled or left <= RECOVERY_MIN_WAIT_S
                or not cooldowns):
            self._ledger.fail(turn, f"{endpoint}: {message}")
            return
        delay = min(left, max(RECOVERY_MIN_WAIT_S, min(cooldowns)))
        with self._ledger.lock:
            turn.attempts.append((endpoint, message))
            turn.round_start = len(turn.attempts)
            turn.back_to_routing()
        log.info("turn %d: every model failed it; trying again in %.1f s", turn.turn_id, delay)
        self._ledger.publish(TurnRetried(
            *where(turn), endpoint,
            f"{message}; every model failed, trying again in {delay:.0f} s"))
        self._dispatch.later(delay, turn, frozenset())

    def wait_or_move(self, turn: Turn, endpoint: str, message: str,
                     retry_after_s: float | None) -> None:
        """A busy server: to another replica or role now if one can take it,
        else back to this one once it asked us to wait."""
        if self._dispatch.closing.is_set():
            self._ledger.fail(turn, f"{endpoint}: {message}")
            return
        if turn.transient_waits >= MAX_TRANSIENT_WAITS:
            self._ledger.fail(turn, f"{endpoint}: {message} (still busy after "
                                    f"{MAX_TRANSIENT_WAITS} tries)")
            return
        turn.transient_waits += 1
        tried = turn.tried()
        if self._elsewhere(turn, tried | {endpoint}):
            delay, exclude = 0.0, tried | {endpoint}
        else:
            delay, exclude = retry_after_s or TRANSIENT_WAIT_S, tried
        with self._ledger.lock:
            turn.back_to_routing()
        to = "another model" if delay == 0 else f"the same server in {delay:.0f} s"
        log.info("turn %d: %s busy (%s); to %s", turn.turn_id, endpoint, message, to)
        self._ledger.publish(TurnRetried(*where(turn), endpoint, f"{message}; trying {to}"))
        if delay == 0:
            self._dispatch.put(turn, exclude)
        else:
            self._dispatch.later(delay, turn, exclude)

    def _elsewhere(self, turn: Turn, exclude: frozenset[str]) -> bool:
        """Another endpoint could take the turn now (the role the user chose, if one)."""
        kind = turn.decision.kind if turn.decision is not None else TaskKind.SIMPLE
        try:
            other = self._router.route(kind, exclude=exclude, commit=False)
        except NoRoleAvailableError:
            return False
        return turn.forced_role is None or other.role == turn.forced_role

    def retry_for_context(self, turn: Turn, endpoint: str, message: str) -> None:
        """The prompt did not fit: only a model with a larger context could take it."""
        role = self._fleet.role_of(endpoint)
        roles = self._fleet.roles
        n_ctx = roles[role].config.n_ctx
        tried = {self._fleet.role_of(r) for r in turn.tried()} | {role}
        larger = [r for r, rt in roles.items()
                  if r not in tried and rt.can_chat and rt.config.n_ctx > n_ctx
                  and self._fleet.usable(r)]
        if not larger:
            turn.too_long = True
            self._ledger.fail(turn, f"{role}: {message}")
            return
        target = max(larger, key=lambda r: roles[r].config.n_ctx)
        self._redispatch(turn, endpoint, message, turn.tried() | {endpoint}, forced_role=target)

    def _redispatch(self, turn: Turn, endpoint: str, message: str, exclude: frozenset[str],
                    forced_role: str | None = None) -> None:
        with self._ledger.lock:
            turn.attempts.append((endpoint, message))
            turn.back_to_routing()
            if forced_role is not None:
                turn.forced_role = forced_role
        self._ledger.publish(TurnRetried(*where(turn), endpoint, message))
        self._dispatch.put(turn, exclude)
