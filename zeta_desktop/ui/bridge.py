"""The one place core callbacks cross onto the GUI thread.

Core objects call these methods from worker threads; each re-emits a Qt
signal. The bridge lives on the GUI thread, so every connection to a widget
is queued and widgets only ever run on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from zeta_desktop.core.fleet.worker import ChatStats, WorkerState
from zeta_desktop.core.routing.router import Decision


class SessionBridge(QObject):
    sig_role_state = Signal(str, str, str)
    """A role's worker changed state: role, state value, detail."""
    sig_turn_routed = Signal(int, object)
    """The router chose a model for a turn: turn id, Decision."""
    sig_turn_retried = Signal(int, str, str)
    """A turn failed on a model and goes to another: turn id, failed role, message."""
    sig_turn_started = Signal(int, str, str)
    """A turn began streaming: turn id, role, reason the role was chosen."""
    sig_turn_token = Signal(int, str)
    """A piece of an answer arrived: turn id, text."""
    sig_turn_finished = Signal(int, bool, object)
    """An answer ended: turn id, whether it was stopped, ChatStats."""
    sig_turn_failed = Signal(int, str)
    """A turn failed: turn id, message for the user."""

    def on_role_state(self, role: str, state: WorkerState, detail: str) -> None:
        self.sig_role_state.emit(role, state.value, detail)

    def on_turn_routed(self, turn_id: int, decision: Decision) -> None:
        self.sig_turn_routed.emit(turn_id, decision)

    def on_turn_retried(self, turn_id: int, failed_role: str, message: str) -> None:
        self.sig_turn_retried.emit(turn_id, failed_role, message)

    def on_turn_started(self, turn_id: int, role: str, reason: str) -> None:
        self.sig_turn_started.emit(turn_id, role, reason)

    def on_turn_token(self, turn_id: int, text: str) -> None:
        self.sig_turn_token.emit(turn_id, text)

    def on_turn_finished(self, turn_id: int, stopped: bool, stats: ChatStats) -> None:
        self.sig_turn_finished.emit(turn_id, stopped, stats)

    def on_turn_failed(self, turn_id: int, message: str) -> None:
        self.sig_turn_failed.emit(turn_id, message)
