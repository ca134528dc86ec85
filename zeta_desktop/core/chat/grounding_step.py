"""A question asked against documents: its passages, found off the dispatcher.

Retrieval embeds the question and searches the collections, which can take
long on a large one. It runs on a thread of its own, so the dispatcher goes
on routing every other prompt meanwhile; once the passages are found the
turn goes back on the dispatcher's queue and is routed with them. The
passages are found once, before the first attempt; each attempt then gives
its model those that fit its context.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from zeta_desktop.core.chat.events import DocumentsSearched
from zeta_desktop.core.chat.ledger import TurnLedger, where
from zeta_desktop.core.chat.turn import Turn, TurnStatus
from zeta_desktop.core.documents.grounding import (
    fit_passages,
    grounded_prompt,
    prompt_tokens,
    sources_for,
)
from zeta_desktop.core.documents.index_db import StoredChunk
from zeta_desktop.core.engines.base import ChatMessage
from zeta_desktop.core.routing.classifier import explicit_command

log = logging.getLogger(__name__)

Retriever = Callable[[str, Sequence[str]], list[StoredChunk]]
STOPPED_SEARCHING = "stopped while the documents were searched"


class GroundingStep:
    def __init__(self, ledger: TurnLedger,
                 then: Callable[[Turn, frozenset[str]], None]) -> None:
        self._ledger = ledger
        self._then = then  # the passages are found: route the turn (the dispatcher's queue)
        self.retrieve: Retriever | None = None  # documents: the passages for a question
        self._searching: dict[int, Turn] = {}  # under the ledger's lock

    def needs_search(self, turn: Turn) -> bool:
        """Asked against documents and not searched yet. `/embed` and
        `/similar` are commands, not questions about the documents."""
        return bool(turn.collections) and turn.passages is None \
            and not explicit_command(turn.prompt)

    def search(self, turn: Turn, exclude: frozenset[str]) -> None:
        """Find the turn's passages on a thread of its own, then route it
        (not to the endpoints in `exclude`)."""
        retrieve = self.retrieve
        if retrieve is None:
            turn.passages = []
            turn.grounding_note = "documents are not available in this session"
            self._then(turn, exclude)
            return
        with self._ledger.lock:
            self._searching[turn.turn_id] = turn
        threading.Thread(target=self._search, args=(turn, exclude, retrieve),
                         name=f"zeta-retrieve-{turn.turn_id}", daemon=True).start()

    def stop(self, turn: Turn) -> bool:
        """End a turn stopped while its documents are searched; False if it is not."""
        with self._ledger.lock:
            if self._searching.pop(turn.turn_id, None) is None:
                return False
        self._ledger.end(turn, TurnStatus.STOPPED, STOPPED_SEARCHING)
        return True

    def _search(self, turn: Turn, exclude: frozenset[str], retrieve: Retriever) -> None:
        passages: list[StoredChunk] = []
        note = ""
        try:
            passages = retrieve(turn.prompt, turn.collections)
        except Exception as exc:  # the answer still comes, without passages
            log.warning("turn %d: retrieval failed (%s)", turn.turn_id, exc)
            note = f"the documents could not be searched ({exc})"
        else:
            note = "" if passages else "no passage in the documents matched"
        with self._ledger.lock:
            if self._searching.pop(turn.turn_id, None) is None:
                return  # stopped meanwhile: it has ended
            turn.passages, turn.grounding_note = passages, note
        self._ledger.publish(DocumentsSearched(*where(turn), len(passages), note))
        try:
            self._then(turn, exclude)
        except Exception as exc:  # never lose a prompt silently
            log.exception("turn %d: routing after retrieval failed", turn.turn_id)
            self._ledger.fail(turn, f"could not dispatch: {type(exc).__name__}: {exc}")

    # -- on the dispatcher, for each attempt ----------------------------------------

    @staticmethod
    def context_need(turn: Turn) -> int:
        """The context the passages found need, in tokens (the router weighs it)."""
        if not turn.passages:
            return 0
        sources = sources_for(turn.passages)
        return prompt_tokens(sources, {c.id: c.tokens for c in turn.passages}) if sources else 0

    @staticmethod
    def ground(turn: Turn, messages: list[ChatMessage], n_ctx: int) -> list[ChatMessage]:
        """The question with the passages that fit this model: at most half of
        its context, the rest for the conversation and the answer."""
        if not turn.passages:
            return messages
        budget = max(256, (n_ctx or 4096) // 2)
        chosen = fit_passages(turn.passages, budget)
        turn.sources = sources_for(chosen)
        left = len(turn.passages) - len(chosen)
        turn.grounding_note = (
            f"{len(chosen)} passage(s) given to the model"
            + (f"; {left} more did not fit its context" if left else "")
        )
        if not turn.sources or not messages or messages[-1]["role"] != "user":
            return messages
        last: ChatMessage = {"role": "user",
                             "content": grounded_prompt(messages[-1]["content"], turn.sources)}
        return [*messages[:-1], last]
