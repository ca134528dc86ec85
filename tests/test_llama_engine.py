"""The llama-cpp engine on real GGUF files: tiny ones written here, and bad ones."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import gguf
import numpy as np
import pytest
from tiny_gguf import CHATML_TEMPLATE, write_tiny_llama

from zeta_desktop.core.engines.base import LoadSettings, ModelLoadError, PromptTooLongError
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.models.files import find_demo_model

pytestmark = pytest.mark.model

CHAT = LoadSettings(n_ctx=256, n_gpu_layers=0, n_threads=1, embedding=False)
EMBED = LoadSettings(n_ctx=256, n_gpu_layers=0, n_threads=1, embedding=True)


def test_streams_real_tokens(tiny_model: Path) -> None:
    engine = LlamaEngine.load(tiny_model, CHAT)
    try:
        pieces = list(
            engine.stream_chat(
                [{"role": "user", "content": "hello world"}],
                max_tokens=12,
                temperature=0.8,
                cancel=threading.Event(),
            )
        )
    finally:
        engine.close()
    # The tiny model never emits end-of-generation, so it runs to max_tokens.
    assert len(pieces) == 12
    assert all(isinstance(p, str) and p for p in pieces)


def library_chat_text(engine: LlamaEngine, messages: list, max_tokens: int) -> str:
    """The answer llama-cpp-python's own streaming chat completion gives."""
    chunks = engine._llm.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True
    )
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)


def greedy_answer(engine: LlamaEngine, messages: list, max_tokens: int) -> str:
    pieces = engine.stream_chat(
        messages, max_tokens=max_tokens, temperature=0.0, cancel=threading.Event()
    )
    return "".join(pieces)


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three colours."},
    {"role": "assistant", "content": "Red, green, blue."},
    {"role": "user", "content": "And three fruits, in French?"},
]


@pytest.mark.parametrize("chat_template", [CHATML_TEMPLATE, None], ids=["chatml", "no-template"])
def test_same_prompt_and_sampling_as_the_librarys_chat_completion(
    tmp_path: Path, chat_template: str | None
) -> None:
    """The engine pulls tokens itself; what it asks the model must not change."""
    path = write_tiny_llama(tmp_path / "tiny.gguf", chat_template=chat_template)
    engine = LlamaEngine.load(path, CHAT)
    try:
        ours = greedy_answer(engine, CONVERSATION, 16)
        engine._llm.reset()
        theirs = library_chat_text(engine, CONVERSATION, 16)
    finally:
        engine.close()
    assert ours and ours == theirs


def test_a_real_model_ends_its_answer_where_the_library_does() -> None:
    """The demo model's answers end at its end-of-turn token, stop strings never shown."""
    engine = LlamaEngine.load(find_demo_model(), CHAT)
    try:
        for messages in (CONVERSATION, [{"role": "user", "content": "What is 2+2?"}]):
            ours = greedy_answer(engine, messages, 80)
            engine._llm.reset()
            theirs = library_chat_text(engine, messages, 80)
            engine._llm.reset()
            assert ours == theirs
            assert ours and "<|im_end|>" not in ours
    finally:
        engine.close()


def test_cancel_stops_at_the_next_token(tiny_model: Path) -> None:
    engine = LlamaEngine.load(tiny_model, CHAT)
    cancel = threading.Event()
    received = []
    try:
        for piece in engine.stream_chat(
            [{"role": "user", "content": "go"}], max_tokens=200, temperature=0.8, cancel=cancel
        ):
            received.append(piece)
            if len(received) == 3:
                cancel.set()
        # and the engine still works after a cancelled stream
        again = list(
            engine.stream_chat(
                [{"role": "user", "content": "again"}],
                max_tokens=4,
                temperature=0.8,
                cancel=threading.Event(),
            )
        )
    finally:
        engine.close()
    assert len(received) == 3
    assert len(again) == 4


def test_embedding_returns_one_vector_per_text(tiny_model: Path) -> None:
    engine = LlamaEngine.load(tiny_model, EMBED)
    try:
        vectors = engine.embed(["alpha beta gamma delta", "code", "a much longer text " * 5])
        chat = list(
            engine.stream_chat(
                [{"role": "user", "content": "hi"}],
                max_tokens=3,
                temperature=0.5,
                cancel=threading.Event(),
            )
        )
    finally:
        engine.close()
    assert len(vectors) == 3
    assert {len(v) for v in vectors} == {64}  # n_embd of the tiny model
    for vector in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-3)
    assert vectors[0] != vectors[1]
    # The embedder role can also chat from the same loaded model.
    assert len(chat) == 3


