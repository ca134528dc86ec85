"""The llama-cpp engine on real GGUF files: tiny ones written here, and bad ones."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import gguf
import numpy as np
import pytest
from tiny_gguf import write_tiny_llama

from zeta_desktop.core.engine import LoadSettings, ModelLoadError, PromptTooLongError
from zeta_desktop.core.llama_engine import LlamaEngine

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
