"""Running a turn: route it, submit it to a worker, retry it elsewhere, stop it.

A `Turn` is job state only (where the prompt went, how it is going); the
words live in the conversation model. `submit()` never blocks: a dispatcher
thread waits for the prompt to be on disk, classifies it, asks the router and
submits the job. When a job fails it is retried once on the next best model,
so no prompt is lost.

Subscribers hear every event (core/chat/events.py) after the runner has done
its own bookkeeping, and each call is guarded: a bug in one (the window, the store) is
logged and never reaches the worker's error handling, so it cannot trip a
model's breaker or fail the answer.
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from zeta_desktop.core.chat.events import (
    AnswerText,
    EventHub,
    TurnEnded,
    TurnRetried,
    TurnRouted,
    TurnStarted,
)
from zeta_desktop.core.conversation.model import DEFAULT_SYSTEM_PROMPT
from zeta_desktop.core.documents.grounding import (
    Source,
    fit_passages,
    grounded_prompt,
    prompt_tokens,
    sources_for,
)
from zeta_desktop.core.documents.index_db import StoredChunk
from zeta_desktop.core.engines.base import (
    ChatMessage,
    EngineError,
    NoRoleAvailableError,
    PromptTooLongError,
    TransientEngineError,
)
from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.fleet.worker import (
    ChatJob,
    ChatListener,
    ChatStats,
    EmbedJob,
    estimate_prompt_tokens,
)
from zeta_desktop.core.routing import embed_commands
from zeta_desktop.core.routing.classifier import Classification, TaskKind, explicit_command
from zeta_desktop.core.routing.router import UNSERVABLE_STATES, Decision, ZetaDynamicRouter

log = logging.getLogger(__name__)

PROMPT_SAVE_WAIT_S = 5.0  # the dispatcher waits this long for the prompt to be on disk
# A busy server (429/503): how often a prompt waits for one before it fails,
# and how long it waits when the server does not say (Retry-After).
MAX_TRANSIENT_WAITS = 5
TRANSIENT_WAIT_S = 1.0
WATCHDOG_EVERY_S = 0.5
# Every model failed the prompt: it waits this long in all, from when it was
# sent, for one to recover (the soonest breaker to close) before it fails.
RECOVERY_WINDOW_S = 30.0
RECOVERY_MIN_WAIT_S = 0.25


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


class TurnStatus(enum.StrEnum):
    ROUTING = "routing"
    QUEUED = "queued"
    STREAMING = "streaming"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (TurnStatus.ROUTING, TurnStatus.QUEUED, TurnStatus.STREAMING)


@dataclass(eq=False)
class Turn:
    turn_id: int
    prompt: str
    history: Callable[[], list[ChatMessage]]  # what the model sees, built when submitted
    forced_role: str | None = None
    learned_from: bool = False  # the user's choice of role was taught to the router
    conversation_id: str = ""
    answer_id: str = ""  # the answer message in the conversation model
    saved: Future[Any] | None = None  # the prompt's write to disk
    role: str = ""
    reason: str = ""
    answer: str = ""  # this attempt's text (a retry starts it over)
    status: TurnStatus = TurnStatus.ROUTING
    error: str = ""
    stats: ChatStats | None = None
    classification: Classification | None = None
    decision: Decision | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (endpoint, failure)
    partials: dict[int, str] = field(default_factory=dict)  # attempt index -> its partial answer
    transient_waits: int = 0  # times a busy server made it wait or move
    created_at: float = 0.0  # monotonic, when it was queued
    round_start: int = 0  # attempts before this round of retries (a recovery wait starts one)
    job: ChatJob | None = field(default=None, repr=False)
    cancelled: bool = False
    job_started_at: float | None = None  # monotonic, when the worker took this attempt
    last_token_at: float | None = None
    # Asked against document collections: the passages found (once, before
    # the first attempt), those the chosen model was given, and what happened.
    collections: tuple[str, ...] = ()
    passages: list[StoredChunk] | None = None
    sources: list[Source] = field(default_factory=list)
    grounding_note: str = ""

    @property
    def retried(self) -> bool:
        return bool(self.attempts)


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


Retriever = Callable[[str, Sequence[str]], list[StoredChunk]]
class Classify(Protocol):
    """A prompt's kind; `context`: the user's turn before it, as it was
    classified or as text (follow-ups are read with it)."""

    def __call__(self, prompt: str,
                 context: Classification | str | None = None) -> Classification: ...


def _where(turn: Turn) -> tuple[int, str, str]:
    """The fields every turn event starts with."""
    return turn.turn_id, turn.conversation_id, turn.answer_id


def _ended_event(turn: Turn, stopped: bool, error: str = "") -> TurnEnded:
    return TurnEnded(*_where(turn), prompt=turn.prompt, answer=turn.answer, stopped=stopped,
                     stats=turn.stats, error=error)


def earlier_user_prompt(messages: Sequence[ChatMessage]) -> str | None:
    """The user's turn before the last one: what a follow-up refers to."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-2] if len(users) >= 2 else None


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
        self.recovery_window_s = recovery_window_s
        self._on_learned = on_learned  # the router learned from a choice: save it
        self.retrieve = retrieve  # documents: the passages for a question
        # `/similar TEXT`: past messages by meaning (the document library's)
        self.search_history: Callable[[str], list[Any]] | None = None
        self._fleet = fleet
        self._router = router
        self._classify = classify
        self._outcomes = outcomes
        self.max_retries = max_retries
        self.events = events if events is not None else EventHub()
        self.publish = self.events.publish
        self._turns: dict[int, Turn] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._dispatch: queue.Queue[tuple[Turn, frozenset[str]] | None] = queue.Queue()
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="zeta-dispatch", daemon=True
        )
        self.watchdog = watchdog or Watchdog()
        self._clock = clock
        self._closing = threading.Event()
        self._watchdog_thread = threading.Thread(
            target=self._watch, name="zeta-watchdog", daemon=True
        )
        self._started = False
        self._timers: list[threading.Timer] = []


    def _ended(self, turn: Turn) -> None:
        """A turn is over: let go of its history (it holds the whole conversation)."""
        turn.history = _no_history


    def start(self) -> None:
        self._started = True
        self._dispatcher.start()
        self._watchdog_thread.start()

    def shutdown(self, timeout: float | None = None) -> None:
        self.stop()
        self._closing.set()
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        if self._started:
            self._dispatch.put(None)
            self._dispatcher.join(timeout)
            self._watchdog_thread.join(timeout)

    # -- the watchdog thread ---------------------------------------------------------

    def _watch(self) -> None:
        while not self._closing.wait(WATCHDOG_EVERY_S):
            self.check_stalls()

    def check_stalls(self) -> list[int]:
        """Fail over every attempt that has gone silent too long; returns their turn ids.

        The hung job is cancelled (a model that still reads the cancel flag
        stops at its next token) and dropped: its late events are ignored, as
        a retried turn's are, so a model stuck inside a call it never returns
        from cannot hold the prompt. The model is cooled down like a crash.
        """
        now = self._clock()
        with self._lock:
            stalled = []
            for turn in self._turns.values():
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
            self._outcomes.on_model_failure(role)
            self._retry_or_fail(turn, role, why)
        return [turn.turn_id for turn, *_ in stalled]

    def _requeue_behind(self, role: str) -> None:
        """Prompts queued behind a hung model go elsewhere; it may never get to them."""
        with self._lock:
            waiting = [t for t in self._turns.values()
                       if t.role == role and t.status is TurnStatus.QUEUED and t.job]
            for turn in waiting:
                turn.job.cancel.set()  # type: ignore[union-attr]  (the worker skips it)
                turn.job, turn.status = None, TurnStatus.ROUTING
        for turn in waiting:
            self._dispatch.put((turn, frozenset({role})))

    # -- any thread --------------------------------------------------------------

    def new_turn(
        self, prompt: str, history: Callable[[], list[ChatMessage]], **fields: Any
    ) -> Turn:
        with self._lock:
            turn = Turn(next(self._ids), prompt, history, created_at=self._clock(), **fields)
            self._turns[turn.turn_id] = turn
        return turn

    def submit(self, turn: Turn) -> None:
        self._dispatch.put((turn, frozenset()))

    def turn(self, turn_id: int) -> Turn:
        with self._lock:
            return self._turns[turn_id]

    @property
    def turns(self) -> list[Turn]:
        with self._lock:
            return list(self._turns.values())

    def stop(self, turn_id: int | None = None) -> None:
        """Stop one turn, or every unfinished one."""
        with self._lock:
            turns = [self._turns[turn_id]] if turn_id is not None else list(self._turns.values())
            for turn in turns:
                if turn.status.active:
                    turn.cancelled = True
                    if turn.job is not None:
                        turn.job.cancel.set()

    def route(self, prompt: str, exclude: Collection[str] = (),
              context_tokens: int = 0, prompt_tokens: int = 0,
              earlier_prompt: Classification | str | None = None) -> Decision:
        classification = self._classify(prompt, context=earlier_prompt)
        return self._router.route(classification.kind, exclude=exclude,
                                  classification=classification,
                                  context_tokens=context_tokens,
                                  prompt_tokens=prompt_tokens)

    # -- dispatcher thread ---------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            item = self._dispatch.get()
            if item is None:
                return
            turn, exclude = item
            try:
                self._route_and_submit(turn, exclude)
            except Exception as exc:  # never lose a prompt silently
                log.exception("dispatching turn %d failed", turn.turn_id)
                self._fail(turn, f"could not dispatch: {type(exc).__name__}: {exc}")

    def _turn_before(self, turn: Turn,
                     earlier_text: str | None) -> Classification | str | None:
        """What a follow-up is read with: the conversation's previous turn as
        it was classified, when that turn still streams (the history leaves
        it out) or is the earlier user turn the history shows (so a chain of
        follow-ups carries the first one's kind); else the earlier text, as
        after an edit or a restart."""
        with self._lock:
            before = [t for t in self._turns.values()
                      if t.conversation_id == turn.conversation_id and t.turn_id < turn.turn_id
                      and t.classification is not None and t.prompt != turn.prompt]
        if before:
            previous = max(before, key=lambda t: t.turn_id)
            if previous.status.active or previous.prompt == earlier_text:
                return previous.classification
        return earlier_text

    def _wait_saved(self, turn: Turn) -> None:
        if turn.saved is None or turn.attempts:  # a retry's prompt was saved before
            return
        try:
            turn.saved.result(PROMPT_SAVE_WAIT_S)
        except Exception as exc:  # the store says why; the answer still comes
            log.warning("turn %d: prompt not saved (%s); answering anyway", turn.turn_id, exc)

    def _route_and_submit(self, turn: Turn, exclude: frozenset[str]) -> None:
        self._wait_saved(turn)
        if turn.cancelled:
            self._finish_cancelled(turn)
            return
        context_need = self._context_need(turn)
        history = turn.history()
        earlier = self._turn_before(turn, earlier_user_prompt(history))
        try:
            forced_endpoint = (
                self._router.best_replica(turn.forced_role, exclude)
                if turn.forced_role is not None else None
            )
            if turn.forced_role is not None and forced_endpoint is not None:
                classification = self._classify(turn.prompt, context=earlier)
                role = turn.forced_role
                if not turn.attempts and not turn.learned_from:
                    self._learn_choice(turn, classification.kind, role, exclude)
                decision = Decision(
                    role=role,
                    kind=classification.kind,
                    policy="override",
                    reason=f"{classification.kind.value} -> {role}: chosen by you",
                    runner_up=None,
                    spilled=False,
                    preferred=role,
                    classification=classification,
                    endpoint=forced_endpoint,
                )
            else:
                decision = self.route(turn.prompt, exclude=exclude, context_tokens=context_need,
                                      prompt_tokens=estimate_prompt_tokens(history),
                                      earlier_prompt=earlier)
        except NoRoleAvailableError as exc:
            if turn.attempts and exclude:  # it failed before: every model it may try has
                self._wait_for_recovery(turn, turn.attempts[-1][0], str(exc))
            else:
                self._fail(turn, str(exc))
            return
        with self._lock:
            turn.role, turn.reason, turn.decision = decision.target, decision.reason, decision
            turn.classification = decision.classification
            turn.status = TurnStatus.QUEUED
        self.publish(TurnRouted(*_where(turn), decision))
        if decision.kind is TaskKind.EMBEDDING:
            self._submit_embedding(turn, decision.target)
            return
        role_config = self._fleet.roles[decision.role].config
        messages = history
        if turn.passages:
            messages = self._ground(turn, messages, role_config.n_ctx)
        role_prompt = role_config.system_prompt
        if (role_prompt and messages and messages[0]["role"] == "system"
                and messages[0]["content"] == DEFAULT_SYSTEM_PROMPT):
            # The role's own default, where the conversation kept the app's.
            messages = [{"role": "system", "content": role_prompt}, *messages[1:]]
        job = ChatJob(
            messages=messages,
            listener=self,
            max_tokens=role_config.max_tokens,
            temperature=role_config.temperature,
            tag=turn.turn_id,
            sampling=dict(role_config.sampling),
            kind=decision.kind.value,
        )
        with self._lock:
            turn.job = job
            if turn.cancelled:
                job.cancel.set()
        self._fleet.worker(decision.target).submit(job)

    def _context_need(self, turn: Turn) -> int:
        """Find the passages (first attempt only) and say how much context they need."""
        if not turn.collections or explicit_command(turn.prompt):
            return 0  # `/embed`, `/similar`: commands, not questions about the documents
        if turn.passages is None:
            turn.passages = []
            if self.retrieve is None:
                turn.grounding_note = "documents are not available in this session"
            else:
                try:
                    turn.passages = self.retrieve(turn.prompt, turn.collections)
                except Exception as exc:  # the answer still comes, without passages
                    log.warning("turn %d: retrieval failed (%s)", turn.turn_id, exc)
                    turn.grounding_note = f"the documents could not be searched ({exc})"
                else:
                    if not turn.passages:
                        turn.grounding_note = "no passage in the documents matched"
        sources = sources_for(turn.passages)
        return prompt_tokens(sources, {c.id: c.tokens for c in turn.passages}) if sources else 0

    def _ground(self, turn: Turn, messages: list[ChatMessage], n_ctx: int) -> list[ChatMessage]:
        """The question with the passages that fit this model: at most half of
        its context, the rest for the conversation and the answer."""
        budget = max(256, (n_ctx or 4096) // 2)
        chosen = fit_passages(turn.passages or [], budget)
        turn.sources = sources_for(chosen)
        left = len(turn.passages or []) - len(chosen)
        turn.grounding_note = (
            f"{len(chosen)} passage(s) given to the model"
            + (f"; {left} more did not fit its context" if left else "")
        )
        if not turn.sources or not messages or messages[-1]["role"] != "user":
            return messages
        last = {"role": "user", "content": grounded_prompt(messages[-1]["content"], turn.sources)}
        return [*messages[:-1], last]

    def _submit_embedding(self, turn: Turn, role: str) -> None:
        try:
            command = embed_commands.parse(turn.prompt)
        except embed_commands.CommandUsageError as exc:
            self._fail(turn, str(exc))
            return
        if command.searches_history:
            # Off the dispatcher: the query's embedding waits its turn on the embedder.
            threading.Thread(target=self._search_history, args=(turn, role, command.texts[0]),
                             name="zeta-similar", daemon=True).start()
            return
        job = EmbedJob(list(command.texts))
        job.result.add_done_callback(lambda f: self._on_embedding_done(turn, role, command, f))
        self._fleet.worker(role).submit(job)

    def _search_history(self, turn: Turn, role: str, text: str) -> None:
        if self.search_history is None:
            self._fail(turn, "searching the history needs the history to be saved")
            return
        try:
            hits = self.search_history(text)
        except Exception as exc:
            self._fail(turn, f"{role}: the history could not be searched ({exc})")
            return
        self._answer_at_once(turn, role, embed_commands.history_answer(text, hits))

    def _on_embedding_done(
        self,
        turn: Turn,
        role: str,
        command: embed_commands.EmbedCommand,
        result: Future[list[list[float]]],
    ) -> None:
        try:
            answer = embed_commands.answer(command, result.result())
        except EngineError as exc:
            self._fail(turn, f"{role}: {exc}")
            return
        self._answer_at_once(turn, role, answer)

    def _answer_at_once(self, turn: Turn, role: str, answer: str) -> None:
        with self._lock:
            turn.status, turn.answer = TurnStatus.STREAMING, answer
            turn.stats = ChatStats(0, 0.0, 0.0, 0.0, 0.0)
        self.publish(TurnStarted(*_where(turn), role, turn.reason))
        self.publish(AnswerText(*_where(turn), answer, answer))
        turn.status = TurnStatus.DONE
        self._ended(turn)
        self.publish(_ended_event(turn, stopped=False))

    def _fail(self, turn: Turn, message: str) -> None:
        with self._lock:
            turn.status, turn.error = TurnStatus.FAILED, message
        self._ended(turn)
        self.publish(_ended_event(turn, stopped=False, error=message))

    def _finish_cancelled(self, turn: Turn) -> None:
        with self._lock:
            turn.status, turn.error = TurnStatus.STOPPED, "stopped before it started"
        self._ended(turn)
        self.publish(_ended_event(turn, stopped=True, error="stopped before it started"))

    def _learn_choice(self, turn: Turn, kind: TaskKind, role: str,
                      exclude: frozenset[str]) -> None:
        """A role the user picked (override, regenerate on a role) teaches the
        router, if it would have picked another; retries moved by the app do not."""
        turn.learned_from = True
        try:
            routed = self._router.route(kind, exclude=exclude, commit=False).role
        except NoRoleAvailableError:
            return
        if self._router.learn_choice(kind, role, routed) and self._on_learned is not None:
            self._on_learned()

    def _redispatch(self, turn: Turn, role: str, message: str, exclude: frozenset[str],
                    forced_role: str | None = None) -> None:
        with self._lock:
            turn.attempts.append((role, message))
            _back_to_routing(turn)
            if forced_role is not None:
                turn.forced_role = forced_role
        self.publish(TurnRetried(*_where(turn), role, message))
        self._dispatch.put((turn, exclude))

    # -- ChatListener (worker threads) -------------------------------------------

    def _turn_for(self, job: ChatJob) -> Turn | None:
        with self._lock:
            turn = self._turns.get(job.tag)  # type: ignore[arg-type]
            # A retried turn has a new job; events of the old one are stale.
            return turn if turn is not None and turn.job is job else None

    def on_started(self, job: ChatJob, role: str) -> None:
        turn = self._turn_for(job)
        if turn is None:
            return
        turn.job_started_at = self._clock()
        turn.last_token_at = None
        turn.status = TurnStatus.STREAMING
        self.publish(TurnStarted(*_where(turn), role, turn.reason))

    def on_token(self, job: ChatJob, text: str) -> None:
        turn = self._turn_for(job)
        if turn is None:
            return
        if not turn.answer:  # this job's first token (a retry starts the answer over)
            started = turn.job_started_at
            self._outcomes.on_first_token(
                turn.role, None if started is None else self._clock() - started)
        self._outcomes.on_token(turn.role)
        turn.last_token_at = self._clock()
        turn.answer += text
        self.publish(AnswerText(*_where(turn), text, turn.answer))

    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None:
        turn = self._turn_for(job)
        if not stopped:  # a stopped answer says nothing about the model's speed
            decision = turn.decision if turn is not None else None
            self._outcomes.on_success(role, stats, decision.kind.value if decision else None)
        if turn is None:
            return
        turn.stats = stats
        turn.status = TurnStatus.STOPPED if stopped else TurnStatus.DONE
        self._ended(turn)
        self.publish(_ended_event(turn, stopped=stopped))

    def on_failed(
        self,
        job: ChatJob,
        role: str,
        message: str,
        partial: bool,
        error: Exception | None = None,
    ) -> None:
        turn = self._turn_for(job)
        if turn is None and job.cancel.is_set():
            return  # a job the watchdog (or a requeue) already took the prompt from
        if job.cancel.is_set() and not partial:
            if turn is not None:
                self._finish_cancelled(turn)
            return
        if isinstance(error, TransientEngineError) and not partial:
            self._outcomes.on_backoff(role, error.retry_after_s or TRANSIENT_WAIT_S)
            if turn is not None:
                self._wait_or_move(turn, role, message, error.retry_after_s)
            return
        if isinstance(error, PromptTooLongError):
            # The prompt's fault, not the model's: no breaker; only a model
            # with a larger context could take it.
            if turn is not None:
                self._retry_for_context(turn, role, message)
            return
        cooldown = self._outcomes.on_model_failure(role)
        if turn is None:
            return
        if job.cancel.is_set():  # stopped by the user while failing: keep what came
            turn.status = TurnStatus.STOPPED
            self._ended(turn)
            self.publish(_ended_event(turn, stopped=True, error=f"{role}: {message}"))
            return
        if partial:  # kept: the retry starts over, but what came is not lost
            turn.partials[len(turn.attempts)] = turn.answer
        log.info("turn %d failed on %s (%s); %s cools down %.0f s",
                 turn.turn_id, role, message, role, cooldown)
        self._retry_or_fail(turn, role, message)

    def _retry_or_fail(self, turn: Turn, role: str, message: str) -> None:
        """After a model failed the prompt: the next best model not tried in
        this round; once every one has failed it, wait for the first to recover
        (within the recovery window); then fail, saying why."""
        tried = frozenset(r for r, _ in turn.attempts[turn.round_start:]) | {role}
        if len(turn.attempts) - turn.round_start < self.max_retries:
            self._redispatch(turn, role, message, tried)
            return
        self._wait_for_recovery(turn, role, message)

    def _wait_for_recovery(self, turn: Turn, role: str, message: str) -> None:
        left = self.recovery_window_s - (self._clock() - turn.created_at)
        if self._closing.is_set() or turn.cancelled or left <= RECOVERY_MIN_WAIT_S:
            self._fail(turn, f"{role}: {message}")
            return
        cooldowns = [s.cooldown_left_s for s in self._router.telemetry.snapshot().models.values()
                     if s.state not in UNSERVABLE_STATES]
        if not cooldowns:
            self._fail(turn, f"{role}: {message}")
            return
        delay = min(left, max(RECOVERY_MIN_WAIT_S, min(cooldowns)))
        with self._lock:
            turn.attempts.append((role, message))
            turn.round_start = len(turn.attempts)
            _back_to_routing(turn)
        log.info("turn %d: every model failed it; trying again in %.1f s", turn.turn_id, delay)
        self.publish(TurnRetried(*_where(turn), role,
                                 f"{message}; every model failed, trying again in {delay:.0f} s"))
        self._later(delay, turn, frozenset())

    def _later(self, delay: float, turn: Turn, exclude: frozenset[str]) -> None:
        timer = threading.Timer(delay, self._dispatch.put, args=((turn, exclude),))
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _wait_or_move(self, turn: Turn, endpoint: str, message: str,
                      retry_after_s: float | None) -> None:
        """A busy server: to another replica or role now if one can take it,
        else back to this one once it asked us to wait."""
        tried = frozenset(r for r, _ in turn.attempts)
        if self._closing.is_set():
            self._fail(turn, f"{endpoint}: {message}")
            return
        if turn.transient_waits >= MAX_TRANSIENT_WAITS:
            self._fail(turn, f"{endpoint}: {message} (still busy after "
                             f"{MAX_TRANSIENT_WAITS} tries)")
            return
        turn.transient_waits += 1
        kind = turn.decision.kind if turn.decision is not None else TaskKind.SIMPLE
        try:
            elsewhere = self._router.route(kind, exclude=tried | {endpoint}, commit=False)
        except NoRoleAvailableError:
            elsewhere = None
        forced = turn.forced_role
        if elsewhere is not None and (forced is None or elsewhere.role == forced):
            delay, exclude = 0.0, tried | {endpoint}
        else:
            delay, exclude = retry_after_s or TRANSIENT_WAIT_S, tried
        with self._lock:
            _back_to_routing(turn)
        where = "another model" if delay == 0 else f"the same server in {delay:.0f} s"
        log.info("turn %d: %s busy (%s); to %s", turn.turn_id, endpoint, message, where)
        self.publish(TurnRetried(*_where(turn), endpoint, f"{message}; trying {where}"))
        if delay == 0:
            self._dispatch.put((turn, exclude))
            return
        self._later(delay, turn, exclude)

    def _retry_for_context(self, turn: Turn, endpoint: str, message: str) -> None:
        role = self._fleet.role_of(endpoint)
        n_ctx = self._fleet.roles[role].config.n_ctx
        tried = {self._fleet.role_of(r) for r, _ in turn.attempts} | {role}
        larger = [
            r for r, rt in self._fleet.roles.items()
            if r not in tried and rt.can_chat and rt.config.n_ctx > n_ctx
            and self._fleet.usable(r)
        ]
        if not larger:
            self._fail(turn, f"{role}: {message}")
            return
        target = max(larger, key=lambda r: self._fleet.roles[r].config.n_ctx)
        excluded = frozenset(r for r, _ in turn.attempts) | {endpoint}
        self._redispatch(turn, endpoint, message, excluded, forced_role=target)



def _back_to_routing(turn: Turn) -> None:
    """A new attempt starts over: no answer, no job (call under the runner's lock)."""
    turn.answer, turn.job, turn.status = "", None, TurnStatus.ROUTING
    turn.job_started_at = turn.last_token_at = None


def _no_history() -> list[ChatMessage]:
    return []