def test_reading_is_measured_where_a_model_reads_into_a_cache(tiny_model: Path) -> None:
    from zeta_desktop.core.models.files import find_demo_embedder

    embedder_path = find_demo_embedder()
    assert embedder_path is not None
    decoder = LlamaEngine.load(tiny_model, EMBED)
    encoder = LlamaEngine.load(embedder_path, EMBED)
    try:
        read = decoder.measure_reading("the quick brown fox jumps over the lazy dog")
        left_in_cache = decoder.cached_tokens
        # A BERT embedder keeps no KV cache: nothing to measure, and no error.
        assert encoder.measure_reading("the quick brown fox") is None
        assert len(encoder.embed(["still embeds"])[0]) == 384
    finally:
        decoder.close()
        encoder.close()
    assert read is not None and read[0] > 5 and read[1] > 0
    assert left_in_cache == 0  # forgotten: the next prompt starts fresh


def test_prompt_larger_than_context_is_a_clear_error(tiny_model: Path) -> None:
    engine = LlamaEngine.load(tiny_model, CHAT)
    try:
        with pytest.raises(PromptTooLongError, match="context holds 256"):
            list(
                engine.stream_chat(
                    [{"role": "user", "content": "alpha " * 400}],
                    max_tokens=8,
                    temperature=0.5,
                    cancel=threading.Event(),
                )
            )
    finally:
        engine.close()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        LlamaEngine.load(tmp_path / "nope.gguf", CHAT)


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        LlamaEngine.load(path, CHAT)


def test_truncated_gguf_names_the_cause(tiny_model: Path, tmp_path: Path) -> None:
    data = tiny_model.read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"truncated\.gguf: .*(bounds|failed to read|data)"):
        LlamaEngine.load(path, CHAT)


def test_unsupported_architecture_names_it(tmp_path: Path) -> None:
    path = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(path), "zeta-alien-arch")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="zeta-alien-arch"):
        LlamaEngine.load(path, CHAT)


def test_a_good_model_still_loads_after_bad_ones(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 64)
    with pytest.raises(ModelLoadError):
        LlamaEngine.load(bad, CHAT)
    good = write_tiny_llama(tmp_path / "good.gguf", seed=3)
    engine = LlamaEngine.load(good, CHAT)
    engine.close()


def test_an_answer_stops_where_the_context_ends(tiny_model: Path) -> None:
    """A prompt that leaves a few tokens of room gets that many, not an error."""
    engine = LlamaEngine.load(tiny_model, CHAT)
    try:
        words = 10
        while True:
            messages = [{"role": "user", "content": "alpha beta " * words}]
            request = engine._chat_request(messages, max_tokens=50, temperature=0.5)
            room = engine.n_ctx - len(request["prompt"])
            if room <= 6:
                break
            words += 1
        assert room > 0
        pieces = list(
            engine.stream_chat(messages, max_tokens=50, temperature=0.5, cancel=threading.Event())
        )
    finally:
        engine.close()
    assert len(pieces) == room  # the tiny model never ends on its own: it fills the context


def recording_eval(engine: LlamaEngine, after_first: threading.Event | None = None) -> list[int]:
    """Record how many tokens each llama eval call reads; optionally press Stop after the first."""
    sizes: list[int] = []
    read = engine._llm.eval

    def eval_and_record(tokens: list[int]) -> None:
        sizes.append(len(tokens))
        read(tokens)
        if after_first is not None:
            after_first.set()

    engine._llm.eval = eval_and_record
    return sizes


def test_stop_is_heard_while_a_long_prompt_is_read(tiny_model: Path) -> None:
    engine = LlamaEngine.load(tiny_model, LoadSettings(n_ctx=512, n_gpu_layers=0, n_threads=1,
                                                       embedding=False))
    engine._llm.n_batch = 32  # small batches: a 280-token prompt takes several
    cancel = threading.Event()
    sizes = recording_eval(engine, after_first=cancel)
    try:
        pieces = list(
            engine.stream_chat([{"role": "user", "content": "alpha beta gamma " * 16}],
                               max_tokens=20, temperature=0.5, cancel=cancel)
        )
    finally:
        engine.close()
    assert sizes == [32]  # Stop pressed during the first batch: no second one
    assert pieces == []


def test_a_follow_up_reads_only_what_the_conversation_added(tiny_model: Path) -> None:
    engine = LlamaEngine.load(tiny_model, LoadSettings(n_ctx=512, n_gpu_layers=0, n_threads=1,
                                                       embedding=False))
    first = [{"role": "user", "content": "alpha beta gamma delta " * 10}]
    try:
        answer = greedy_answer(engine, first, 8)
        follow_up = [*first, {"role": "assistant", "content": answer},
                     {"role": "user", "content": "code model"}]
        prompt = engine._chat_request(follow_up, max_tokens=8, temperature=0.0)["prompt"]
        sizes = recording_eval(engine)
        ours = greedy_answer(engine, follow_up, 8)
        engine._llm.reset()
        engine._llm.eval = type(engine._llm).eval.__get__(engine._llm)
        theirs = library_chat_text(engine, follow_up, 8)
    finally:
        engine.close()
    assert 0 < sizes[0] < len(prompt) // 4  # the first turn stayed in the cache
    assert ours == theirs  # and the answer is the one a fresh read gives
