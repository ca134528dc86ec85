"""Model discovery over a fake home of real tiny GGUF files: the usual places,
Ollama's manifests, split, corrupt and truncated files, and the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from test_cli import run_cli
from tiny_gguf import write_tiny_llama

from zeta_desktop.core.models.discovery import Place, default_places, scan
from zeta_desktop.core.models.gguf_info import read_info
from zeta_desktop.core.models.memory import estimate


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home directory laid out as LM Studio, Ollama and the HF cache lay theirs."""
    root = tmp_path_factory.mktemp("home")
    snapshot = root / ".cache/huggingface/hub/models--acme--tiny-chat-GGUF/snapshots/abc123"
    snapshot.mkdir(parents=True)
    write_tiny_llama(snapshot / "tiny-chat-f32.gguf")
    lmstudio = root / ".lmstudio/models/acme/tiny-embed-GGUF"
    lmstudio.mkdir(parents=True)
    write_tiny_llama(lmstudio / "tiny-embed.gguf", seed=1, pooling_mean=True, chat_template=None)
    split = root / ".cache/llama.cpp"
    split.mkdir(parents=True)
    write_tiny_llama(split / "big.gguf", split_max_tensors=10)
    # Ollama: the manifest names the model; the weights are a content-addressed blob.
    ollama = root / ".ollama/models"
    (ollama / "blobs").mkdir(parents=True)
    blob_source = write_tiny_llama(root / "ollama-source.gguf", seed=2)
    digest = hashlib.sha256(blob_source.read_bytes()).hexdigest()
    shutil.move(blob_source, ollama / "blobs" / f"sha256-{digest}")
    manifest = ollama / "manifests/registry.ollama.ai/library/tinyllama/q8"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "0" * 64},
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}"},
    ]}))
    mine = root / "models"
    mine.mkdir()
    (mine / "corrupt.gguf").write_bytes(b"this is not a gguf file at all" * 10)
    whole = write_tiny_llama(root / "whole.gguf", seed=3)
    (mine / "truncated.gguf").write_bytes(whole.read_bytes()[:200])
    (mine / "notes.txt").write_text("not a model")
    return root


def places(home: Path) -> list[Place]:
    return [*default_places(env={}, home=home), Place("mine", home / "models")]


def test_the_usual_places_and_a_users_folder_are_found_with_their_headers(home: Path) -> None:
    progress: list[tuple[int, int]] = []
    found = {f.display_name: f for f in scan(places(home),
                                             lambda done, total, _p: progress.append(
                                                 (done, total)))}
    assert set(found) == {
        "acme/tiny-chat-GGUF/tiny-chat-f32.gguf", "acme/tiny-embed-GGUF/tiny-embed.gguf",
        "big-00001-of-00003.gguf", "tinyllama:q8", "corrupt.gguf", "truncated.gguf",
    }
    assert progress[-1] == (6, 6) and progress[0] == (0, 6)
    chat = found["acme/tiny-chat-GGUF/tiny-chat-f32.gguf"]
    assert chat.place == "Hugging Face cache"
    assert chat.info.as_dict() | {"path": ""} == {
        "path": "", "name": "zeta-tiny-test", "architecture": "llama", "parameters": 122688,
        "quantization": "F32", "context_length": 512, "kind": "chat", "chat_template": True,
        "file_bytes": chat.info.path.stat().st_size, "parts": 1,
    }
    assert found["acme/tiny-embed-GGUF/tiny-embed.gguf"].info.kind == "embedding"
    split = found["big-00001-of-00003.gguf"].info
    assert len(split.parts) == 3 and split.parameters == 122688  # one model, all its parts
    assert split.file_bytes == sum(p.stat().st_size for p in split.parts)
    assert found["tinyllama:q8"].place == "Ollama"
    for name in ("corrupt.gguf", "truncated.gguf"):
        assert found[name].info.kind == "unreadable"
        assert "not a readable GGUF file" in found[name].info.error


def test_a_split_model_missing_a_part_says_which(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "m.gguf", split_max_tensors=10)
    (tmp_path / "m-00002-of-00003.gguf").unlink()
    info = read_info(tmp_path / "m-00001-of-00003.gguf")
    assert info.error == "split model: missing m-00002-of-00003.gguf"


