"""Roles on servers: replicas balanced, a server killed or downed mid-work,
a busy one (429), and API keys that never land anywhere they could leak.

Every server is real and on loopback: llama-cpp-python's OpenAI-compatible
server serving the tiny model, started and killed by the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from servers import JSON_HEADERS, LlamaServer, ScriptedServer, wait_until
from session_events import TIMEOUT, events_of, make_session

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.chat.turn_runner import TurnStatus
from zeta_desktop.core.config import load_config, save_config
from zeta_desktop.core.conversation import exchange
from zeta_desktop.core.engines.endpoint import parse_endpoint, store_keyring_key
from zeta_desktop.core.fleet.worker import WorkerState
from zeta_desktop.core.settings import AppConfig, ReplicaConfig, RoleConfig
from zeta_desktop.core.store.history import HistoryStore

pytestmark = pytest.mark.model
PROMPT = "Tell me a long story about a lighthouse."


@pytest.fixture
def two_servers(tiny_model: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    servers = LlamaServer(tiny_model, "tiny").start(), LlamaServer(tiny_model, "tiny").start()
    yield servers
    for server in servers:
        server.stop()


def replica_config(*urls: str, max_tokens: int = 48, **replica: object) -> AppConfig:
    config = AppConfig(roles={
        "coder": RoleConfig(
            replicas=[ReplicaConfig(url=url, **replica) for url in urls],  # type: ignore[arg-type]
            max_tokens=max_tokens, temperature=0.0,
        ),
    })
    config.router.semantic = False
    return config


@pytest.fixture
def sessions() -> Iterator[list[ChatSession]]:
    made: list[ChatSession] = []
    yield made
    for session in made:
        session.shutdown(TIMEOUT)


def start(sessions: list[ChatSession], config: AppConfig, **kwargs: object) -> ChatSession:
    session = make_session(config, **kwargs)  # type: ignore[arg-type]
    sessions.append(session)
    return session


def test_two_replicas_of_a_role_share_its_load(two_servers, sessions) -> None:
    session = start(sessions, replica_config(*(s.endpoint for s in two_servers)))
    assert list(session.fleet.endpoints) == ["coder", "coder#2"]
    turns = [session.send(f"{PROMPT} ({i})", with_history=False) for i in range(4)]
    events_of(session).wait_done(*turns)
    assert not events_of(session).failed
    used = [session.runner.turn(t).role for t in turns]
    assert set(used) == {"coder", "coder#2"}, used
    # The second went to the idle replica, and the decision says so.
    second = session.runner.turn(turns[1])
    assert "replica coder#2" in second.decision.reason
    for key in ("coder", "coder#2"):
        assert session.telemetry.model(key).completed >= 1


def test_a_server_killed_mid_answer_is_retried_on_the_other_replica(
        two_servers, sessions) -> None:
    # temperature 0 and no end-of-text from the tiny model for this prompt: the
    # answer runs its 2000 tokens (seconds), so it is mid-answer when killed.
    session = start(sessions, replica_config(*(s.endpoint for s in two_servers),
                                             max_tokens=2000))
    turn_id = session.send(PROMPT)
    events = events_of(session)
    events.wait_tokens(turn_id, 3)
    first = session.runner.turn(turn_id).role
    victim = two_servers[0] if first == "coder" else two_servers[1]
    victim.kill()
    wait_until(lambda: turn_id in events.retried, TIMEOUT, "the retry")
    failed_key, why = events.retried[turn_id]
    assert failed_key == first and "connection broke mid-answer" in why
    survivor = "coder#2" if first == "coder" else "coder"
    wait_until(lambda: session.runner.turn(turn_id).role == survivor
               and session.runner.turn(turn_id).answer, TIMEOUT, "the retry's first tokens")
    session.stop(turn_id)
    events.wait_done(turn_id)
    turn = session.runner.turn(turn_id)
    assert turn.status is TurnStatus.STOPPED and turn.answer
    answer = session.conversation.get(turn.answer_id)
    assert answer.meta.retries and "partial answer kept:" in answer.meta.retries[0]
    assert session.telemetry.model(first).failed == 1  # a crash trips the breaker


def test_a_downed_replica_gets_nothing_and_comes_back_by_itself(two_servers, sessions) -> None:
    session = start(sessions, replica_config(*(s.endpoint for s in two_servers)))
    downed = session.fleet.worker("coder#2")
    two_servers[1].kill()
    session.fleet.health.check_now()
    wait_until(lambda: downed.state is WorkerState.UNAVAILABLE, TIMEOUT, "the replica to drop")
    assert "unreachable" in downed.detail
    turns = [session.send(f"{PROMPT} ({i})", with_history=False) for i in range(3)]
    events_of(session).wait_done(*turns)
    assert [session.runner.turn(t).role for t in turns] == ["coder"] * 3
    assert not events_of(session).failed

    two_servers[1].start()  # the same port: the same replica
    session.fleet.health.check_now()
    wait_until(lambda: downed.state is WorkerState.READY, TIMEOUT, "the replica to return")
    turns = [session.send(f"{PROMPT} ({i})", with_history=False) for i in range(2)]
    events_of(session).wait_done(*turns)
    assert {session.runner.turn(t).role for t in turns} == {"coder", "coder#2"}


def test_a_busy_server_sends_the_prompt_elsewhere_without_tripping_its_breaker(
        tiny_model: Path, sessions) -> None:
    busy = ScriptedServer({
        "/v1/models": (200, JSON_HEADERS, [b'{"data": [{"id": "tiny"}]}']),
        "/v1/chat/completions": (429, {**JSON_HEADERS, "Retry-After": "30"},
                                 [b'{"error": {"message": "all slots are busy"}}']),
    })
    real = LlamaServer(tiny_model, "tiny").start()
    try:
        session = start(sessions, replica_config(f"{busy.url}#tiny", real.endpoint))
        turn_id = session.send(PROMPT)
        events = events_of(session)
        events.wait_done(turn_id)
        assert turn_id in events.finished, events.failed
        assert session.runner.turn(turn_id).role == "coder#2"
        failed_key, why = events.retried[turn_id]
        assert failed_key == "coder" and "busy (429: all slots are busy); retry after 30 s" in why
        signals = session.telemetry.snapshot().models["coder"]
        assert signals.failed == 0 and signals.consecutive_failures == 0
        assert signals.cooldown_left_s > 20  # kept off as long as the server asked
        # Told to wait, the next prompt goes straight to the other replica.
        second = session.send(PROMPT + " Again.")
        events.wait_done(second)
        assert session.runner.turn(second).role == "coder#2"
        assert not session.runner.turn(second).attempts
    finally:
        real.stop()
        busy.close()


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps its secrets in memory, for the test."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


def test_api_keys_come_from_the_keyring_or_the_environment_and_never_leak(
        tiny_model: Path, sessions, tmp_path: Path, monkeypatch, caplog) -> None:
    planted = "sk-zeta-PLANTED-7f3a9c"
    server = LlamaServer(tiny_model, "tiny", api_key=planted).start()
    previous = keyring.get_keyring()
    store = HistoryStore(tmp_path / "history.sqlite3")
    try:
        # Without the key the server refuses, and the replica says why.
        config = replica_config(server.endpoint)
        refused = start(sessions, config)
        assert refused.fleet.worker("coder").state is WorkerState.UNAVAILABLE
        assert "refused the API key (401)" in refused.fleet.worker("coder").detail

        # From the environment variable the config names.
        monkeypatch.setenv("ZETA_TEST_KEY", planted)
        caplog.set_level(logging.DEBUG)
        config = replica_config(server.endpoint, api_key_env="ZETA_TEST_KEY")
        config_path = save_config(config, tmp_path / "config.toml")
        session = start(sessions, load_config(config_path).config, store=store)
        turn_id = session.send(PROMPT)
        events_of(session).wait_done(turn_id)
        assert turn_id in events_of(session).finished, events_of(session).failed

        # From the OS keyring, under the server's URL.
        monkeypatch.delenv("ZETA_TEST_KEY")
        keyring.set_keyring(MemoryKeyring())
        store_keyring_key(parse_endpoint(server.endpoint).base_url, planted)
        from_keyring = start(sessions, replica_config(server.endpoint))
        other = from_keyring.send(PROMPT)
        events_of(from_keyring).wait_done(other)
        assert other in events_of(from_keyring).finished

        # A key written into the config is refused, and not kept.
        (tmp_path / "keyed.toml").write_text(
            f"[roles.coder]\nreplicas = [{{url = '{server.endpoint}', api_key = '{planted}'}}]\n")
        keyed = load_config(tmp_path / "keyed.toml")
        assert any("never lives in the config file" in p for p in keyed.problems)
        save_config(keyed.config, tmp_path / "keyed-saved.toml")

        store.flush()
        conversation = session.conversation
        exports = exchange.dumps(conversation) + exchange.to_markdown(conversation)
        assert "lighthouse" in exports  # the history is really there
        places = {
            "config": config_path.read_bytes(),
            "config saved after a keyed one": (tmp_path / "keyed-saved.toml").read_bytes(),
            "log": caplog.text.encode(),
            "export": exports.encode(),
            "history": b"".join(p.read_bytes() for p in tmp_path.glob("history.sqlite3*")),
        }
        assert places["history"]
        for where, data in places.items():
            assert planted.encode() not in data, f"the API key leaked into the {where}"
    finally:
        while sessions:
            sessions.pop().shutdown(TIMEOUT)
        store.close()
        keyring.set_keyring(previous)
        server.stop()


def test_plain_http_is_quiet_on_this_machine_and_private_networks_only() -> None:
    for quiet in ("http://127.0.0.1:8080/v1#m", "http://localhost:1/v1#m",
                  "http://192.168.1.20:8000/v1#m", "http://10.0.0.7:11434/v1#m",
                  "https://api.example.com/v1#m"):
        assert parse_endpoint(quiet).plain_http_warning() == "", quiet
    warning = parse_endpoint("http://93.184.216.34:8000/v1#m").plain_http_warning()
    assert "plain HTTP over a public address" in warning and "https://" in warning
    assert "plain HTTP" in parse_endpoint("http://gpu-box.example.org/v1#m").plain_http_warning()
