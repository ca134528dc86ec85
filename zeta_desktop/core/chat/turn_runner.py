"""Running a turn: route it, submit it to a worker, retry it elsewhere, stop it.

`submit()` never blocks. The runner is made of parts, one job each:

- `dispatch`: the dispatcher thread routes each turn and submits its job;
- `grounding_step`: a question against documents is searched off that thread;
- `commands`: `/embed` and `/similar`, answered at once;
- `learning`: a role the user chose teaches the router;
- `retries`: a failed attempt goes to the next model, waits, or fails saying why;
- `watchdog`: an attempt gone silent fails over.

The runner itself hears each job's events from the workers and keeps the
turns (`ledger`). Subscribers hear every event (core/chat/events.py) after
the runner has done its own bookkeeping, and each call is guarded: a bug in
one (the window, the store) is logged and never reaches the worker's error
handling, so it cannot trip a model's breaker or fail the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

from zeta_desktop.core.chat.commands import Commands, SearchHistory
from zeta_desktop.core.chat.dispatch import Classify, Dispatcher, earlier_user_prompt
from zeta_desktop.core.chat.dispatch_queue import DispatchQueue
from zeta_desktop.core.chat.events import AnswerText, EventHub, TurnStarted
from zeta_desktop.core.chat.grounding_step import GroundingStep, Retriever
from zeta_desktop.core.chat.learning import OverrideLearner
from zeta_desktop.core.chat.ledger import TurnLedger, where
from zeta_desktop.core.chat.retries import RECOVERY_WINDOW_S, TRANSIENT_WAIT_S, Retries
from zeta_desktop.core.chat.turn import Turn, TurnStatus
from zeta_desktop.core.chat.watchdog import StallWatch, Watchdog
from zeta_desktop.core.engines.base import (
    ChatMessage,
    PromptTooLongError,
    TransientEngineError,
)
from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.fleet.worker import ChatJob, ChatListener, ChatStats
from zeta_desktop.core.routing.classifier import Classification
from zeta_desktop.core.routing.router import Decision, ZetaDynamicRouter

log = logging.getLogger(__name__)

__all__ = ["Classify", "ModelOutcomes", "Retriever", "Turn", "TurnRunner", "TurnStatus",
           "Watchdog", "earlier_user_prompt"]


class ModelOutcomes(Protocol):
    """How each attempt went, for the model's telemetry and breaker."""

    def on_first_token(self, role: str, ttft_s: float | None = None) -> None: ...
    def on_token(self, role: str) -> None: ...
    def on_backoff(self, role: str, seconds: float) -> None:
        """A busy server asked for a pause: keep off it, no failure counted."""
        ...
    def on_success(self, role: str, stats: ChatStats, kind: str | None = None) -> None: ...
    def on_model_failure(self, role: str) -> float:
        """Returns the cooldown the model is now in, seconds."""
        ...


