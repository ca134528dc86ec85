"""The router's log: its self-adjustments, the failovers, and API clients'
requests (which no chat shows), as they happen."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from zeta_desktop.core.chat.api import ChatApi, TurnStatus
from zeta_desktop.ui.server.client_mark import client_mark

if TYPE_CHECKING:
    from zeta_desktop.core.chat.api import Turn  # what the door's `turns` holds

POLL_MS = 500
PROMPT_SHOWN = 60  # characters of a request's prompt in its line


class RouterLog(QPlainTextEdit):
    def __init__(self, api: ChatApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api = api
        self.setReadOnly(True)
        self.setPlaceholderText(
            "The router's adjustments, failovers and API requests appear here as they happen.")
        self._adjustments_shown = 0
        # Turns up to this id have nothing more to log (ids only grow; the
        # session forgets its oldest turns, so a position in its list would not hold).
        self._settled_id = 0
        self._routed_logged: set[int] = set()  # clients' turns logged as routed, not yet ended
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def add_line(self, line: str) -> None:
        self.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")

    @Slot()
    def poll(self) -> None:
        new, self._adjustments_shown = self.api.adjustments_since(self._adjustments_shown)
        for adjustment in new:
            self.add_line(f"adjusted {adjustment.line()}")
        self._log_requests()

    def _log_requests(self) -> None:
        """Each client's request once routed and once ended; typed prompts
        are in the chat and not logged here."""
        settled = True
        for turn in self.api.turns:
            if turn.turn_id <= self._settled_id:
                continue
            done = self._log_request(turn) if turn.from_client else True
            settled = settled and done
            if settled:
                self._settled_id = turn.turn_id

    def _log_request(self, turn: Turn) -> bool:
        """Log what is new of one client's turn; True once it has ended."""
        mark = client_mark(turn.client)
        if turn.turn_id not in self._routed_logged:
            if turn.decision is None and turn.status.active:
                return False  # not routed yet
            self._routed_logged.add(turn.turn_id)
            if turn.decision is not None:
                prompt = turn.prompt.replace("\n", " ")
                if len(prompt) > PROMPT_SHOWN:
                    prompt = prompt[:PROMPT_SHOWN - 1] + "…"
                self.add_line(f"{mark}: turn {turn.turn_id} → {turn.decision.role} "
                              f"({turn.decision.kind.value}): “{prompt}”")
        if turn.status.active:
            return False
        self._routed_logged.discard(turn.turn_id)
        self.add_line(f"{mark}: turn {turn.turn_id} {_outcome(turn)}")
        return True


def _outcome(turn: Turn) -> str:
    if turn.error:
        return f"failed: {turn.error}"
    if turn.status is TurnStatus.STOPPED:
        return f"stopped on {turn.role}" if turn.role else "stopped"
    stats = turn.stats
    if stats is None:
        return f"answered by {turn.role}"
    return (f"answered by {turn.role}: {stats.n_tokens} tokens in {stats.total_s:.2f} s"
            f" ({stats.tokens_per_s:.0f} tok/s)")