def test_the_environment_moves_the_places(tmp_path: Path) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "OLLAMA_MODELS": str(tmp_path / "ol")}
    paths = {p.label: p.path for p in default_places(env=env, home=tmp_path)}
    assert paths["Hugging Face cache"] == tmp_path / "hf" / "hub"
    assert paths["Ollama"] == tmp_path / "ol"
    env["HF_HUB_CACHE"] = str(tmp_path / "hub-here")
    assert default_places(env=env, home=tmp_path)[0].path == tmp_path / "hub-here"


def test_the_estimate_grows_with_the_context_and_moves_to_the_gpu(home: Path) -> None:
    info = next(f.info for f in scan(places(home)) if f.display_name == "tinyllama:q8")
    small, large = estimate(info, 512), estimate(info, 4096)
    # 2 layers x n_ctx x 4 kv heads x (16 + 16) x 2 bytes
    assert large.kv_cache - small.kv_cache == 2 * (4096 - 512) * 4 * 32 * 2
    assert small.vram_bytes == 0 and small.ram_bytes == small.total_bytes
    offloaded = estimate(info, 512, n_gpu_layers=-1)
    assert offloaded.weights_vram == info.file_bytes and offloaded.ram_bytes == 0


def test_models_cli_prints_one_json_object_per_model(home: Path) -> None:
    result = run_cli("models", "--json", "--only-paths", "--path", str(home / "models"),
                     "--path", str(home / ".cache/llama.cpp"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"big-00001-of-00003.gguf", "corrupt.gguf", "truncated.gguf"}
    big = by_name["big-00001-of-00003.gguf"]
    for key in ("name", "architecture", "parameters", "quantization", "context_length",
                "kind", "estimate_bytes"):
        assert key in big
    assert big["estimate_bytes"] > big["file_bytes"]
    assert "error" in by_name["corrupt.gguf"]
    text = run_cli("models", "--only-paths", "--path", str(home / "models"))
    assert "unreadable" in text.stdout and "corrupt.gguf" in text.stdout
    from zeta_desktop.core.engines.build_info import build_info

    assert build_info().describe() in text.stdout.splitlines()


def test_a_role_is_suggested_from_the_header_and_the_name(tmp_path: Path) -> None:
    from zeta_desktop.core.models.suits import suggested_role

    chat = read_info(write_tiny_llama(tmp_path / "qwen2.5-coder-7b-instruct-q4_k_m.gguf"))
    assert suggested_role(chat) == "coder"
    thinker = read_info(write_tiny_llama(tmp_path / "deepseek-r1-distill-qwen-14b.gguf"))
    assert suggested_role(thinker) == "reasoner"
    embed = read_info(write_tiny_llama(tmp_path / "e.gguf", pooling_mean=True,
                                       chat_template=None))
    assert suggested_role(embed) == "embedder"
    plain = read_info(write_tiny_llama(tmp_path / "llama-3.2-3b-instruct.gguf"))
    assert suggested_role(plain) == "coder"  # a small general chat model
    plain.parameters = 14_000_000_000
    assert suggested_role(plain) == "reasoner"  # a 14B-class one


@pytest.mark.parametrize("which", ["tiny", "demo", "embedder", "split"])
def test_the_fast_header_reader_agrees_with_the_gguf_packages(which: str, tiny_model: Path,
                                                              tmp_path: Path) -> None:
    import gguf

    from zeta_desktop.core.models.files import resolve_model
    from zeta_desktop.core.models.gguf_header import read_header

    if which == "split":
        write_tiny_llama(tmp_path / "s.gguf", split_max_tensors=10)
        path = tmp_path / "s-00001-of-00003.gguf"
    else:
        path = {"tiny": tiny_model, "demo": resolve_model("").path,
                "embedder": resolve_model("", embedding_role=True).path}[which]
    fast = read_header(path)
    slow = gguf.GGUFReader(path)
    kept = {k: f for k, f in slow.fields.items() if not k.startswith("GGUF.")}  # its own
    assert set(fast.fields) == set(kept)
    for key, field in kept.items():
        value = fast.fields[key]
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            assert value.length == len(field.data), key
        else:
            assert value == pytest.approx(field.contents()), key
    assert [(t.name, t.shape, t.type_name) for t in fast.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), t.tensor_type.name) for t in slow.tensors]
