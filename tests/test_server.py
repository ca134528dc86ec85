"""The OpenAI-compatible server, through real clients: the official `openai`
package, LiteLLM, and raw HTTP for what those never send."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from gated_engine import gated_loader
from served import serving

from zeta_desktop.core.settings import AppConfig

pytestmark = pytest.mark.model

HELLO = [{"role": "system", "content": "You are terse."},
         {"role": "user", "content": "Say hello to the world."}]


def client(base_url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)


def test_openai_client_streams_and_not_with_the_decision_and_real_usage(
        tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        api_client = client(served.base_url)
        raw = api_client.chat.completions.with_raw_response.create(
            model="auto", messages=HELLO, temperature=0, max_tokens=12)  # type: ignore[arg-type]
        whole = raw.parse()
        assert raw.headers["x-zeta-role"] in ("coder", "embedder", "reasoner")
        assert raw.headers["x-zeta-kind"] and raw.headers["x-zeta-reason"]
        text = whole.choices[0].message.content
        # The tiny model never ends on its own: 12 tokens sampled, cut by the budget.
        assert text and whole.choices[0].finish_reason == "length"
        assert whole.usage is not None and whole.usage.completion_tokens == 12
        # The prompt as the model's tokenizer counted it, not an estimate.
        system_and_user = served.api.count_tokens("coder", [HELLO[0]["content"],
                                                            HELLO[1]["content"]])
        assert whole.usage.prompt_tokens > sum(system_and_user)  # the chat template's too
        zeta = (whole.model_extra or {})["zeta"]
        assert zeta["role"] == raw.headers["x-zeta-role"] and zeta["kind"]

        chunks = list(api_client.chat.completions.create(
            model="auto", messages=HELLO, temperature=0, max_tokens=12,  # type: ignore[arg-type]
            stream=True, stream_options={"include_usage": True}))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == text  # temperature 0: the same words either way
        final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
        assert len(final) == 1 and (final[0].model_extra or {})["zeta"]["role"]
        usage = chunks[-1].usage
        assert usage is not None and not chunks[-1].choices
        assert (usage.prompt_tokens, usage.completion_tokens) == (
            whole.usage.prompt_tokens, whole.usage.completion_tokens)


def test_an_answer_cut_by_the_roles_budget_or_the_context_says_length(
        tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        api_client = client(served.base_url)
        by_role = api_client.chat.completions.create(model="coder", messages=HELLO)  # type: ignore[arg-type]
        assert by_role.choices[0].finish_reason == "length"  # the role's max_tokens, 32
        assert by_role.usage is not None and by_role.usage.completion_tokens == 32
        by_context = api_client.chat.completions.create(
            model="coder", messages=HELLO, max_tokens=2000)  # type: ignore[arg-type]
        assert by_context.choices[0].finish_reason == "length"  # n_ctx 512 ran out first
        usage = by_context.usage
        assert usage is not None and usage.prompt_tokens + usage.completion_tokens == 512


def test_model_names_a_role_or_its_file_and_unknown_ones_list_what_exists(
        tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        learned = served.api.session.router.learned_shift()
        api_client = client(served.base_url)
        listed = [m.id for m in api_client.models.list()]
        assert listed[:4] == ["auto", "coder", "embedder", "reasoner"]
        assert listed[4:] == ["tiny-chat.gguf"]  # the roles' model file, once
        for name, role in (("reasoner", "reasoner"), ("tiny-chat.gguf", "coder"),
                           ("tiny-chat", "coder")):
            raw = api_client.chat.completions.with_raw_response.create(
                model=name, messages=HELLO, max_tokens=4)  # type: ignore[arg-type]
            assert raw.headers["x-zeta-role"] == role
            assert "named by the request" in raw.headers["x-zeta-reason"]
        with pytest.raises(openai.NotFoundError) as missing:
            api_client.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
        assert "no model 'gpt-4o' here" in str(missing.value) and "auto" in str(missing.value)
        # Naming a role teaches the router nothing of what the user prefers.
        assert served.api.session.router.learned_shift() == learned


def test_embeddings_come_from_the_embedding_role(tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        result = client(served.base_url).embeddings.create(
            model="auto", input=["the first text", "and a second one"])
        assert [e.index for e in result.data] == [0, 1]
        width = len(result.data[0].embedding)
        assert width > 1 and len(result.data[1].embedding) == width
        assert result.data[0].embedding != result.data[1].embedding
        assert result.usage.prompt_tokens == sum(
            served.api.count_tokens("embedder", ["the first text", "and a second one"]))
        with pytest.raises(openai.BadRequestError, match="does not embed"):
            client(served.base_url).embeddings.create(model="coder", input="x")


def test_stop_and_seed_reach_the_model(tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        api_client = client(served.base_url)
        full = api_client.chat.completions.create(
            model="coder", messages=HELLO, temperature=0, max_tokens=24)  # type: ignore[arg-type]
        text = full.choices[0].message.content or ""
        assert len(text) > 8
        cut = text[len(text) // 2:][:3]
        stopped = api_client.chat.completions.create(
            model="coder", messages=HELLO, temperature=0, max_tokens=24,  # type: ignore[arg-type]
            stop=[cut])
        assert stopped.choices[0].message.content == text[: text.index(cut)]

        def sampled(seed: int) -> str:
            answer = api_client.chat.completions.create(
                model="coder", messages=HELLO, temperature=1.5, max_tokens=24,  # type: ignore[arg-type]
                seed=seed)
            return answer.choices[0].message.content or ""

        assert sampled(7) == sampled(7)
        assert len({sampled(seed) for seed in (1, 2, 3, 4)}) > 1  # the seed is the sampler's


def test_litellm_uses_it_as_an_openai_server(tiny_config: AppConfig, tmp_path: Path) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    with serving(tiny_config, tmp_path) as served:
        response = litellm.completion(model="openai/auto", api_base=served.base_url,
                                      api_key="none", messages=HELLO, max_tokens=8)
        assert response.choices[0].message.content
        chunks = list(litellm.completion(model="openai/auto", api_base=served.base_url,
                                         api_key="none", messages=HELLO, max_tokens=8,
                                         stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks)


def test_concurrent_clients_all_get_their_answers(tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        api_client = client(served.base_url)

        def ask(index: int) -> str:
            chunks = api_client.chat.completions.create(
                model="auto", stream=True, max_tokens=8, temperature=0,
                messages=[{"role": "user", "content": f"Count to {index}."}])
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(ask, range(12)))
        assert all(answers)
        metrics = httpx.get(f"{served.root}/metrics").text
        routed = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("zeta_routing_decisions_total{"))
        assert routed == 12
        assert 'zeta_endpoint_queue_depth{endpoint="coder",role="coder"}' in metrics
        assert 'zeta_http_responses_total{path="/v1/chat/completions",status="200"} 12' in metrics


def _post(url: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(url, content=body if isinstance(body, bytes) else json.dumps(body),
                      headers={"content-type": "application/json",
                               **kwargs.pop("headers", {})}, **kwargs)  # type: ignore[arg-type]


def test_bad_requests_get_their_status_and_the_server_keeps_serving(
        tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path, max_body_bytes=64 * 1024) as served:
        chat = f"{served.base_url}/chat/completions"
        cases = [
            (b"{not json", 400, "not valid JSON"),
            ({"model": "auto", "messages": "hello"}, 400, "messages"),
            ({"model": "auto", "messages": [{"role": "user", "content": 5}]}, 400, "content"),
            ({"model": "auto", "messages": HELLO, "max_tokens": "many"}, 400, "max_tokens"),
            ({"model": "auto", "messages": HELLO, "n": 3}, 400, "n"),
            ({"model": "auto", "messages": []}, 400, "messages"),
            ({"model": "auto", "messages": [{"role": "assistant", "content": "hi"}]}, 400,
             "the user's"),
            ({"model": "auto", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}, 400,
             "only text parts"),
            ({"model": "nope", "messages": HELLO}, 404, "the models are: auto"),
            ({"model": "auto", "messages": [{"role": "user", "content": "/similar secrets"}]},
             400, "commands such as /embed"),
            ({"model": "auto", "messages": [{"role": "user", "content": "word " * 300_000}]},
             413, "over 65,536 bytes"),
        ]
        for body, status, words in cases:
            response = _post(chat, body)
            assert response.status_code == status, (body if isinstance(body, bytes)
                                                    else str(body)[:80], response.text)
            error = response.json()["error"]
            assert words in error["message"] and error["type"], error
        # Too long for every model (n_ctx 512): counted by the model, refused with its numbers.
        long_prompt = " ".join(f"word{i}" for i in range(1500))
        response = _post(chat, {"model": "auto", "messages": [{"role": "user",
                                                                "content": long_prompt}]})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "context_length_exceeded"
        assert "512" in response.json()["error"]["message"]
        # Another name for this address (DNS rebinding) is refused.
        foreign = httpx.get(f"{served.root}/v1/models", headers={"host": "attacker.example"})
        assert foreign.status_code == 403 and "DNS rebinding" in foreign.json()["error"]["message"]
        assert "access-control-allow-origin" not in httpx.options(
            chat, headers={"origin": "https://evil.example",
                           "access-control-request-method": "POST"}).headers
        # Still serving.
        assert httpx.get(f"{served.root}/health").json()["status"] == "ok"
        assert client(served.base_url).chat.completions.create(
            model="auto", messages=HELLO, max_tokens=4).choices[0].message.content  # type: ignore[arg-type]


def test_a_key_is_needed_when_set_and_compared_whole(tiny_config: AppConfig,
                                                     tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path, key="zeta-secret-key") as served:
        for headers in ({}, {"authorization": "Bearer zeta-secret"},
                        {"authorization": "Bearer zeta-secret-key-and-more"},
                        {"authorization": "Basic zeta-secret-key"}):
            response = httpx.get(f"{served.base_url}/models", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"]["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            client(served.base_url, "wrong").models.list()
        keyed = client(served.base_url, "zeta-secret-key")
        assert next(m.id for m in keyed.models.list()) == \
            "auto"
        assert httpx.get(f"{served.root}/health").status_code == 200  # a probe needs no key


def test_another_host_needs_a_key_and_cors_only_for_allowed_origins(
        tiny_config: AppConfig, tmp_path: Path) -> None:
    from zeta_desktop.core.chat.api import open_chat
    from zeta_desktop.core.config import load_config
    from zeta_desktop.core.engines.llama import LlamaEngine
    from zeta_desktop.core.settings import ServerConfig
    from zeta_desktop.server.runner import ServerStartError, ZetaServer

    api = open_chat(load_config(tmp_path / "c.toml"), tiny_config, LlamaEngine.load,
                    keep_history=False)
    with pytest.raises(ServerStartError, match="set an API key first"):
        ZetaServer(api, ServerConfig(host="0.0.0.0", port=0), key="")
    api.shutdown()
    with serving(tiny_config, tmp_path, cors_origins=["https://app.example"]) as served:
        preflight = httpx.options(f"{served.base_url}/chat/completions", headers={
            "origin": "https://app.example", "access-control-request-method": "POST"})
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.options(f"{served.base_url}/chat/completions", headers={
            "origin": "https://evil.example", "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in other.headers


def test_a_client_that_leaves_mid_stream_stops_its_answer(tiny_config: AppConfig,
                                                          tmp_path: Path) -> None:
    reached, release = threading.Event(), threading.Event()
    with serving(tiny_config, tmp_path, loader=gated_loader(3, reached, release)) as served:
        with httpx.stream("POST", f"{served.base_url}/chat/completions", json={
                "model": "coder", "messages": HELLO, "stream": True, "max_tokens": 30},
                timeout=60) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            assert reached.wait(60)  # the answer holds: it cannot end on its own
        turn = served.api.turns[-1]
        for _ in range(600):
            if not turn.status.active:
                break
            threading.Event().wait(0.05)
        assert turn.status.value == "stopped"
        release.set()
        assert httpx.get(f"{served.root}/health").status_code == 200


def test_the_windows_stop_all_leaves_a_clients_answer_alone(tiny_config: AppConfig,
                                                             tmp_path: Path) -> None:
    reached, release = threading.Event(), threading.Event()
    with serving(tiny_config, tmp_path, loader=gated_loader(2, reached, release)) as served, \
            ThreadPoolExecutor(1) as pool:
        asked = pool.submit(client(served.base_url).chat.completions.create,
                            model="coder", messages=HELLO, max_tokens=8)
        assert reached.wait(60)
        served.api.stop()  # the window's Stop: every answer it asked for
        assert served.api.turns[-1].status.active
        release.set()
        assert asked.result(60).choices[0].message.content


def test_over_the_pending_limit_is_503_with_retry_after(tiny_config: AppConfig,
                                                        tmp_path: Path) -> None:
    reached, release = threading.Event(), threading.Event()
    with serving(tiny_config, tmp_path, loader=gated_loader(2, reached, release),
                 max_pending=1) as served, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client(served.base_url).chat.completions.create,
                            model="coder", messages=HELLO, max_tokens=8)
        assert reached.wait(60)
        refused = _post(f"{served.base_url}/chat/completions",
                        {"model": "auto", "messages": HELLO})
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        assert "limit is 1" in refused.json()["error"]["message"]
        release.set()
        assert first.result(60).choices[0].message.content


def test_kept_requests_are_conversations_titled_by_client(tiny_config: AppConfig,
                                                          tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path, keep_history=True) as served:
        answer = client(served.base_url).chat.completions.create(
            model="auto", messages=HELLO, max_tokens=6, user="my-script")  # type: ignore[arg-type]
        history = served.api.history
        assert history is not None
        history.flush()
        listed = history.list_conversations().result(10)
        assert [c.title for c in listed] == ["api: my-script: Say hello to the world."]
        kept = history.load_conversation(listed[0].id).result(10)
        texts = [m.content for m in kept.path()]
        assert texts == ["Say hello to the world.", answer.choices[0].message.content]
        assert kept.info.system_prompt == "You are terse."


def test_raw_completions_take_the_text_as_given(tiny_config: AppConfig, tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        api_client = client(served.base_url)
        raw = api_client.completions.with_raw_response.create(
            model="auto", prompt="Once upon a time", max_tokens=10, temperature=0)
        whole = raw.parse()
        text = whole.choices[0].text
        assert text and raw.headers["x-zeta-role"] and whole.object == "text_completion"
        assert whole.usage is not None
        assert whole.usage.prompt_tokens == served.api.count_tokens(
            raw.headers["x-zeta-role"], ["Once upon a time"])[0] + 1  # and the BOS token
        streamed = "".join(c.choices[0].text for c in api_client.completions.create(
            model="auto", prompt="Once upon a time", max_tokens=10, temperature=0, stream=True)
            if c.choices)
        assert streamed == text
        # No chat template: the same words as a chat message are more tokens.
        chat = api_client.chat.completions.create(
            model=raw.headers["x-zeta-role"], max_tokens=10, temperature=0,
            messages=[{"role": "user", "content": "Once upon a time"}])
        assert chat.usage is not None and chat.usage.prompt_tokens > whole.usage.prompt_tokens


def test_zeta_desktop_serve_runs_headless_until_sigterm(tiny_model: Path, tmp_path: Path) -> None:
    import queue
    import signal
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    roles = "".join(
        f"[roles.{role}]\nmodel_path = '{tiny_model}'\nn_ctx = 512\nn_threads = 1\n"
        f"max_tokens = 16\n{'can_embed = true' if role == 'embedder' else ''}\n"
        for role in ("coder", "embedder", "reasoner"))
    config.write_text(f"[router]\nsemantic = false\n{roles}")
    child = subprocess.Popen(
        [sys.executable, "-m", "zeta_desktop", "serve", "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout or []],
                     daemon=True).start()
    try:
        said = []
        while not any("serving on" in line for line in said):
            said.append(lines.get(timeout=60))
        url = next(line for line in said if "serving on" in line).split("serving on ")[1]
        base_url = url.split(" ", 1)[0]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        root = base_url.removesuffix("/v1")
        health = httpx.get(f"{root}/health")
        for _ in range(1200):  # the models load after the port opens (up to 2 min)
            if health.status_code == 200:
                break
            assert child.poll() is None, "".join(said)
            threading.Event().wait(0.1)
            health = httpx.get(f"{root}/health")
        assert health.status_code == 200, health.text
        answer = client(base_url).chat.completions.create(
            model="auto", messages=HELLO, max_tokens=4)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 0  # shut down cleanly: the models stopped, then it returned
        while "zeta-desktop serve: stopped" not in said[-1]:
            said.append(lines.get(timeout=10))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_web_pages_are_refused_unless_their_origin_is_allowed(tiny_config: AppConfig,
                                                              tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path, cors_origins=["https://app.example"]) as served:
        chat = f"{served.base_url}/chat/completions"
        body = json.dumps({"model": "auto", "messages": HELLO, "max_tokens": 2})
        before = len(served.api.turns)
        # A page posting straight to loopback with no Content-Type (no preflight).
        for headers in ({"origin": "https://evil.example"},
                        {"origin": "https://evil.example", "content-type": "application/json"},
                        {"sec-fetch-site": "cross-site", "content-type": "application/json"}):
            refused = httpx.post(chat, content=body, headers=headers)
            assert refused.status_code == 403, headers
            assert refused.json()["error"]["code"] == "origin_not_allowed"
        plain = httpx.post(chat, content=body, headers={"content-type": "text/plain"})
        assert plain.status_code == 415
        assert len(served.api.turns) == before  # nothing refused reached the models
        allowed = httpx.post(chat, content=body, headers={
            "origin": "https://app.example", "content-type": "application/json"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"


def test_what_would_be_wrong_if_ignored_is_refused(tiny_config: AppConfig,
                                                   tmp_path: Path) -> None:
    with serving(tiny_config, tmp_path) as served:
        json_mode = _post(f"{served.base_url}/chat/completions", {
            "model": "auto", "messages": HELLO, "response_format": {"type": "json_object"}})
        assert json_mode.status_code == 400 and "response_format" in json_mode.text
        many = _post(f"{served.base_url}/embeddings", {"model": "auto",
                                                      "input": ["x"] * 2049})
        assert many.status_code == 400 and "input" in many.json()["error"]["message"]
        long_text = _post(f"{served.base_url}/embeddings", {"model": "auto",
                                                           "input": "word " * 1000})
        assert long_text.status_code == 200  # one long string is one input


def test_stopping_the_server_stops_the_answers_it_was_waiting_for(
        tiny_config: AppConfig, tmp_path: Path) -> None:
    reached, release = threading.Event(), threading.Event()
    with serving(tiny_config, tmp_path, loader=gated_loader(2, reached, release)) as served, \
            ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_post, f"{served.base_url}/chat/completions",
                              {"model": "coder", "messages": HELLO, "max_tokens": 30},
                              timeout=60)
        assert reached.wait(60)
        turn = served.api.turns[-1]
        served.server.stop()  # a non-streamed answer still coming: it stops too
        for _ in range(600):
            if not turn.status.active:
                break
            threading.Event().wait(0.05)
        assert turn.status.value == "stopped"
        release.set()
        with contextlib.suppress(httpx.HTTPError):  # it went with the server; the turn matters
            waiting.result(60)


def test_a_clients_request_is_read_with_its_own_messages_only(tiny_config: AppConfig,
                                                              tmp_path: Path) -> None:
    reached, release = threading.Event(), threading.Event()
    with serving(tiny_config, tmp_path, loader=gated_loader(2, reached, release)) as served, \
            ThreadPoolExecutor(2) as pool:
        code = pool.submit(client(served.base_url).chat.completions.create, model="coder",
                           max_tokens=8, messages=[{"role": "user", "content":
                                                    "Write a Python function to parse JSON."}])
        assert reached.wait(60)
        reached.clear()
        follow = pool.submit(client(served.base_url).chat.completions.create, model="coder",
                             max_tokens=8, messages=[{"role": "user", "content": "and why?"}])
        for _ in range(600):
            turns = [t for t in served.api.turns if t.prompt == "and why?"]
            if turns and turns[0].classification is not None:
                break
            threading.Event().wait(0.05)
        evidence = " ".join(turns[0].classification.evidence)  # type: ignore[union-attr]
        assert "turn before" not in evidence  # the other client's request is not its context
        release.set()
        assert code.result(60) and follow.result(60)
        # Once ended, a client's prompt is kept only as the preview's line.
        long_prompt = "ab " * 100  # 300 characters, within the tiny context
        client(served.base_url).chat.completions.create(
            model="coder", max_tokens=2, messages=[{"role": "user", "content": long_prompt}])
        assert len(served.api.turns[-1].prompt) == 200 and served.api.turns[-1].answer == ""
