"""The remote engine against real servers on loopback: llama-cpp-python's
OpenAI-compatible server, a socket that never answers, and a scripted HTTP
server for the errors a healthy model server does not make on demand."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from servers import LlamaServer, ScriptedServer, SilentServer, wait_until

from zeta_desktop.core.engines.base import (
    CancelEvent,
    EngineError,
    LoadSettings,
    PromptTooLongError,
    TransientEngineError,
)
from zeta_desktop.core.engines.endpoint import EndpointError, parse_endpoint
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.engines.remote import RemoteEngine
from zeta_desktop.core.engines.server_probe import ServerProbe, parse_metrics
from zeta_desktop.core.models.files import resolve_model

pytestmark = pytest.mark.model
HELLO = [{"role": "user", "content": "Say hello."}]
JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}


@pytest.fixture(scope="module")
def tiny_server(tiny_model: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(tiny_model, "tiny").start()
    yield server
    server.stop()


@pytest.fixture
def engines() -> Iterator[list[RemoteEngine]]:
    made: list[RemoteEngine] = []
    yield made
    for engine in made:
        engine.close()


def connect(engines: list[RemoteEngine], text: str, **settings: object) -> RemoteEngine:
    engine = RemoteEngine(parse_endpoint(text, **settings))
    engines.append(engine)
    return engine


def test_streams_a_chat_from_a_real_server(tiny_server: LlamaServer, engines) -> None:
    engine = connect(engines, tiny_server.endpoint)
    pieces = list(engine.stream_chat(HELLO, max_tokens=12, temperature=0.0,
                                     cancel=CancelEvent()))
    assert 0 < len(pieces) <= 12 and all(isinstance(p, str) for p in pieces)
    # Greedy: the same server gives the same answer twice.
    again = list(engine.stream_chat(HELLO, max_tokens=12, temperature=0.0,
                                    cancel=CancelEvent()))
    assert again == pieces


def test_embeds_on_a_real_server_as_the_local_engine_does(engines) -> None:
    embedder = resolve_model("", embedding_role=True).path
    server = LlamaServer(embedder, "minilm", embedding=True, n_ctx=512).start()
    try:
        engine = connect(engines, server.endpoint)
        texts = ["A man is eating food.", "A man is riding a horse."]
        remote = np.asarray(engine.embed(texts))
    finally:
        server.stop()
    local_engine = LlamaEngine.load(embedder, LoadSettings(512, 0, 1, embedding=True))
    try:
        local = np.asarray(local_engine.embed(texts))
    finally:
        local_engine.close()
    assert remote.shape == (2, 384)
    assert np.allclose(np.linalg.norm(remote, axis=1), 1.0)
    assert (remote * local).sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-4)


def test_stop_cuts_a_stream_blocked_on_a_silent_server(engines) -> None:
    silent = SilentServer()
    try:
        engine = connect(engines, f"{silent.url}#any", first_token_timeout_s=600)
        cancel = CancelEvent()
        outcome: list[object] = []

        def stream() -> None:
            try:
                outcome.append(list(engine.stream_chat(HELLO, max_tokens=8, temperature=0.0,
                                                       cancel=cancel)))
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=stream)
        thread.start()
        wait_until(lambda: silent.accepted, 10, "the request to reach the server")
        cancel.set()  # the read is blocked: only cutting the socket ends it
        thread.join(10)
        assert not thread.is_alive(), "Stop did not end a stream blocked on a silent server"
        assert outcome == [[]]  # stopped: nothing streamed, nothing raised
    finally:
        silent.close()


def test_a_server_that_never_answers_times_out_with_a_clear_message(engines) -> None:
    silent = SilentServer()
    try:
        engine = connect(engines, f"{silent.url}#any", first_token_timeout_s=0.5)
        with pytest.raises(EngineError, match=r"any@127\.0\.0\.1:\d+: no first token within 0.5 s"):
            list(engine.stream_chat(HELLO, max_tokens=8, temperature=0.0, cancel=CancelEvent()))
    finally:
        silent.close()


def test_a_bad_url_says_what_is_wrong(engines) -> None:
    for text, why in [
        ("ftp://host/v1#m", "starts with http"),
        ("http://127.0.0.1:8080/v1", "name the model after a #"),
        ("http://user:secret@host/v1#m", "no user or password"),
        ("http://:8080/v1#m", "no host"),
    ]:
        with pytest.raises(EndpointError, match=why):
            parse_endpoint(text)
    assert parse_endpoint("http://h:1#m").base_url == "http://h:1/v1"  # /v1 added
    nobody = SilentServer()
    port = nobody.port
    nobody.close()  # the port now refuses connections
    engine = connect(engines, f"http://127.0.0.1:{port}/v1#tiny")
    with pytest.raises(EngineError, match="cannot connect"):
        list(engine.stream_chat(HELLO, max_tokens=4, temperature=0.0, cancel=CancelEvent()))
    probe = ServerProbe(engine.spec)
    try:
        result = probe.check()
    finally:
        probe.close()
    assert not result.up and "unreachable" in result.detail


def test_a_wrong_model_name_is_reported_by_the_probe(tiny_server: LlamaServer) -> None:
    probe = ServerProbe(parse_endpoint(f"{tiny_server.url}#llama-70b"))
    try:
        result = probe.check()
    finally:
        probe.close()
    assert not result.up
    assert "has no model 'llama-70b' (it serves: tiny)" in result.detail
    good = ServerProbe(parse_endpoint(tiny_server.endpoint))
    try:
        assert good.check().up
    finally:
        good.close()


def test_a_prompt_too_long_for_the_server_is_reported_as_such(tiny_server, engines) -> None:
    long_prompt = [{"role": "user", "content": "word " * 6000}]

    def send(engine: RemoteEngine) -> None:
        list(engine.stream_chat(long_prompt, max_tokens=8, temperature=0.0,
                                cancel=CancelEvent()))

    # llama-cpp-python's server accepts the stream, then ends it with nothing.
    with pytest.raises(EngineError, match="closed the stream without an answer; it may "
                                          "have rejected the prompt"):
        send(connect(engines, tiny_server.endpoint))
    # llama-server and vLLM refuse it up front, and say why: that is read.
    for body in (
        b'{"error": {"code": 400, "message": "the request exceeds the available context '
        b'size, try increasing it", "type": "exceed_context_size_error"}}',
        b'{"object": "error", "message": "This model\'s maximum context length is 4096 '
        b'tokens. However, you requested 6010 tokens.", "code": 400}',
    ):
        server = ScriptedServer({"/v1/chat/completions": (400, JSON, [body])})
        try:
            with pytest.raises(PromptTooLongError, match="says the prompt is too long"):
                send(connect(engines, f"{server.url}#m"))
        finally:
            server.close()




def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    data = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n".encode()


def test_a_500_with_an_error_body_and_a_429_with_retry_after(engines) -> None:
    server = ScriptedServer({
        "/v1/chat/completions": (500, JSON, [b'{"error": {"message": "CUDA out of memory"}}']),
        "/v1/embeddings": (429, {**JSON, "Retry-After": "7"},
                           [b'{"error": {"message": "too many requests"}}']),
    })
    try:
        engine = connect(engines, f"{server.url}#m")
        with pytest.raises(EngineError, match="answered 500: CUDA out of memory") as failed:
            list(engine.stream_chat(HELLO, max_tokens=4, temperature=0.0, cancel=CancelEvent()))
        assert not isinstance(failed.value, TransientEngineError)
        with pytest.raises(TransientEngineError, match=re.escape(
                "busy (429: too many requests); retry after 7 s")) as busy:
            engine.embed(["x"])
        assert busy.value.retry_after_s == 7.0
    finally:
        server.close()


def test_event_streams_that_bend_the_rules(engines) -> None:
    # A keep-alive comment, a line split across two writes, CRLF endings, an
    # event field, and no [DONE] at the end: all read.
    whole = chunk("Hel") + b": ping\n\n" + chunk("lo")
    split = whole[:25], whole[25:]
    bent = [*split, b"event: message\r\n" + chunk(" there").replace(b"\n", b"\r\n"),
            chunk(finish="stop")]
    error_mid_stream = [chunk("Par"), b'data: {"error": {"message": "slot crashed"}}\n\n']
    cut_short = [chunk("Half an")]
    not_json = [b"data: <html>oops</html>\n\n"]
    server = ScriptedServer({"/v1/chat/completions": (200, SSE, bent)})
    try:
        engine = connect(engines, f"{server.url}#m")

        def run() -> list[str]:
            return list(engine.stream_chat(HELLO, max_tokens=9, temperature=0.0,
                                           cancel=CancelEvent()))

        assert "".join(run()) == "Hello there"
        server.scripts["/v1/chat/completions"] = (200, SSE, error_mid_stream)
        with pytest.raises(EngineError, match="failed mid-answer: slot crashed"):
            run()
        server.scripts["/v1/chat/completions"] = (200, SSE, cut_short)
        with pytest.raises(EngineError, match="stream ended before the answer did"):
            run()
        server.scripts["/v1/chat/completions"] = (200, SSE, not_json)
        with pytest.raises(EngineError, match="not JSON"):
            run()
        sent = json.loads(server.requests[0][2])
        assert sent["stream"] is True and sent["model"] == "m" and sent["max_tokens"] == 9
    finally:
        server.close()


def test_metrics_of_llama_server_and_vllm_are_read() -> None:
    llama = ("# HELP llamacpp:requests_processing Number of requests processing.\n"
             "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\n"
             "llamacpp:requests_deferred 5\n")
    vllm = ('vllm:num_requests_running{model_name="m"} 3.0\n'
            'vllm:num_requests_waiting{model_name="m"} 1.0\n'
            'vllm:kv_cache_usage_perc{model_name="m"} 0.25\n')
    counted = parse_metrics(llama)
    assert (counted.running, counted.waiting, counted.kv_cache_pct) == (2, 5, None)
    load = parse_metrics(vllm)
    assert (load.running, load.waiting, load.kv_cache_pct) == (3, 1, 25.0)
    assert parse_metrics("process_cpu_seconds_total 3\n") is None


def test_the_probe_reads_llama_server_props_and_metrics() -> None:
    server = ScriptedServer({
        "/health": (200, JSON, [b'{"status": "ok"}']),
        "/v1/models": (200, JSON, [b'{"data": [{"id": "qwen"}]}']),
        "/props": (200, JSON, [b'{"total_slots": 4, '
                               b'"default_generation_settings": {"n_ctx": 8192}}']),
        "/metrics": (200, {"Content-Type": "text/plain"},
                     [b"llamacpp:requests_processing 4\nllamacpp:requests_deferred 2\n"]),
    })
    try:
        probe = ServerProbe(parse_endpoint(f"{server.url}#qwen"))
        result = probe.check()
        assert result.up and result.slots == 4 and result.n_ctx == 8192
        assert (result.load.running, result.load.waiting) == (4, 2)
        server.scripts["/health"] = (503, JSON, [b'{"error": {"message": "Loading model"}}'])
        loading = probe.check()
        assert not loading.up and "starting: Loading model" in loading.detail
        probe.close()
    finally:
        server.close()
