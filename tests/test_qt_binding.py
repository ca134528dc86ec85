"""Guards against a Qt binding that corrupts reference counts (PySide6 6.12.0 on 3.11).

That release dropped a reference to None on every void Qt call and to True on
every signal emit; the app crashed ("deallocating None") after a few minutes
of streaming tokens into the plots and the chat. pyproject pins a good one.
"""

from __future__ import annotations

import sys

import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

CALLS = 2000


class _Emitter(QObject):
    sig_ping = Signal(object)


def _lost(obj: object, action) -> int:  # type: ignore[no-untyped-def]
    before = sys.getrefcount(obj)
    for _ in range(CALLS):
        action()
    return before - sys.getrefcount(obj)


def test_void_calls_and_emits_keep_reference_counts(qtbot) -> None:  # type: ignore[no-untyped-def]
    label = QLabel()
    qtbot.addWidget(label)
    emitter = _Emitter()
    received: list[object] = []
    emitter.sig_ping.connect(received.append)
    # A correct binding loses nothing; a broken one loses one per call.
    assert _lost(None, lambda: label.setText("x")) < CALLS // 10
    assert _lost(True, lambda: emitter.sig_ping.emit(1)) < CALLS // 10
    assert _lost(None, lambda: emitter.property("unset")) < CALLS // 10
    assert len(received) == CALLS


def test_plot_updates_keep_reference_counts(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = pg.GraphicsLayoutWidget()
    qtbot.addWidget(view)
    curve = view.addPlot().plot(connect="finite")
    x, y = list(range(50)), [float(i) for i in range(50)]
    assert _lost(None, lambda: curve.setData(x, y)) < CALLS // 10
