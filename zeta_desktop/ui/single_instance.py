"""One app per data directory: a second start brings the first window forward.

Two apps writing one history would each think they own it. The data
directory's `instance.lock` is held for as long as the app runs, through Qt's
`QLockFile` (it works alike on Linux, Windows and macOS): a lock whose process
died (a crash) is found stale by its process id and taken over. The first app
also listens on a local socket named after the directory (`QLocalServer`: a
Unix socket, or a named pipe on Windows); a second start that finds the lock
taken asks it there to raise its window, says so, and exits. A second start
with files (`zeta-desktop FILE`, "Open with" on the desktop) hands their
absolute paths over the same socket, and the first window opens them.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

LOCK_NAME = "instance.lock"
CONNECT_TIMEOUT_MS = 1000


def _socket_name(data_dir: Path) -> str:
    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return f"zeta-desktop-{os.getuid() if hasattr(os, 'getuid') else 0}-{digest}"


class SingleInstance(QObject):
    sig_raise = Signal()
    """Another start of the app asked this one to show its window."""
    sig_open = Signal(list)
    """Another start handed these files (absolute paths, as str) to open here."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self._name = _socket_name(data_dir)
        self._server: QLocalServer | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = QLockFile(str(data_dir / LOCK_NAME))
        lock.setStaleLockTime(0)  # never stale by age: only when its process is gone
        if not lock.tryLock(0):
            self.primary = False
            self._lock: QLockFile | None = None
            return
        self._lock = lock
        self.primary = True
        QLocalServer.removeServer(self._name)  # a socket left by a crash
        self._server = QLocalServer(self)
        self._server.newConnection.connect(self._on_connection)
        self._server.listen(self._name)

    def ask_primary_to_raise(self, files: Sequence[Path] = ()) -> bool:
        """From a second start: True if the first app heard it. `files` are
        made absolute here: the first app runs in another directory."""
        socket = QLocalSocket()
        socket.connectToServer(self._name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        message = {"raise": True, "open": [str(Path(f).absolute()) for f in files]}
        socket.write(json.dumps(message).encode() + b"\n")
        written = socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
        socket.disconnectFromServer()
        if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            socket.waitForDisconnected(CONNECT_TIMEOUT_MS)
        return written

    def _on_connection(self) -> None:
        assert self._server is not None
        # Weakly: a connection (a child of this object) must not keep this
        # object alive, or its deleteLater would end up deleting its own
        # parent, and so itself again (a crash).
        owner = weakref.ref(self)
        while self._server.hasPendingConnections():
            connection = self._server.nextPendingConnection()
            received = bytearray()

            def read(c: QLocalSocket = connection, buffer: bytearray = received,
                     me: weakref.ref[SingleInstance] = owner) -> None:
                buffer.extend(c.readAll().data())
                while b"\n" in buffer:
                    line, _newline, rest = bytes(buffer).partition(b"\n")
                    buffer[:] = rest
                    if (alive := me()) is not None:
                        alive._on_message(line)

            connection.readyRead.connect(read)
            connection.disconnected.connect(connection.deleteLater)
            if connection.bytesAvailable():
                read()

    def _on_message(self, line: bytes) -> None:
        """One request from a second start; anything unreadable still raises
        the window (an older start wrote a bare `raise`)."""
        try:
            message = json.loads(line)
        except ValueError:
            message = {}
        files = message.get("open") if isinstance(message, dict) else None
        self.sig_raise.emit()
        if isinstance(files, list) and files:
            self.sig_open.emit([str(f) for f in files])

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None
