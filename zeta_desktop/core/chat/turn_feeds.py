"""One turn's events for the client that asked for it (an API request).

A client that sends one request needs that turn's events and no others: it
registers its feed before the turn is submitted, so it hears the turn's
first event, and the feed is dropped after the turn's end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from zeta_desktop.core.chat.events import SessionEvent, TurnEnded, TurnEvent

TurnFeed = Callable[[TurnEvent], None]


class TurnFeeds:
    """A session subscriber that hands each turn event to its turn's feed."""

    def __init__(self) -> None:
        self._feeds: dict[int, TurnFeed] = {}
        self._lock = threading.Lock()

    def add(self, turn_id: int, feed: TurnFeed) -> None:
        with self._lock:
            self._feeds[turn_id] = feed

    def __len__(self) -> int:
        with self._lock:
            return len(self._feeds)

    def __call__(self, event: SessionEvent) -> None:
        if not isinstance(event, TurnEvent):
            return
        with self._lock:
            feed = (self._feeds.pop(event.turn_id, None) if isinstance(event, TurnEnded)
                    else self._feeds.get(event.turn_id))
        if feed is not None:
            feed(event)
