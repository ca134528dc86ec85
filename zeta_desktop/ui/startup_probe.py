"""Start-up timing for `benchmarks/startup.py`: ZETA_STARTUP_PROBE=<prompt>.

Prints wall-clock stamps (time.time()) when the window is first shown and when
the first token of an answer to <prompt> arrives, then closes the window.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer

from zeta_desktop.core.chat.api import AnswerText, SessionEvent, TurnEnded
from zeta_desktop.ui.main_window import MainWindow


def _stamp(event: str) -> None:
    print(f"probe {event} {time.time():.6f}", flush=True)


def attach(window: MainWindow, prompt: str) -> None:
    seen_token = False

    def on_event(event: SessionEvent) -> None:
        nonlocal seen_token
        if isinstance(event, AnswerText) and not seen_token:
            seen_token = True
            _stamp("first_token")
            QTimer.singleShot(0, window.close)
        elif isinstance(event, TurnEnded) and event.failed:
            _stamp("failed")
            window.close()

    window.bridge.sig_event.connect(on_event)

    def after_show() -> None:
        _stamp("window_shown")
        window.chat.sig_send.emit(prompt)

    QTimer.singleShot(0, after_show)
