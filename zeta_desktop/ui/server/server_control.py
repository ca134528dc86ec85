"""The local server inside the window: one `ZetaServer` at a time, started
and stopped off the GUI thread.

Why not on the GUI thread: `ZetaServer.start()` itself waits only until
uvicorn accepts (tens of ms), but the first start also imports FastAPI,
uvicorn and the openai package's types (about 0.6 s here) and reads the OS
keyring (over D-Bus, which may wait on an unlock prompt); a stop waits up to
uvicorn's graceful shutdown (5 s) for a client still streaming. So both run
through the window's `TaskManager` and report back on the GUI thread. Only
the window's close stops the server in place: it must be down before the
models stop.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from zeta_desktop.core.chat.api import ChatApi
from zeta_desktop.core.settings import ServerConfig
from zeta_desktop.server.metrics import ServerCounters
from zeta_desktop.ui.tasks import TaskManager

if TYPE_CHECKING:
    from zeta_desktop.server.runner import Listening, ZetaServer

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 30.0  # a start still under way when the window closes


class StartFailedError(Exception):
    """Why the server did not start, as a sentence for the user."""


class ServerControl(QObject):
    sig_listening = Signal(object)
    """The server accepts requests: its `Listening` (URL, port, whether a key is needed)."""
    sig_failed = Signal(str)
    """The server could not start: why, for the user."""
    sig_stopped = Signal()
    """The server has stopped."""

    def __init__(self, api: ChatApi, tasks: TaskManager, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.api = api
        self.tasks = tasks
        # One set of counters for the window's lifetime, subscribed once:
        # switching the server off and on adds no subscriber.
        self.counters = ServerCounters()
        api.subscribe(self.counters)
        self.listening: Listening | None = None
        self._server: ZetaServer | None = None
        self._starting: Future[tuple[ZetaServer, Listening]] | None = None
        self._stopping: Future[None] | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def busy(self) -> bool:
        """Starting or stopping: the switch waits."""
        return self._starting is not None or self._stopping is not None

    def start(self, settings: ServerConfig) -> bool:
        """Serve `settings` (read again by each request: `keep_history` may
        change); False when it is running, busy or the window is closing."""
        if self.busy or self.running or self._closed:
            return False
        self._starting = self.tasks.run_in_background(
            lambda: self._start(settings), self._on_started, self._on_start_failed)
        return True

    def _start(self, settings: ServerConfig) -> tuple[ZetaServer, Listening]:
        """On a task thread."""
        try:
            from zeta_desktop.server.runner import ServerStartError, ZetaServer
        except ImportError as exc:  # a build without the server's packages
            raise StartFailedError(f"the server's packages are missing: {exc}") from exc
        server: ZetaServer | None = None
        try:
            server = ZetaServer(self.api, settings, counters=self.counters)
            return server, server.start()
        except ServerStartError as exc:
            if server is not None:
                server.stop()
            raise StartFailedError(str(exc)) from exc

    def _on_started(self, started: tuple[ZetaServer, Listening]) -> None:
        self._starting = None
        if self._closed:  # close_now stopped it already
            return
        self._server, self.listening = started
        log.info("serving on %s", self.listening.base_url)
        self.sig_listening.emit(self.listening)

    def _on_start_failed(self, exc: BaseException) -> None:
        self._starting = None
        if isinstance(exc, StartFailedError):
            text = str(exc)
        else:
            log.error("the server did not start", exc_info=exc)
            text = f"the server did not start: {exc}"
        self.sig_failed.emit(text)

    def stop(self) -> None:
        server = self._server
        if server is None or self.busy:
            return
        self._server = self.listening = None
        self._stopping = self.tasks.run_in_background(server.stop, self._on_stopped,
                                                      self._on_stopped)

    def _on_stopped(self, _result: object = None) -> None:
        self._stopping = None
        self.sig_stopped.emit()

    def close_now(self) -> None:
        """The window closes: the server is down when this returns (blocks)."""
        self._closed = True
        if self._starting is not None:
            try:
                self._server, self.listening = self._starting.result(CLOSE_WAIT_S)
            except Exception as exc:  # it failed to start: nothing to stop
                log.info("the server was starting as the window closed: %s", exc)
        if self._stopping is not None:
            try:
                self._stopping.result(CLOSE_WAIT_S)
            except Exception as exc:
                log.info("the server was stopping as the window closed: %s", exc)
        if self._server is not None:
            self._server.stop()
        self._server = self.listening = None
