from __future__ import annotations

from pathlib import Path

import pytest

from zeta_desktop.core.models.files import (
    DEMO_FILENAME,
    ModelFileError,
    check_model_file,
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
