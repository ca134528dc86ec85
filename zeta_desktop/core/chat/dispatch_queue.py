"""The dispatcher's queue: turns waiting to be routed, now or after a pause.

Every part that sends a turn back to routing (a retry, a busy server's
back-off, the watchdog, grounding once its passages are found) puts it here;
only the dispatcher thread takes from it.
"""

from __future__ import annotations

import queue
import threading

from zeta_desktop.core.chat.turn import Turn

# A turn, and the endpoints it must not go to this time.
Item = tuple[Turn, frozenset[str]]


class DispatchQueue:
    def __init__(self) -> None:
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self.closing = threading.Event()

    def put(self, turn: Turn, exclude: frozenset[str] = frozenset()) -> None:
        self._queue.put((turn, exclude))

    def later(self, delay: float, turn: Turn, exclude: frozenset[str]) -> None:
        """Back to routing in `delay` seconds (a back-off, a recovery wait)."""
        timer = threading.Timer(delay, self.put, args=(turn, exclude))
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def get(self) -> Item | None:
        """The next turn to route; None once the queue is closed."""
        return self._queue.get()

    def close(self) -> None:
        """No more waits; the dispatcher ends once it reaches the close."""
        self.closing.set()
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self._queue.put(None)
