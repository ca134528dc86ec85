"""Where people keep GGUF models, and what is there.

The usual places: the Hugging Face cache, LM Studio's and GPT4All's folders,
llama.cpp's cache, Ollama's blob store (read through its manifests, so a blob
shows by its Ollama name), and folders the user adds. Each file's header is
read (`gguf_info`), never loaded. An unreadable file is listed with the
reason; nothing stops a scan but its `stop` event.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from zeta_desktop.core.models.gguf_info import SPLIT_NAME, GGUFInfo, read_info

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


@dataclass(frozen=True)
class Place:
    label: str  # "Hugging Face cache", "Ollama", a folder the user added
    path: Path
    ollama: bool = False  # a blob store read through manifests


@dataclass
class Found:
    info: GGUFInfo
    place: str
    display_name: str  # what the user knows it by (an Ollama tag, org/repo/file)


def default_places(env: Mapping[str, str] | None = None, home: Path | None = None
                   ) -> list[Place]:
    env = os.environ if env is None else env
    home = Path.home() if home is None else home

    def from_env(name: str, default: Path) -> Path:
        return Path(env[name]) if env.get(name) else default

    hf_hub = from_env("HF_HUB_CACHE",
                      from_env("HF_HOME", home / ".cache" / "huggingface") / "hub")
    ollama = from_env("OLLAMA_MODELS", home / ".ollama" / "models")
    llama_cache = from_env("LLAMA_CACHE", home / ".cache" / "llama.cpp")
    return [
        Place("Hugging Face cache", hf_hub),
        Place("LM Studio", home / ".lmstudio" / "models"),
        Place("LM Studio", home / ".cache" / "lm-studio" / "models"),
        Place("GPT4All", home / ".local" / "share" / "nomic.ai" / "GPT4All"),
        Place("llama.cpp cache", llama_cache),
        Place("Ollama", ollama, ollama=True),
    ]


def _ollama_models(root: Path) -> Iterator[tuple[str, Path]]:
    """(name:tag, blob) for each model manifest under an Ollama store."""
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(manifests.rglob("*")):
        if not manifest.is_file():
            continue
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
        except (OSError, ValueError, AttributeError):
            continue
        digest = next((layer.get("digest", "") for layer in layers
                       if isinstance(layer, dict)
                       and layer.get("mediaType") == OLLAMA_MODEL_LAYER), "")
        if not digest.startswith("sha256:"):
            continue
        # manifests/<registry>/<namespace>/<model>/<tag>
        relative = manifest.relative_to(manifests).parts
        namespace, model, tag = (relative[-3:] if len(relative) >= 3 else ("", *relative))
        name = f"{model}:{tag}" if namespace in ("library", "") else f"{namespace}/{model}:{tag}"
        yield name, root / "blobs" / digest.replace(":", "-")


def _gguf_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root, followlinks=True):
        for name in sorted(files):
            if not name.lower().endswith(".gguf"):
                continue
            match = SPLIT_NAME.match(name)
            if match is not None and int(match.group("index")) != 1:
                continue  # a split model shows once, by its first part
            yield Path(dirpath) / name


def _display_name(place: Place, path: Path) -> str:
    try:
        relative = path.relative_to(place.path)
    except ValueError:
        return path.name
    parts = relative.parts
    if place.label == "Hugging Face cache" and parts and parts[0].startswith("models--"):
        repo = parts[0].removeprefix("models--").replace("--", "/")
        return f"{repo}/{path.name}"
    return str(relative)


def candidates(places: list[Place]) -> list[tuple[Place, Path, str]]:
    """Every model file the places hold (not read yet), each real file once."""
    seen: set[Path] = set()
    found = []
    for place in places:
        if not place.path.is_dir():
            continue
        if place.ollama:
            listed = [(blob, name) for name, blob in _ollama_models(place.path)]
        else:
            listed = [(p, _display_name(place, p)) for p in _gguf_files(place.path)]
        for path, name in listed:
            try:
                real = path.resolve()
            except OSError:
                real = path
            if real in seen:
                continue
            seen.add(real)
            found.append((place, path, name))
    return found


Progress = Callable[[int, int, Path], None]  # (done, total, the file being read)


def scan(places: list[Place], on_progress: Progress | None = None,
         stop: threading.Event | None = None) -> list[Found]:
    """Read every model's header; call it off the GUI thread."""
    listed = candidates(places)
    results = []
    for done, (place, path, name) in enumerate(listed):
        if stop is not None and stop.is_set():
            break
        if on_progress is not None:
            on_progress(done, len(listed), path)
        info = read_info(path)
        results.append(Found(info, place.label, name))
    if on_progress is not None:
        on_progress(len(results), len(listed), Path())
    return results
