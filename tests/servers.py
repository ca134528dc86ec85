"""Real servers on loopback for the remote-endpoint tests.

- `LlamaServer`: llama-cpp-python's OpenAI-compatible server (its `[server]`
  extra) in a child process, serving a real GGUF file.
- `SilentServer`: accepts connections and never answers a byte.
- `ScriptedServer`: a stdlib HTTP server that answers each request with what
  the test gave it (a 500 with an error body, a 429 with Retry-After, an
  event stream that breaks its rules), for what a healthy model server never does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

START_TIMEOUT_S = 60.0
JSON_HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until true; fails the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        pause.wait(0.02)


class LlamaServer:
    def __init__(self, model: Path, alias: str, *, embedding: bool = False,
                 n_ctx: int = 4096, api_key: str = "", port: int | None = None) -> None:
        self.model, self.alias, self.embedding = model, alias, embedding
        self.n_ctx, self.api_key = n_ctx, api_key
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def endpoint(self) -> str:
        return f"{self.url}#{self.alias}"

    def start(self) -> LlamaServer:
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_threads", "1", "--n_ctx", str(self.n_ctx),
            # By default a new request cuts the one streaming; queue them instead,
            # as llama-server and vLLM do.
            "--interrupt_requests", "false",
        ]
        if self.embedding:
            command += ["--embedding", "true"]
        if self.api_key:
            command += ["--api_key", self.api_key]
        env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        self.starts += 1
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the server on port {self.port} exited "
                                     f"({process.returncode}) while starting")
            try:
                return httpx.get(f"{self.url}/models", headers=headers, timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(answers, START_TIMEOUT_S, f"llama-cpp-python's server on {self.port}")
        return self

    def freeze(self) -> None:
        """SIGSTOP: the server stops mid-whatever, sockets open."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class SilentServer:
    """Accepts TCP connections and never answers; counts what it accepted."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        # shutdown first: close alone leaves accept() blocked, and listening.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for conn in self.accepted:
            with contextlib.suppress(OSError):
                conn.close()
        self._thread.join(5)


# (status, headers, body chunks) for one request path
Script = tuple[int, dict[str, str], list[bytes]]


class ScriptedServer:
    def __init__(self, scripts: dict[str, Script]) -> None:
        self.scripts = scripts
        self.requests: list[tuple[str, str, bytes]] = []  # (method, path, body)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                owner.requests.append((self.command, path, body))
                status, headers, chunks = owner.scripts.get(
                    path, (404, {"Content-Type": "application/json"},
                           [b'{"error": {"message": "no such route"}}']))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if headers.get("Content-Type") == "text/event-stream":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in chunks:  # one write each: lines split across chunks
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    self.close_connection = True
                    return
                data = b"".join(chunks)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 (the handler's names)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
