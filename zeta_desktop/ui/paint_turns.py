"""Keeps the chat's repaints and the plots' repaints in separate event-loop passes.

Qt paints all that a window has pending in one pass, and a plot's scene asks
for that pass as soon as its curves change. So a token batch (the chat grows
and repaints) and a plot tick that came together were painted together: many
of the longest stalls `make bench-ui` found were such pairs (24 passes over
5 ms in one window's run; 9 with the turns). Each side takes a turn
before it changes what it shows; a side that comes within GAP_S of the other
waits the rest of the gap, by which time the other's pass is painted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import QTimer

GAP_S = 0.008  # the other side's pass is usually painted within a few ms of its change


class PaintTurns:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def wait_ms(self, side: str) -> int:
        """0 if `side` may change what it shows now, else the ms until it may."""
        others = [at for name, at in self._last.items() if name != side]
        if not others:
            return 0
        left = max(others) + GAP_S - self._clock()
        return math.ceil(left * 1000) if left > 0 else 0

    def take(self, side: str) -> None:
        """`side` changes what it shows now."""
        self._last[side] = self._clock()

    def take_or_defer(self, side: str, timer: QTimer) -> bool:
        """True: `side` may change what it shows now (its turn is taken).
        False: `timer` is restarted for when it may."""
        wait_ms = self.wait_ms(side)
        if wait_ms:
            timer.start(wait_ms)
            return False
        self.take(side)
        return True
