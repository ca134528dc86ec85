"""Run the server: on a thread of its own (the window, tests) or in the
foreground until Ctrl+C or SIGTERM (`zeta-desktop serve`).

The socket is bound here, before uvicorn starts, so a port in use or an
address not on this machine is a clear error for the caller rather than
uvicorn's exit from inside its thread.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from zeta_desktop.core.chat.api import ChatApi
from zeta_desktop.core.settings import ServerConfig
from zeta_desktop.server.app import create_app
from zeta_desktop.server.guard import Guard, allowed_hosts
from zeta_desktop.server.keys import server_key
from zeta_desktop.server.metrics import ServerCounters

log = logging.getLogger(__name__)


class _StopSignalError(Exception):
    pass


def _raise_stopped(_sig: int, _frame: object) -> None:
    raise _StopSignalError


class ServerStartError(Exception):
    """Why the server could not start, for the user."""


@dataclass(frozen=True)
class Listening:
    host: str
    port: int
    needs_key: bool

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


class ZetaServer:
    """One server over one session's door."""

    def __init__(self, api: ChatApi, settings: ServerConfig, key: str | None = None,
                 counters: ServerCounters | None = None) -> None:
        self.api = api
        self.settings = settings
        self.key = key if key is not None else server_key()
        if not settings.loopback and not self.key:
            raise ServerStartError(
                f"listening on {settings.host} lets other machines in: set an API key first "
                "(zeta-desktop serve --new-key, or ZETA_SERVER_KEY)")
        if counters is None:  # a caller that keeps its own (the window) subscribed it once
            counters = ServerCounters()
            api.subscribe(counters)
        self.counters = counters
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.listening: Listening | None = None

    def _bind(self) -> socket.socket:
        host, port = self.settings.host, self.settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            why = "is in use" if exc.errno in (98, 48, 10048) else f"cannot be used ({exc})"
            raise ServerStartError(f"{host}:{port} {why}; choose another port") from exc
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def _uvicorn(self, sock: socket.socket) -> uvicorn.Server:
        port = sock.getsockname()[1]
        hosts = allowed_hosts(self.settings.host, port)
        app = Guard(create_app(self.api, self.settings, self.counters), hosts=hosts,
                    key=self.key, max_body_bytes=self.settings.max_body_bytes,
                    counters=self.counters, origins=frozenset(self.settings.cors_origins))
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none",
                                timeout_graceful_shutdown=5, access_log=False)
        self.listening = Listening(self.settings.host, port, bool(self.key))
        return uvicorn.Server(config)

    def start(self, timeout: float = 30.0) -> Listening:
        """Serve on a thread; returns once it accepts connections."""
        sock = self._bind()
        self._server = server = self._uvicorn(sock)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name="zeta-server", daemon=True)
        self._thread.start()
        started = threading.Event()

        def watch() -> None:
            while not server.started and self._thread is not None and self._thread.is_alive():
                started.wait(0.01)
            started.set()

        watch()
        if not server.started:
            raise ServerStartError("the server stopped while starting; see the log")
        assert self.listening is not None
        return self.listening

    def serve_forever(self, on_listening: Callable[[Listening], None] | None = None) -> None:
        """In the foreground, until Ctrl+C or SIGTERM; returns once shut down.

        uvicorn handles the signal (a graceful shutdown), then raises it again
        for the handlers it found: ours end the wait instead of the process,
        so the caller still stops the models and closes the history."""
        sock = self._bind()
        self._server = self._uvicorn(sock)
        if on_listening is not None and self.listening is not None:
            on_listening(self.listening)
        previous = {sig: signal.signal(sig, _raise_stopped)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._server.run(sockets=[sock])
        except _StopSignalError:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None
