"""The dispatcher: one thread routes each turn and submits it to a worker.

It waits for the prompt to be on disk, classifies it (a follow-up with the
turn before it), asks the router (or takes the role the user chose) and
submits the job. Nothing here waits on a model: a question against
documents is searched on a thread of its own first, and a command is
answered by the commands' own jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from zeta_desktop.core.chat.commands import Commands
from zeta_desktop.core.chat.dispatch_queue import DispatchQueue
from zeta_desktop.core.chat.events import TurnRouted
from zeta_desktop.core.chat.grounding_step import GroundingStep
from zeta_desktop.core.chat.learning import OverrideLearner
from zeta_desktop.core.chat.ledger import TurnLedger, where
from zeta_desktop.core.chat.retries import Retries
from zeta_desktop.core.chat.turn import Turn, TurnStatus
from zeta_desktop.core.conversation.model import DEFAULT_SYSTEM_PROMPT
from zeta_desktop.core.engines.base import ChatMessage, NoRoleAvailableError
from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.fleet.prefix_cache import PromptKeys, PromptReading
from zeta_desktop.core.fleet.worker import ChatJob, ChatListener, estimate_prompt_tokens
from zeta_desktop.core.routing.classifier import Classification, TaskKind, explicit_command
from zeta_desktop.core.routing.router import Decision, ZetaDynamicRouter

log = logging.getLogger(__name__)

PROMPT_SAVE_WAIT_S = 5.0  # the dispatcher waits this long for the prompt to be on disk


class Classify(Protocol):
    """A prompt's kind; `context`: the user's turn before it, as it was
    classified or as text (follow-ups are read with it)."""

    def __call__(self, prompt: str,
                 context: Classification | str | None = None) -> Classification: ...


def earlier_user_prompt(messages: Sequence[ChatMessage]) -> str | None:
    """The user's turn before the last one: what a follow-up refers to."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-2] if len(users) >= 2 else None


def with_role_prompt(messages: list[ChatMessage], role_prompt: str) -> list[ChatMessage]:
    """The role's own system prompt, where the conversation kept the app's default."""
    if (role_prompt and messages and messages[0]["role"] == "system"
            and messages[0]["content"] == DEFAULT_SYSTEM_PROMPT):
        return [{"role": "system", "content": role_prompt}, *messages[1:]]
    return messages


