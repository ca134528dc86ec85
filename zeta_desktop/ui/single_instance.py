"""One app per data directory: a second start brings the first window forward.

Two apps writing one history would each think they own it. The data
directory's `instance.lock` is held for as long as the app runs, through Qt's
`QLockFile` (it works alike on Linux, Windows and macOS): a lock whose process
died (a crash) is found stale by its process id and taken over. The first app
also listens on a local socket named after the directory (`QLocalServer`: a
Unix socket, or a named pipe on Windows); a second start that finds the lock
taken asks it there to raise its window, says so, and exits.
"""

from __future__ import annotations

import hashlib
import os
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

    def ask_primary_to_raise(self) -> bool:
        """From a second start: True if the first app heard it."""
        socket = QLocalSocket()
        socket.connectToServer(self._name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        socket.write(b"raise\n")
        socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
        socket.disconnectFromServer()
        return True

    def _on_connection(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            connection = self._server.nextPendingConnection()
            connection.readyRead.connect(lambda c=connection: c.readAll())
            connection.disconnected.connect(connection.deleteLater)
            self.sig_raise.emit()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None
