"""Saved KV states of the real tiny model: a conversation that comes back after
another one is restored, not read again, and answers exactly as without them."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from zeta_desktop.core.engines.base import ChatMessage, LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine

pytestmark = pytest.mark.model

SETTINGS = LoadSettings(n_ctx=512, n_gpu_layers=0, n_threads=1, embedding=False)
SYSTEM: ChatMessage = {"role": "system", "content": "You are a helpful assistant."}
MB = 1 << 20


def answer(engine: LlamaEngine, messages: list[ChatMessage]) -> str:
    return "".join(engine.stream_chat(messages, max_tokens=10, temperature=0.0,
                                      cancel=threading.Event()))


def conversation(engine: LlamaEngine, between: Callable[[], None] = lambda: None
                 ) -> tuple[list[str], list[int]]:
    """A, then B (evicting A from llama.cpp's cache), then A's follow-up; the
    answers and, per turn, the tokens found in the cache."""
    a = [SYSTEM, {"role": "user", "content": "alpha beta gamma delta " * 12}]
    b = [SYSTEM, {"role": "user", "content": "router queue thread stream " * 12}]
    answers, cached = [], []
    for messages in (a, b):
        answers.append(answer(engine, messages))
        cached.append(engine.last_cached_tokens)
    between()
    follow_up = [*a, {"role": "assistant", "content": answers[0]},
                 {"role": "user", "content": "code model zeta"}]
    answers.append(answer(engine, follow_up))
    cached.append(engine.last_cached_tokens)
    return answers, cached


@pytest.fixture
def plain_answers(tiny_model: Path) -> list[str]:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    try:
        answers, cached = conversation(engine)
    finally:
        engine.close()
    # Without saved states, A's follow-up shares with B only their common start.
    assert cached[2] <= cached[1] + 1
    return answers


def test_a_conversation_coming_back_is_restored_and_answers_the_same(
        tiny_model: Path, tmp_path: Path, plain_answers: list[str]) -> None:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    try:
        engine.keep_states(64 * MB, 0, None)
        answers, cached = conversation(engine)
        stats = engine.kv_stats
        assert stats is not None and stats.hits == 1 and stats.states >= 1
        # Only what the follow-up added was read: A's prompt and answer came back.
        assert cached[2] >= cached[1] + engine.count_tokens("alpha beta gamma delta " * 12)
        assert engine.last_prompt_tokens - cached[2] < cached[1]
        assert stats.ram_bytes <= 64 * MB
    finally:
        engine.close()
    assert answers == plain_answers


def state_size(tiny_model: Path, content: str = "alpha beta gamma delta " * 12) -> int:
    """The bytes of a saved state after a prompt like `content` and its answer."""
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    try:
        answer(engine, [SYSTEM, {"role": "user", "content": content}])
        state = engine._llm.save_state()
        return len(state.llama_state) + state.scores.nbytes + state.input_ids.nbytes
    finally:
        engine.close()


def test_a_small_budget_spills_to_disk_and_is_never_exceeded(
        tiny_model: Path, tmp_path: Path, plain_answers: list[str]) -> None:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    size = state_size(tiny_model)
    try:
        engine.keep_states(size - 1, 100 * size, tmp_path)  # no state fits in RAM
        peak = [0]
        store = engine.kv_store
        assert store is not None
        save = store.save

        def measured_save(tokens: list[int], state: object) -> None:
            save(tokens, state)
            peak[0] = max(peak[0], store.stats.ram_bytes)
        store.save = measured_save  # type: ignore[method-assign]
        answers, _ = conversation(engine)
        stats = engine.kv_stats
        assert stats is not None and stats.hits == 1
        assert peak[0] <= size - 1 and stats.ram_bytes == 0 and stats.disk_bytes > 0
        assert list(tmp_path.glob("*.kvstate.npz"))
    finally:
        engine.close()
    assert answers == plain_answers


def test_lru_keeps_the_latest_within_the_disk_budget(tiny_model: Path, tmp_path: Path) -> None:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    size = state_size(tiny_model, "alpha " * 20)
    try:
        engine.keep_states(size + size // 2, int(1.5 * size), tmp_path)  # one in RAM, one on disk
        for word in ("alpha", "beta", "gamma", "delta"):
            answer(engine, [SYSTEM, {"role": "user", "content": f"{word} " * 20}])
        stats = engine.kv_stats
        assert stats is not None and stats.states == 2
        assert stats.ram_bytes <= size + size // 2 and stats.disk_bytes <= int(1.5 * size)
        assert len(list(tmp_path.glob("*.kvstate.npz"))) == 1
    finally:
        engine.close()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_file_is_dropped_and_the_prompt_read_whole(
        tiny_model: Path, tmp_path: Path, plain_answers: list[str], damage: str,
        caplog: pytest.LogCaptureFixture) -> None:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    size = state_size(tiny_model)

    def damage_files() -> None:
        for file in tmp_path.glob("*.kvstate.npz"):
            data = bytearray(file.read_bytes())
            if damage == "truncate":
                data = data[: len(data) // 2]
            else:
                middle = len(data) // 2
                flipped = bytes(byte ^ 0xFF for byte in data[middle : middle + 64])
                data[middle : middle + 64] = flipped
            file.write_bytes(bytes(data))
    try:
        engine.keep_states(size - 1, 100 * size, tmp_path)
        with caplog.at_level(logging.WARNING):
            answers, cached = conversation(engine, between=damage_files)
        stats = engine.kv_stats
        assert stats is not None and stats.hits == 0
        assert cached[2] <= cached[1] + 1
        assert sum("dropped KV state" in r.message for r in caplog.records) == 1
    finally:
        engine.close()
    assert answers == plain_answers


def test_a_state_that_does_not_load_is_dropped(
        tiny_model: Path, plain_answers: list[str], caplog: pytest.LogCaptureFixture) -> None:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    try:
        engine.keep_states(64 * MB, 0, None)
        store = engine.kv_store
        assert store is not None

        def wrong_size() -> None:
            for state in store._ram.values():
                state.llama_state = state.llama_state[:-100]
                state.llama_state_size -= 100
        with caplog.at_level(logging.WARNING):
            answers, cached = conversation(engine, between=wrong_size)
        assert cached[2] <= cached[1] + 1
        assert any("dropped a saved KV state" in r.message for r in caplog.records)
    finally:
        engine.close()
    assert answers == plain_answers


def test_a_full_disk_stops_spilling_and_says_so_once(
        tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    size = state_size(tiny_model)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("zeta_desktop.core.engines.kv_store.np.savez", full)
    try:
        engine.keep_states(size // 2, 100 * size, tmp_path)
        with caplog.at_level(logging.WARNING):
            for word in ("alpha", "beta", "gamma", "delta"):
                answer(engine, [SYSTEM, {"role": "user", "content": f"{word} " * 20}])
        assert sum("disk full" in r.message for r in caplog.records) == 1
        assert not list(tmp_path.glob("*.kvstate.npz"))
    finally:
        engine.close()


def test_another_fingerprint_drops_the_files(tiny_model: Path, tmp_path: Path) -> None:
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    size = state_size(tiny_model)
    try:
        engine.keep_states(size // 2, 100 * size, tmp_path)  # spilled at once
        for word in ("alpha", "beta"):
            answer(engine, [SYSTEM, {"role": "user", "content": f"{word} " * 20}])
        assert list(tmp_path.glob("*.kvstate.npz"))
    finally:
        engine.close()
    other = LoadSettings(n_ctx=256, n_gpu_layers=0, n_threads=1, embedding=False)
    engine = LlamaEngine.load(tiny_model, other)
    try:
        engine.keep_states(size, 100 * size, tmp_path)
        assert not list(tmp_path.glob("*.kvstate.npz"))
        assert engine.kv_stats is not None and engine.kv_stats.states == 0
    finally:
        engine.close()


def test_the_settings_turn_states_on_for_each_local_model(
        tiny_model: Path, tmp_path: Path) -> None:
    from zeta_desktop.core.engines.kept_states import keeping_states
    from zeta_desktop.core.settings.prompt_cache import PromptCacheConfig

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    orphan = tmp_path / f"{ended.stdout.strip()}-1"  # a process that has ended
    orphan.mkdir()
    (orphan / "old.kvstate.npz").write_bytes(b"left behind")
    load = keeping_states(LlamaEngine.load, PromptCacheConfig(ram_mb=1, disk_mb=64), tmp_path)
    assert not orphan.exists()
    engine = load(tiny_model, SETTINGS)
    try:
        _, cached = conversation(engine)
        assert engine.kv_stats is not None and engine.kv_stats.hits == 1
        assert cached[2] > cached[1]
        assert engine.kv_stats.ram_bytes <= 1 << 20
        assert len(list(tmp_path.iterdir())) == 1  # this engine's own folder
    finally:
        engine.close()
    assert not list(tmp_path.iterdir())  # removed with the engine
    off = keeping_states(LlamaEngine.load, PromptCacheConfig(enabled=False), tmp_path)
    engine = off(tiny_model, SETTINGS)
    try:
        assert engine.kv_stats is None
    finally:
        engine.close()


def test_the_worker_shows_its_engines_saved_states(tiny_model: Path, tmp_path: Path) -> None:
    from session_events import TIMEOUT

    from zeta_desktop.core.engines.kept_states import keeping_states
    from zeta_desktop.core.fleet.worker import ModelWorker
    from zeta_desktop.core.settings.prompt_cache import PromptCacheConfig

    load = keeping_states(LlamaEngine.load, PromptCacheConfig(ram_mb=64, disk_mb=0), tmp_path)
    worker = ModelWorker("coder", tiny_model, SETTINGS, load)
    worker.start()
    try:
        assert worker.wait_loaded(TIMEOUT)
        stats = worker.kv_stats
        assert stats is not None and (stats.hits, stats.states, stats.ram_bytes) == (0, 0, 0)
    finally:
        worker.shutdown(TIMEOUT)


def test_the_router_counts_a_saved_conversation_as_held(tiny_model: Path, tmp_path: Path) -> None:
    """After A then B on one model, A's follow-up is held: its state was saved
    when B came, so the router need not send it elsewhere to be read again."""
    from session_events import TIMEOUT
    from test_held_prefix import ask

    from zeta_desktop.core.engines.kept_states import keeping_states
    from zeta_desktop.core.fleet.prefix_cache import PromptKeys
    from zeta_desktop.core.fleet.worker import ModelWorker
    from zeta_desktop.core.settings.prompt_cache import PromptCacheConfig

    def held_after_a_and_b(cache: PromptCacheConfig) -> tuple[int, int, int]:
        load = keeping_states(LlamaEngine.load, cache, tmp_path / str(cache.enabled))
        worker = ModelWorker("coder", tiny_model, SETTINGS, load)
        worker.start()
        try:
            assert worker.wait_loaded(TIMEOUT)
            a = [SYSTEM, {"role": "user", "content": "alpha beta gamma delta " * 12}]
            b = [SYSTEM, {"role": "user", "content": "router queue thread stream " * 12}]
            said, _ = ask(worker, a, max_tokens=6)
            ask(worker, b, max_tokens=6)
            follow_up = [*a, {"role": "assistant", "content": said},
                         {"role": "user", "content": "code model zeta"}]
            reading = worker.reading(PromptKeys.of(follow_up))
            _, stats = ask(worker, follow_up, max_tokens=6)
            return reading.held_tokens, PromptKeys.of(follow_up[:-1]).tokens(), \
                stats.cached_tokens
        finally:
            worker.shutdown(TIMEOUT)

    held, conversation_a, restored = held_after_a_and_b(PromptCacheConfig(ram_mb=64, disk_mb=0))
    assert held == conversation_a
    assert restored > 50  # and the engine did restore it: the record told the truth
    # Without saved states only the shared system prompt is held.
    held_off, _, read_again = held_after_a_and_b(PromptCacheConfig(enabled=False))
    assert held_off < conversation_a // 3 and read_again < restored
