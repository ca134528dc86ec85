"""llama-server's cache fields and the servers' prefix-cache metrics, over
real HTTP on loopback: the probe finds which server it is, the engine sends
`cache_prompt` and `id_slot` to llama-server only, a follow-up goes back to
the slot that read its conversation, and vLLM's and SGLang's hit rates are
read from /metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from servers import ScriptedServer

from zeta_desktop.core.engines.base import CancelEvent, EngineError
from zeta_desktop.core.engines.endpoint import LLAMA_SERVER, SGLANG, VLLM, parse_endpoint
from zeta_desktop.core.engines.remote import RemoteEngine
from zeta_desktop.core.engines.server_probe import ProbeResult, ServerProbe, parse_metrics

JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}
TEXT = {"Content-Type": "text/plain"}
SYSTEM = {"role": "system", "content": "You are terse."}


def answer(text: str, cache_n: int = 0) -> list[bytes]:
    """An answer streamed as llama-server streams it, its timings on the last chunk."""
    pieces = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "timings": {"cache_n": cache_n, "prompt_n": 7}}]
    return [f"data: {json.dumps(p)}\n\n".encode() for p in pieces] + [b"data: [DONE]\n\n"]


def llama_server_routes(slots: int) -> dict:
    return {
        "/health": (200, JSON, [b'{"status": "ok"}']),
        "/v1/models": (200, JSON, [b'{"object": "list", "data": [{"id": "qwen", '
                                   b'"object": "model", "owned_by": "llamacpp"}]}']),
        "/props": (200, JSON, [json.dumps({
            "total_slots": slots,
            "default_generation_settings": {"n_ctx": 4096}}).encode()]),
        "/v1/chat/completions": (200, SSE, answer("Sure.", cache_n=5)),
    }


@pytest.fixture
def closing() -> Iterator[list]:
    made: list = []
    yield made
    for thing in reversed(made):
        thing.close()


def probed(server: ScriptedServer, closing: list, model: str = "qwen"
           ) -> tuple[RemoteEngine, ProbeResult]:
    """An engine told what the probe found, as the health thread tells it."""
    spec = parse_endpoint(f"{server.url}#{model}")
    engine, probe = RemoteEngine(spec), ServerProbe(spec)
    closing.extend([engine, probe])
    result = probe.check()
    assert result.up, result.detail
    engine.learn_server(result.kind, result.slots)
    return engine, result


def chat_bodies(server: ScriptedServer) -> list[dict]:
    return [json.loads(body) for method, path, body in server.requests
            if path == "/v1/chat/completions"]


def say(engine: RemoteEngine, messages: list[dict]) -> str:
    return "".join(engine.stream_chat(messages, max_tokens=8, temperature=0.0,
                                      cancel=CancelEvent()))


def test_llama_server_gets_cache_prompt_and_each_conversation_keeps_its_slot(closing) -> None:
    server = ScriptedServer(llama_server_routes(slots=2))
    closing.append(server)
    engine, result = probed(server, closing)
    assert (result.kind, result.slots) == (LLAMA_SERVER, 2)
    assert engine.pinned_slots == 2

    first = [SYSTEM, {"role": "user", "content": "Name a fruit."}]
    other = [SYSTEM, {"role": "user", "content": "Name a river."}]
    assert say(engine, first) == "Sure."
    assert engine.last_cached_tokens == 5  # timings.cache_n read
    say(engine, other)
    # Follow-ups, each carrying its own history with the answer it got.
    say(engine, [*first, {"role": "assistant", "content": "Sure."},
                 {"role": "user", "content": "Another?"}])
    say(engine, [*other, {"role": "assistant", "content": "Sure."},
                 {"role": "user", "content": "Longer?"}])
    bodies = chat_bodies(server)
    assert all(b["cache_prompt"] is True for b in bodies)
    slots = [b["id_slot"] for b in bodies]
    assert slots[0] != slots[1]  # two conversations, two slots
    assert slots[2] == slots[0] and slots[3] == slots[1]  # each follow-up on its own
    # A third conversation takes the slot used longest ago; the same system
    # prompt alone does not count as holding it.
    say(engine, [SYSTEM, {"role": "user", "content": "Name a bird."}])
    assert chat_bodies(server)[-1]["id_slot"] == slots[0]


def test_a_follow_up_whose_slot_is_busy_goes_to_a_free_one(closing) -> None:
    server = ScriptedServer(llama_server_routes(slots=2))
    closing.append(server)
    engine, _ = probed(server, closing)
    first = [{"role": "user", "content": "Name a fruit."}]
    say(engine, first)
    follow_up = [*first, {"role": "assistant", "content": "Sure."},
                 {"role": "user", "content": "Another?"}]
    held = engine.stream_chat(follow_up, max_tokens=8, temperature=0.0, cancel=CancelEvent())
    assert next(held) == "Sure."  # still streaming: its slot is busy
    say(engine, follow_up)  # a regenerate of the same turn, meanwhile
    held.close()
    slots = [b["id_slot"] for b in chat_bodies(server)]
    assert slots[1] == slots[0] and slots[2] != slots[0]


def test_one_slot_servers_and_other_servers_get_no_llama_fields(closing) -> None:
    one_slot = ScriptedServer(llama_server_routes(slots=1))
    vllm = ScriptedServer({
        "/health": (200, JSON, [b""]),
        "/v1/models": (200, JSON, [b'{"data": [{"id": "m", "owned_by": "vllm"}]}']),
        "/metrics": (200, TEXT, [b'vllm:num_requests_running{model_name="m"} 0\n']),
        "/v1/chat/completions": (200, SSE, answer("Hi.")),
    })
    unknown = ScriptedServer({  # llama-cpp-python's server: no /props, owned_by "me"
        "/v1/models": (200, JSON, [b'{"data": [{"id": "m", "owned_by": "me"}]}']),
        "/v1/chat/completions": (200, SSE, answer("Hi.")),
    })
    closing.extend([one_slot, vllm, unknown])
    engine, _ = probed(one_slot, closing)
    say(engine, [{"role": "user", "content": "Hello."}])
    sent = chat_bodies(one_slot)[0]
    assert sent["cache_prompt"] is True and "id_slot" not in sent

    for server, kind in ((vllm, VLLM), (unknown, "")):
        engine, result = probed(server, closing, model="m")
        assert result.kind == kind
        say(engine, [{"role": "user", "content": "Hello."}])
        sent = chat_bodies(server)[0]
        assert "cache_prompt" not in sent and "id_slot" not in sent


def test_a_server_that_refuses_id_slot_is_asked_again_without_it(closing, caplog) -> None:
    server = ScriptedServer(llama_server_routes(slots=4))
    closing.append(server)
    engine, result = probed(server, closing)
    server.scripts["/v1/chat/completions"] = (
        400, JSON, [b'{"error": {"code": 400, "message": "Invalid slot ID", '
                    b'"type": "invalid_request_error"}}'])
    hello = [{"role": "user", "content": "Hello."}]
    # The server answers every request from one script: the retry, without
    # id_slot, is refused too, and the error says why.
    with (caplog.at_level(logging.WARNING, "zeta_desktop.core.engines.remote"),
          pytest.raises(EngineError, match="Invalid slot ID")):
        say(engine, hello)
    bodies = chat_bodies(server)
    assert "id_slot" in bodies[0] and "id_slot" not in bodies[1]
    assert "cache_prompt" not in bodies[1]
    assert engine.pinned_slots == 0
    engine.learn_server(result.kind, result.slots)  # the next probe does not bring it back
    assert engine.pinned_slots == 0
    server.scripts["/v1/chat/completions"] = (200, SSE, answer("Hi."))
    assert say(engine, hello) == "Hi."
    last = chat_bodies(server)[-1]
    assert last["cache_prompt"] is True and "id_slot" not in last
    refusals = [r for r in caplog.records if "refused id_slot" in r.getMessage()]
    assert len(refusals) == 1


def test_vllm_and_sglang_prefix_cache_hit_rates_are_read() -> None:
    counters = ('vllm:num_requests_running{engine="0",model_name="m"} 1.0\n'
                'vllm:num_requests_waiting{engine="0",model_name="m"} 0.0\n'
                'vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0\n'
                'vllm:prefix_cache_hits_total{engine="0",model_name="m"} 250.0\n')
    load = parse_metrics(counters)
    assert load.prefix_cache_hit_rate == pytest.approx(0.25)
    assert load.prefix_cache_counts == (250.0, 1000.0)
    # Since an earlier reading: 450 of the 1000 new queries hit.
    later = counters.replace("1000.0", "2000.0").replace("250.0", "700.0")
    assert parse_metrics(later, (250.0, 1000.0)).prefix_cache_hit_rate == pytest.approx(0.45)
    old_vllm = ("vllm:num_requests_running 0\nvllm:gpu_prefix_cache_hit_rate 0.8\n")
    assert parse_metrics(old_vllm).prefix_cache_hit_rate == pytest.approx(0.8)
    sglang = ('sglang:num_running_reqs{model_name="m"} 2.0\n'
              'sglang:num_queue_reqs{model_name="m"} 5.0\n'
              'sglang:cache_hit_rate{model_name="m"} 0.93\n')
    load = parse_metrics(sglang)
    assert (load.running, load.waiting) == (2, 5)
    assert load.prefix_cache_hit_rate == pytest.approx(0.93)
    llama = "llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\n"
    assert parse_metrics(llama).prefix_cache_hit_rate is None


def test_the_probe_reports_the_hit_rate_of_the_traffic_since_its_last_reading(closing) -> None:
    def metrics(hits: int, queries: int) -> tuple:
        return (200, TEXT, [f'vllm:num_requests_running{{model_name="m"}} 0\n'
                            f'vllm:prefix_cache_hits_total{{model_name="m"}} {hits}\n'
                            f'vllm:prefix_cache_queries_total{{model_name="m"}} {queries}\n'
                            .encode()])

    server = ScriptedServer({
        "/v1/models": (200, JSON, [b'{"data": [{"id": "m", "owned_by": "vllm"}]}']),
        "/metrics": metrics(100, 400),
    })
    closing.append(server)
    probe = ServerProbe(parse_endpoint(f"{server.url}#m"))
    closing.append(probe)
    assert probe.check().load.prefix_cache_hit_rate == pytest.approx(0.25)
    server.scripts["/metrics"] = metrics(190, 500)  # 90 of 100 new queries hit
    assert probe.check().load.prefix_cache_hit_rate == pytest.approx(0.9)
    # No traffic since: the last traffic's rate stands.
    assert probe.check().load.prefix_cache_hit_rate == pytest.approx(0.9)
    server.scripts["/metrics"] = metrics(10, 20)  # the server restarted
    assert probe.check().load.prefix_cache_hit_rate == pytest.approx(0.5)

    sglang = ScriptedServer({
        "/v1/models": (200, JSON, [b'{"data": [{"id": "m", "owned_by": "sglang"}]}']),
        "/metrics": (200, TEXT, [b'sglang:num_running_reqs{model_name="m"} 0\n'
                                 b'sglang:cache_hit_rate{model_name="m"} 0.6\n']),
    })
    closing.append(sglang)
    sglang_probe = ServerProbe(parse_endpoint(f"{sglang.url}#m"))
    closing.append(sglang_probe)
    result = sglang_probe.check()
    assert result.kind == SGLANG and result.load.prefix_cache_hit_rate == pytest.approx(0.6)


def test_the_fleet_tells_each_replica_what_its_probe_found(closing) -> None:
    """Through the app's own path (session, fleet, health thread): a llama-server
    replica gets cache_prompt and slot pins, and a vLLM one's hit rate shows on
    its worker."""
    from session_events import TIMEOUT, events_of, make_session
    from test_replicas import replica_config

    llama = ScriptedServer(llama_server_routes(slots=2))
    vllm = ScriptedServer({
        "/v1/models": (200, JSON, [b'{"data": [{"id": "qwen", "owned_by": "vllm"}]}']),
        "/metrics": (200, TEXT, [b'vllm:num_requests_running{model_name="qwen"} 0\n'
                                 b'vllm:prefix_cache_hits_total{model_name="qwen"} 30\n'
                                 b'vllm:prefix_cache_queries_total{model_name="qwen"} 40\n']),
        "/v1/chat/completions": (200, SSE, answer("Fine.")),
    })
    closing.extend([llama, vllm])
    for server in (llama, vllm):
        session = make_session(replica_config(f"{server.url}#qwen"))
        closing.append(type("Ends", (), {"close": lambda _s, s=session: s.shutdown(TIMEOUT)})())
        turn = session.send("Hello there", with_history=False)
        events_of(session).wait_done(turn)
        assert not events_of(session).failed
        worker = session.fleet.worker("coder")
        if server is llama:
            sent = chat_bodies(llama)[-1]
            assert sent["cache_prompt"] is True and sent["id_slot"] in (0, 1)
            assert worker.server_cache_hit_rate is None  # its /metrics: none here
        else:
            assert "cache_prompt" not in chat_bodies(vllm)[-1]
            assert worker.server_cache_hit_rate == pytest.approx(0.75)
