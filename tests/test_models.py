from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.models import files
from zeta_desktop.core.models.files import (
    DEMO_EMBEDDER_FILENAME,
    DEMO_FILENAME,
    ModelFileError,
    check_model_file,
    convert_demo_embedder,
    find_demo_embedder,
    find_demo_model,
    resolve_model,
)


def test_demo_model_is_installed_and_is_a_gguf() -> None:
    demo = find_demo_model()
    assert demo is not None and demo.name == DEMO_FILENAME
    check_model_file(demo)
    source = resolve_model("")
    assert source.is_demo and source.path == demo


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        check_model_file(tmp_path / "absent.gguf")


def test_folder_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is a folder"):
        check_model_file(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty or truncated"):
        check_model_file(path)


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x00\x01\x02\x03 not gguf")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        check_model_file(path)


def test_user_path_is_used_as_given(tmp_path: Path) -> None:
    source = resolve_model(str(tmp_path / "m.gguf"))
    assert not source.is_demo
    assert source.display_name == "m.gguf"


@pytest.mark.model
def test_the_demo_embedder_is_all_minilm_and_embeds_as_sentence_transformers_does(
    tmp_path: Path,
) -> None:
    """Converted with numpy and `gguf` from the wheel's safetensors, run by llama.cpp:
    the similarities the sentence-transformers quickstart prints for this model."""
    out = convert_demo_embedder(tmp_path / "minilm.gguf")
    check_model_file(out)
    engine = LlamaEngine.load(out, LoadSettings(512, 0, 1, embedding=True))
    try:
        vectors = np.array(engine.embed([
            "The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.",
        ]))
        tokens = engine._llm.tokenize(b"unaffable", add_bos=True)  # WordPiece, not [UNK]
    finally:
        engine.close()
    similarity = vectors @ vectors.T
    assert similarity[0, 1] == pytest.approx(0.6660, abs=0.002)
    assert similarity[0, 2] == pytest.approx(0.1046, abs=0.002)
    assert similarity[1, 2] == pytest.approx(0.1411, abs=0.002)
    assert tokens == [101, 14477, 20961, 3468, 102]  # [CLS] un ##aff ##able [SEP]


def test_an_embedding_role_with_no_file_gets_the_demo_embedder_which_cannot_chat() -> None:
    source = resolve_model("", embedding_role=True)
    assert source.is_demo and not source.can_chat
    assert source.path.name == DEMO_EMBEDDER_FILENAME
    assert "all-MiniLM-L6-v2" in source.display_name
    assert resolve_model("", embedding_role=False).can_chat
    assert resolve_model("/models/mine.gguf", embedding_role=True).can_chat  # the user's call


def test_a_wheel_with_other_weights_is_refused_and_the_chat_demo_embeds_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "model"
    fake.mkdir()
    (fake / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    monkeypatch.setattr(files, "_demo_embedder_folder", lambda: fake)
    with pytest.raises(ModelFileError, match="is not all-MiniLM-L6-v2"):
        convert_demo_embedder(tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()
    monkeypatch.setattr(files, "installed_embedder_path", lambda: tmp_path / "none.gguf")
    monkeypatch.setattr(files, "_cached_embedder_path", lambda: tmp_path / "cache.gguf")
    assert find_demo_embedder() is None
    source = resolve_model("", embedding_role=True)
    assert source.can_chat and source.path == find_demo_model()
