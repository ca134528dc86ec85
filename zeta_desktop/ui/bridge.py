"""The one place the session's events cross onto the GUI thread.

The session publishes each event (core/chat/events.py) on a worker or
dispatcher thread; the bridge re-emits it as one Qt signal. The bridge lives
on the GUI thread, so every connection to a widget is queued and widgets only
ever run on the GUI thread. A new kind of event needs nothing here.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal

from zeta_desktop.core.chat.api import SessionEvent


class EventBridge(QObject):
    sig_event = Signal(object)
    """Any SessionEvent, in the order the session published them."""

    def __call__(self, event: SessionEvent) -> None:
        self.sig_event.emit(event)

    def deliver_to(self, handler: Callable[[SessionEvent], None]) -> None:
        """Hand every event to `handler` on the GUI thread, queued even when
        the GUI thread itself published it (a stop): an event is handled after
        the action that caused it, never inside it."""
        self.sig_event.connect(handler, Qt.ConnectionType.QueuedConnection)
