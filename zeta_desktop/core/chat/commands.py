"""The chat's commands, answered at once rather than streamed.

`/embed TEXT` and `/similar A | B` are one job on the embedder;
`/similar TEXT` searches the history by meaning. That search waits for the
query's embedding behind whatever the embedder is doing, so it runs on a
thread of its own, never on the dispatcher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from zeta_desktop.core.chat.ledger import TurnLedger
from zeta_desktop.core.chat.turn import Turn
from zeta_desktop.core.engines.base import EngineError
from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.fleet.worker import EmbedJob
from zeta_desktop.core.routing import embed_commands
from zeta_desktop.core.routing.rules import explicit_command

SearchHistory = Callable[[str], list[Any]]


class Commands:
    def __init__(self, ledger: TurnLedger, fleet: Fleet) -> None:
        self._ledger = ledger
        self._fleet = fleet
        # `/similar TEXT`: past messages by meaning (the document library's)
        self.search_history: SearchHistory | None = None

    def run(self, turn: Turn, role: str) -> None:
        """Answer a command routed to `role` (an embedder); called on the dispatcher."""
        try:
            command = embed_commands.parse(turn.prompt)
        except embed_commands.CommandUsageError as exc:
            self._ledger.fail(turn, str(exc))
            return
        if command.searches_history:
            threading.Thread(target=self._search_history, args=(turn, role, command.texts[0]),
                             name="zeta-similar", daemon=True).start()
            return
        job = EmbedJob(list(command.texts))
        job.result.add_done_callback(lambda done: self._embedded(turn, role, command, done))
        self._fleet.worker(role).submit(job)

    def _search_history(self, turn: Turn, role: str, text: str) -> None:
        if self.search_history is None:
            self._ledger.fail(turn, "searching the history needs the history to be saved")
            return
        try:
            hits = self.search_history(text)
        except Exception as exc:
            self._ledger.fail(turn, f"{role}: the history could not be searched ({exc})")
            return
        # The commands typed before, this one included (its vector may already
        # be stored), are not what the user is looking for.
        hits = [hit for hit in hits if explicit_command(hit.snippet) is None]
        self._ledger.answer_at_once(turn, role, embed_commands.history_answer(text, hits))

    def _embedded(self, turn: Turn, role: str, command: embed_commands.EmbedCommand,
                  result: Future[list[list[float]]]) -> None:
        try:
            answer = embed_commands.answer(command, result.result())
        except EngineError as exc:
            self._ledger.fail(turn, f"{role}: {exc}")
            return
        self._ledger.answer_at_once(turn, role, answer)
