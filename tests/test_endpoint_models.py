"""A server's URL typed as the server prints it (`http://127.0.0.1:8080/v1`,
no `#model`): `/v1/models` is asked once, against real servers on loopback
(llama-cpp-python's, and stdlib HTTP servers for what it never answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from servers import LlamaServer, ScriptedServer, SilentServer

from zeta_desktop.core.engines.endpoint import EndpointError, parse_endpoint, split_endpoint
from zeta_desktop.core.engines.server_probe import MODELS_NAMED, resolve_endpoint

JSON = {"Content-Type": "application/json"}


def listing(*ids: str) -> list[bytes]:
    return [json.dumps({"object": "list",
                        "data": [{"id": i, "object": "model", "owned_by": "me"}
                                 for i in ids]}).encode()]


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer({})
    yield server
    server.close()


def test_parsing_stays_pure_and_still_wants_the_model() -> None:
    assert split_endpoint("http://h:1") == ("http://h:1/v1", "")
    assert split_endpoint("http://h:1/v1/#m") == ("http://h:1/v1", "m")
    with pytest.raises(EndpointError, match="name the model after a #"):
        parse_endpoint("http://127.0.0.1:8080/v1")
    # A named model is parsed only: nothing listens on port 1.
    resolved = resolve_endpoint("http://127.0.0.1:1/v1#qwen", slots=2)
    assert (resolved.spec.model, resolved.spec.slots, resolved.note) == ("qwen", 2, "")
    with pytest.raises(EndpointError, match="starts with http"):
        resolve_endpoint("ftp://127.0.0.1/v1")


def test_the_one_model_a_server_serves_is_used_and_said(scripted: ScriptedServer) -> None:
    scripted.scripts["/v1/models"] = (200, JSON, listing("llama3"))
    resolved = resolve_endpoint(f"http://127.0.0.1:{scripted.port}", api_key_env="NO_SUCH_KEY")
    assert resolved.spec.base_url == scripted.url and resolved.spec.model == "llama3"
    assert resolved.spec.api_key_env == "NO_SUCH_KEY"
    assert resolved.note == f"the server at {scripted.url} serves one model, llama3: using it"
    assert [(m, p) for m, p, _ in scripted.requests] == [("GET", "/v1/models")]
    # Listed twice is still one model.
    scripted.scripts["/v1/models"] = (200, JSON, listing("llama3", "llama3"))
    assert resolve_endpoint(scripted.url).spec.model == "llama3"


class KeyedServer:
    """/v1/models for the right Bearer key only, else a 401."""

    def __init__(self, key: str) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                given = self.headers.get("Authorization", "")
                seen.append(given)
                ok = self.path == "/v1/models" and given == f"Bearer {key}"
                body = listing("secret-model")[0] if ok else b'{"error": "bad key"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def test_the_key_is_sent_when_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    server = KeyedServer("sk-lookup")
    try:
        monkeypatch.setenv("ZETA_TEST_LOOKUP_KEY", "sk-wrong")
        with pytest.raises(EndpointError, match=r"refused the API key \(401\).*--set-api-key"):
            resolve_endpoint(server.url, api_key_env="ZETA_TEST_LOOKUP_KEY")
        monkeypatch.setenv("ZETA_TEST_LOOKUP_KEY", "sk-lookup")
        resolved = resolve_endpoint(server.url, api_key_env="ZETA_TEST_LOOKUP_KEY")
    finally:
        server.close()
    assert resolved.spec.model == "secret-model"
    assert server.seen == ["Bearer sk-wrong", "Bearer sk-lookup"]


def test_several_models_are_named_and_refused(scripted: ScriptedServer) -> None:
    scripted.scripts["/v1/models"] = (200, JSON, listing("qwen-7b", "qwen-14b", "llama3"))
    with pytest.raises(EndpointError) as refused:
        resolve_endpoint(scripted.url)
    message = str(refused.value)
    assert "serves 3 models: qwen-7b, qwen-14b, llama3" in message
    assert f"adding #NAME, for example {scripted.url}#qwen-7b" in message
    many = [f"m{i}" for i in range(MODELS_NAMED + 4)]
    scripted.scripts["/v1/models"] = (200, JSON, listing(*many))
    with pytest.raises(EndpointError) as refused:
        resolve_endpoint(scripted.url)
    message = str(refused.value)
    assert f"serves {len(many)} models: " + ", ".join(many[:MODELS_NAMED]) + " and 4 more" \
        in message
    assert f"m{MODELS_NAMED}," not in message


def test_no_model_or_garbage_says_so(scripted: ScriptedServer) -> None:
    scripted.scripts["/v1/models"] = (200, JSON, listing())
    with pytest.raises(EndpointError, match=r"/v1/models lists no model; name the one to use "
                                            r"after a #"):
        resolve_endpoint(scripted.url)
    for body in (b"<html>hello</html>", b'{"object": "list"}', b"[1, 2]"):
        scripted.scripts["/v1/models"] = (200, {"Content-Type": "text/html"}, [body])
        with pytest.raises(EndpointError, match=r"did not answer with a list of models.*"
                                                r"OpenAI-compatible"):
            resolve_endpoint(scripted.url)
    scripted.scripts.pop("/v1/models")  # the scripted server's 404
    with pytest.raises(EndpointError, match="/v1/models answered 404: no such route"):
        resolve_endpoint(scripted.url)


def test_an_unreachable_or_silent_server_says_so() -> None:
    closed = SilentServer()
    port = closed.port
    closed.close()  # the port now refuses connections
    with pytest.raises(EndpointError, match=r"it is unreachable .*is the server running\? "
                                            r"Or name the model after a #"):
        resolve_endpoint(f"http://127.0.0.1:{port}/v1")
    silent = SilentServer()
    try:
        with pytest.raises(EndpointError, match=r"no answer within 0\.5 s"):
            resolve_endpoint(silent.url, timeout_s=0.5)
    finally:
        silent.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zeta_desktop", *args], capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )


def test_the_command_line_refuses_a_server_with_several_models(
        scripted: ScriptedServer, tmp_path: Path) -> None:
    scripted.scripts["/v1/models"] = (200, JSON, listing("a", "b"))
    result = run_cli("--config", str(tmp_path / "none.toml"), "--reasoner", scripted.url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert (f"zeta-desktop: --reasoner: {scripted.url} serves 2 models: a, b; choose one by "
            f"adding #NAME, for example {scripted.url}#a") in result.stderr
    result = run_cli("serve", "--config", str(tmp_path / "none.toml"), "--coder", scripted.url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"zeta-desktop serve: --coder: {scripted.url} serves 2 models" in result.stderr


@pytest.mark.model
def test_a_real_server_printed_url_is_taken_as_is(tiny_model: Path) -> None:
    server = LlamaServer(tiny_model, "tiny", n_ctx=512).start()
    try:
        resolved = resolve_endpoint(server.url)
        printed = resolve_endpoint(f"http://127.0.0.1:{server.port}/")
    finally:
        server.stop()
    assert resolved.spec.model == printed.spec.model == "tiny"
    assert resolved.spec.label == f"tiny@127.0.0.1:{server.port}"
    assert "serves one model, tiny: using it" in resolved.note
