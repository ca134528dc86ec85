"""The router's log: its self-adjustments and the failovers, as they happen."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from zeta_desktop.core.chat.api import ChatApi

POLL_MS = 500


class RouterLog(QPlainTextEdit):
    def __init__(self, api: ChatApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api = api
        self.setReadOnly(True)
        self.setPlaceholderText(
            "The router's adjustments and failovers appear here as they happen.")
        self._adjustments_shown = 0
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