class Dispatcher:
    def __init__(self, queue: DispatchQueue, ledger: TurnLedger, fleet: Fleet,
                 router: ZetaDynamicRouter, classify: Classify, listener: ChatListener, *,
                 grounding: GroundingStep, commands: Commands, learner: OverrideLearner,
                 retries: Retries) -> None:
        self._queue = queue
        self._ledger = ledger
        self._fleet = fleet
        self._router = router
        self._classify = classify
        self._listener = listener  # hears each job's events (the runner)
        self._grounding = grounding
        self._commands = commands
        self._learner = learner
        self._retries = retries  # a turn no model can take now may wait for one
        self._thread = threading.Thread(target=self._loop, name="zeta-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def route(self, prompt: str, exclude: Collection[str] = (),
              context_tokens: int = 0, prompt_tokens: int = 0,
              earlier_prompt: Classification | str | None = None,
              readings: Mapping[str, PromptReading] | None = None) -> Decision:
        classification = self._classify(prompt, context=earlier_prompt)
        return self._router.route(classification.kind, exclude=exclude,
                                  classification=classification,
                                  context_tokens=context_tokens,
                                  prompt_tokens=prompt_tokens, readings=readings)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            turn, exclude = item
            try:
                self._dispatch(turn, exclude)
            except Exception as exc:  # never lose a prompt silently
                log.exception("dispatching turn %d failed", turn.turn_id)
                self._ledger.fail(turn, f"could not dispatch: {type(exc).__name__}: {exc}")

    def _dispatch(self, turn: Turn, exclude: frozenset[str]) -> None:
        self._wait_saved(turn)
        if turn.cancelled:
            self._ledger.stopped_early(turn)
            return
        if turn.from_client and explicit_command(turn.prompt):
            # A request's text is untrusted: it never runs a command (a search
            # of the user's history, say).
            self._ledger.fail(turn, "commands such as /embed and /similar are the window's; "
                                    "ask for embeddings with POST /v1/embeddings")
            return
        if self._grounding.needs_search(turn):
            self._grounding.search(turn, exclude)  # back on the queue once searched
            return
        history = turn.history()
        try:
            decision = self._decide(turn, exclude, history)
        except NoRoleAvailableError as exc:
            if turn.attempts and exclude:  # it failed before: every model it may try has
                self._retries.wait_for_recovery(turn, turn.attempts[-1][0], str(exc))
            else:
                self._ledger.fail(turn, str(exc))
            return
        with self._ledger.lock:
            turn.role, turn.reason, turn.decision = decision.target, decision.reason, decision
            turn.classification = decision.classification
            turn.status = TurnStatus.QUEUED
        self._ledger.publish(TurnRouted(*where(turn), decision))
        if decision.kind is TaskKind.EMBEDDING:
            self._commands.run(turn, decision.target)
        else:
            self._submit(turn, decision, history)

    def _wait_saved(self, turn: Turn) -> None:
        if turn.saved is None or turn.attempts:  # a retry's prompt was saved before
            return
        try:
            turn.saved.result(PROMPT_SAVE_WAIT_S)
        except Exception as exc:  # the store says why; the answer still comes
            log.warning("turn %d: prompt not saved (%s); answering anyway", turn.turn_id, exc)

    def _decide(self, turn: Turn, exclude: frozenset[str],
                history: list[ChatMessage]) -> Decision:
        """The role the user chose, on its best replica; else the router's choice."""
        earlier = self._turn_before(turn, earlier_user_prompt(history))
        forced = turn.forced_role
        endpoint = self._router.best_replica(forced, exclude) if forced is not None else None
        if forced is not None and endpoint is not None:
            classification = self._classify(turn.prompt, context=earlier)
            return self._learner.decide(turn, forced, endpoint, classification, exclude)
        return self.route(turn.prompt, exclude=exclude,
                          context_tokens=self._grounding.context_need(turn),
                          prompt_tokens=estimate_prompt_tokens(history), earlier_prompt=earlier,
                          readings=None if turn.options.raw else self._readings(history))

    def _readings(self, history: list[ChatMessage]) -> dict[str, PromptReading]:
        """Per endpoint: how much of this prompt (as that role would send it)
        its cache holds, and how fast it reads the rest."""
        readings: dict[str, PromptReading] = {}
        for runtime in list(self._fleet.roles.values()):
            prompt = PromptKeys.of(with_role_prompt(history, runtime.config.system_prompt))
            for replica in runtime.replicas:
                readings[replica.key] = replica.worker.reading(prompt)
        return readings

    def _turn_before(self, turn: Turn,
                     earlier_text: str | None) -> Classification | str | None:
        """What a follow-up is read with: the conversation's previous turn as
        it was classified, when that turn still streams (the history leaves
        it out) or is the earlier user turn the history shows (so a chain of
        follow-ups carries the first one's kind); else the earlier text, as
        after an edit or a restart. A client's request is read with its own
        messages only: another client's request is not the turn before it."""
        if turn.from_client:
            return earlier_text
        before = [t for t in self._ledger.all()
                  if t.conversation_id == turn.conversation_id and t.turn_id < turn.turn_id
                  and t.classification is not None and t.prompt != turn.prompt]
        if before:
            previous = max(before, key=lambda t: t.turn_id)
            if previous.status.active or previous.prompt == earlier_text:
                return previous.classification
        return earlier_text

    def _submit(self, turn: Turn, decision: Decision, history: list[ChatMessage]) -> None:
        role_config = self._fleet.roles[decision.role].config
        options = turn.options
        messages = (history if options.raw else with_role_prompt(
            self._grounding.ground(turn, history, role_config.n_ctx), role_config.system_prompt))
        sampling = dict(role_config.sampling)
        if options.top_p is not None:
            sampling["top_p"] = options.top_p
        job = ChatJob(
            messages=messages,
            listener=self._listener,
            max_tokens=options.max_tokens or role_config.max_tokens,
            temperature=(role_config.temperature if options.temperature is None
                         else options.temperature),
            tag=turn.turn_id,
            sampling=sampling,
            kind=decision.kind.value,
            stop=options.stop,
            seed=options.seed,
            raw=options.raw,
        )
        with self._ledger.lock:
            turn.job = job
            if turn.cancelled:
                job.cancel.set()
        self._fleet.worker(decision.target).submit(job)
