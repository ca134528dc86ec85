"""Garbage collection on the GUI thread only, from a timer.

Automatic collection runs on whichever thread allocated last: a model, store
or task thread would then free Qt objects caught in reference cycles (a closed
dialog and its connected lambdas) on that thread, and Qt crashes (seen: a
segfault mid-collection on a model-loading thread). So automatic collection
is off and this timer collects each generation when its threshold is passed,
as pyqtgraph's GarbageCollector does (without importing pyqtgraph before the
window shows).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

GC_EVERY_MS = 250


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject | None = None, every_ms: int = GC_EVERY_MS) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(every_ms)

    @Slot()
    def check(self) -> None:
        young, middle, old = gc.get_count()
        first, second, third = self._thresholds
        if young > first:
            gc.collect(0)
            if middle > second:
                gc.collect(1)
                if old > third:
                    gc.collect(2)
