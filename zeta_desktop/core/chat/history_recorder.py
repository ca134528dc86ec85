"""Turn events into the conversation model and onto disk, so no word is lost.

The answer message follows its turn: pending once routed, streaming from the
first token, then done, stopped or failed with what came. The streaming text
goes to the store with its first token, then at most every `FLUSH_S`, and
once more when the answer ends, so a crash or kill loses at most the tokens
of the last `FLUSH_S`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zeta_desktop.core.chat.events import (
    AnswerText,
    SessionEvent,
    TurnEnded,
    TurnRetried,
    TurnRouted,
    TurnStarted,
)
from zeta_desktop.core.chat.turn_runner import Turn, TurnRunner
from zeta_desktop.core.conversation.model import Conversation, Message, MessageStatus
from zeta_desktop.core.routing.router import explain
from zeta_desktop.core.store.history import HistoryStore

FLUSH_S = 0.25


class HistoryRecorder:
    """A session subscriber; runs on worker and dispatcher threads."""

    def __init__(
        self,
        runner: TurnRunner,
        conversation_of: Callable[[str], Conversation | None],
        store: HistoryStore | None,
        model_file: Callable[[str], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runner = runner
        self._conversation_of = conversation_of
        self._store = store
        self._model_file = model_file
        self._clock = clock
        self._flushed_at: dict[int, float] = {}
        self._conversations: dict[int, Conversation] = {}

    def _message(self, turn_id: int) -> tuple[Turn, Message | None]:
        turn = self._runner.turn(turn_id)
        # Held from the turn's first event to its last: the session may stop
        # keeping a conversation the user switched away from once its turn is
        # done, which can be just before the final event arrives here.
        conversation = self._conversations.get(turn_id) or self._conversation_of(
            turn.conversation_id)
        if conversation is not None:
            self._conversations[turn_id] = conversation
        message = conversation.get(turn.answer_id) if conversation is not None else None
        return turn, message

    def _save(self, message: Message, turn_id: int) -> None:
        if self._store is not None:
            conversation = self._conversations.get(turn_id) or self._conversation_of(
                message.conversation_id)
            self._store.save_message(message, conversation.info if conversation else None)

    def _describe(self, turn: Turn, message: Message) -> None:
        meta = message.meta
        decision = turn.decision
        if decision is not None:
            meta.role = decision.role
            meta.kind = decision.kind.value
            meta.reason = decision.reason
            meta.runner_up = decision.runner_up or ""
            meta.policy = decision.policy
            meta.decision_text = explain(decision, turn.attempts)
        meta.model_file = self._model_file(turn.role) if turn.role else ""
        meta.sources = [source.to_dict() for source in turn.sources]
        meta.grounding = turn.grounding_note
        meta.retries = [
            f"{role}: {why}" + (f"\npartial answer kept:\n{turn.partials[i]}"
                                if turn.partials.get(i) else "")
            for i, (role, why) in enumerate(turn.attempts)
        ]

    def __call__(self, event: SessionEvent) -> None:
        match event:
            case TurnRouted() | TurnRetried():
                self._pending(event.turn_id, retried=isinstance(event, TurnRetried))
            case TurnStarted():
                self._started(event.turn_id)
            case AnswerText():
                self._text(event.turn_id, event.so_far)
            case TurnEnded():
                self._end(event)

    def _pending(self, turn_id: int, retried: bool) -> None:
        turn, message = self._message(turn_id)
        if message is None:
            return
        if retried:  # the next attempt starts the answer over
            message.content = ""
        message.status = MessageStatus.PENDING
        self._describe(turn, message)
        self._save(message, turn_id)

    def _started(self, turn_id: int) -> None:
        _turn, message = self._message(turn_id)
        if message is not None:
            message.status = MessageStatus.STREAMING
            self._flushed_at.pop(turn_id, None)  # the first token is written at once

    def _text(self, turn_id: int, so_far: str) -> None:
        _turn, message = self._message(turn_id)
        if message is None:
            return
        message.content = so_far
        now = self._clock()
        if self._store is not None and now - self._flushed_at.get(turn_id, 0.0) >= FLUSH_S:
            self._flushed_at[turn_id] = now
            self._store.update_answer(message.id, message.content, MessageStatus.STREAMING)

    def _end(self, event: TurnEnded) -> None:
        turn, message = self._message(event.turn_id)
        self._flushed_at.pop(event.turn_id, None)
        if message is None:
            return
        message.content = event.answer  # a partial answer is kept
        if event.stopped:
            message.status = MessageStatus.STOPPED
        else:
            message.status = MessageStatus.FAILED if event.failed else MessageStatus.DONE
        self._describe(turn, message)
        stats = event.stats
        if event.failed:
            message.meta.error = event.error
        elif stats is not None:
            meta = message.meta
            meta.answer_tokens = stats.n_tokens
            meta.prompt_tokens = stats.prompt_tokens or None
            if stats.n_tokens:
                meta.ttft_s = round(stats.ttft_s, 4)
                meta.tokens_per_s = round(stats.tokens_per_s, 2)
            meta.thinking_tokens = stats.thinking_tokens or None
            meta.thinking_s = round(stats.thinking_s, 2) if stats.thinking_s is not None else None
        self._save(message, event.turn_id)
        self._conversations.pop(event.turn_id, None)