class TurnRunner(ChatListener):
    def __init__(
        self,
        fleet: Fleet,
        router: ZetaDynamicRouter,
        classify: Classify,
        outcomes: ModelOutcomes,
        max_retries: int = 1,
        watchdog: Watchdog | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_learned: Callable[[], None] | None = None,
        retrieve: Retriever | None = None,
        recovery_window_s: float = RECOVERY_WINDOW_S,
        events: EventHub | None = None,
    ) -> None:
        self.events = events if events is not None else EventHub()
        self.publish = self.events.publish
        self._outcomes = outcomes
        self._clock = clock
        self._ledger = TurnLedger(self.publish, clock)
        self._queue = DispatchQueue()
        self._retries = Retries(self._ledger, self._queue, router, fleet, max_retries,
                                recovery_window_s)
        self._grounding = GroundingStep(self._ledger, self._queue.put)
        self._grounding.retrieve = retrieve
        self._commands = Commands(self._ledger, fleet)
        self._dispatcher = Dispatcher(
            self._queue, self._ledger, fleet, router, classify, self,
            grounding=self._grounding, commands=self._commands,
            learner=OverrideLearner(router, on_learned), retries=self._retries)
        self._watch = StallWatch(watchdog or Watchdog(), self._ledger, self._queue,
                                 self._retries, outcomes.on_model_failure)
        self._started = False

    # -- the parts' settings, as the session sets them ---------------------------------

    @property
    def retrieve(self) -> Retriever | None:
        """Documents: the passages for a question."""
        return self._grounding.retrieve

    @retrieve.setter
    def retrieve(self, retrieve: Retriever | None) -> None:
        self._grounding.retrieve = retrieve

    @property
    def search_history(self) -> SearchHistory | None:
        """`/similar TEXT`: past messages by meaning."""
        return self._commands.search_history

    @search_history.setter
    def search_history(self, search: SearchHistory | None) -> None:
        self._commands.search_history = search

    @property
    def max_retries(self) -> int:
        return self._retries.max_retries

    @max_retries.setter
    def max_retries(self, count: int) -> None:
        self._retries.max_retries = count

    @property
    def recovery_window_s(self) -> float:
        return self._retries.recovery_window_s

    @recovery_window_s.setter
    def recovery_window_s(self, seconds: float) -> None:
        self._retries.recovery_window_s = seconds

    @property
    def watchdog(self) -> Watchdog:
        return self._watch.watchdog

    # -- any thread --------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self._dispatcher.start()
        self._watch.start()

    def shutdown(self, timeout: float | None = None) -> None:
        self.stop()
        self._queue.close()
        if self._started:
            self._dispatcher.join(timeout)
            self._watch.close(timeout)

    def new_turn(
        self, prompt: str, history: Callable[[], list[ChatMessage]], **fields: Any
    ) -> Turn:
        return self._ledger.new(prompt, history, **fields)

    def submit(self, turn: Turn) -> None:
        self._queue.put(turn)

    def turn(self, turn_id: int) -> Turn:
        return self._ledger.get(turn_id)

    @property
    def turns(self) -> list[Turn]:
        return self._ledger.all()

    def stop(self, turn_id: int | None = None) -> None:
        """Stop one turn, or every unfinished one."""
        with self._ledger.lock:
            turns = [self._ledger.get(turn_id)] if turn_id is not None else self._ledger.all()
            stopping = [turn for turn in turns if turn.status.active]
            for turn in stopping:
                turn.cancelled = True
                if turn.job is not None:
                    turn.job.cancel.set()
        for turn in stopping:
            self._grounding.stop(turn)  # one whose documents are searched ends now

    def route(self, prompt: str, exclude: Collection[str] = (),
              context_tokens: int = 0, prompt_tokens: int = 0,
              earlier_prompt: Classification | str | None = None) -> Decision:
        return self._dispatcher.route(prompt, exclude, context_tokens, prompt_tokens,
                                      earlier_prompt)

    def check_stalls(self) -> list[int]:
        """The watchdog's check, now: the turn ids it failed over."""
        return self._watch.check()

    # -- ChatListener (worker threads) -------------------------------------------------

    def on_started(self, job: ChatJob, role: str) -> None:
        turn = self._ledger.of_job(job)
        if turn is None:
            return
        turn.job_started_at = self._clock()
        turn.last_token_at = None
        turn.status = TurnStatus.STREAMING
        self.publish(TurnStarted(*where(turn), role, turn.reason))

    def on_token(self, job: ChatJob, text: str) -> None:
        turn = self._ledger.of_job(job)
        if turn is None:
            return
        if not turn.answer:  # this job's first token (a retry starts the answer over)
            started = turn.job_started_at
            self._outcomes.on_first_token(
                turn.role, None if started is None else self._clock() - started)
        self._outcomes.on_token(turn.role)
        turn.last_token_at = self._clock()
        turn.answer += text
        self.publish(AnswerText(*where(turn), text, turn.answer))

    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None:
        turn = self._ledger.of_job(job)
        if not stopped:  # a stopped answer says nothing about the model's speed
            decision = turn.decision if turn is not None else None
            self._outcomes.on_success(role, stats, decision.kind.value if decision else None)
        if turn is None:
            return
        turn.stats = stats
        self._ledger.end(turn, TurnStatus.STOPPED if stopped else TurnStatus.DONE)

    def on_failed(self, job: ChatJob, role: str, message: str, partial: bool,
                  error: Exception | None = None) -> None:
        turn = self._ledger.of_job(job)
        if turn is None and job.cancel.is_set():
            return  # a job the watchdog (or a requeue) already took the prompt from
        if job.cancel.is_set() and not partial:
            if turn is not None:
                self._ledger.stopped_early(turn)
            return
        if isinstance(error, TransientEngineError) and not partial:
            self._outcomes.on_backoff(role, error.retry_after_s or TRANSIENT_WAIT_S)
            if turn is not None:
                self._retries.wait_or_move(turn, role, message, error.retry_after_s)
            return
        if isinstance(error, PromptTooLongError):
            # The prompt's fault, not the model's: no breaker; only a model
            # with a larger context could take it.
            if turn is not None:
                self._retries.retry_for_context(turn, role, message)
            return
        cooldown = self._outcomes.on_model_failure(role)
        if turn is None:
            return
        if job.cancel.is_set():  # stopped by the user while failing: keep what came
            self._ledger.end(turn, TurnStatus.STOPPED, f"{role}: {message}")
            return
        if partial:  # kept: the retry starts over, but what came is not lost
            turn.partials[len(turn.attempts)] = turn.answer
        log.info("turn %d failed on %s (%s); %s cools down %.0f s",
                 turn.turn_id, role, message, role, cooldown)
        self._retries.retry_or_fail(turn, role, message)
