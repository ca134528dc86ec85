"""Labelled example prompts, embedded once per model file and cached on disk."""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from pathlib import Path

from zeta_desktop.core.resources import resource_path
from zeta_desktop.core.routing.classifier import CHAT_KINDS, Embedder, SemanticScorer, TaskKind

log = logging.getLogger(__name__)

EXAMPLES_FILE = "router_examples.toml"


def load_examples(path: Path | None = None) -> dict[TaskKind, list[str]]:
    path = path or resource_path(EXAMPLES_FILE)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    examples = {}
    for kind in CHAT_KINDS:
        prompts = data.get(kind.value, [])
        if not prompts:
            raise ValueError(f"{path}: no examples for {kind.value}")
        examples[kind] = [str(p) for p in prompts]
    return examples


def cache_key(model_path: Path, examples: dict[TaskKind, list[str]]) -> str:
    """Changes when the model file or the examples change."""
    stat = model_path.stat()
    digest = hashlib.sha256()
    digest.update(f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    digest.update(json.dumps({k.value: v for k, v in examples.items()}, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def build_scorer(
    model_path: Path,
    embed: Embedder,
    cache_dir: Path,
    examples: dict[TaskKind, list[str]] | None = None,
    prompt_embed: Embedder | None = None,
) -> SemanticScorer:
    """Embed the examples (or read them from the cache) and return a scorer.

    `prompt_embed`, when given, embeds each prompt later (with a shorter
    timeout than building the examples may need)."""
    examples = examples or load_examples()
    key = cache_key(model_path, examples)
    cache_file = cache_dir / f"router-examples-{key}.json"
    vectors: dict[TaskKind, list[list[float]]] | None = None
    if cache_file.exists():
        try:
            raw = json.loads(cache_file.read_text(encoding="utf-8"))
            vectors = {TaskKind(kind): value for kind, value in raw.items()}
        except (ValueError, OSError) as exc:
            log.warning("ignoring unreadable embedding cache %s: %s", cache_file, exc)
    if vectors is None:
        vectors = {kind: embed(prompts) for kind, prompts in examples.items()}
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({k.value: v for k, v in vectors.items()}), encoding="utf-8")
            tmp.replace(cache_file)
        except OSError as exc:  # a read-only data dir costs speed, not correctness
            log.warning("could not cache example embeddings in %s: %s", cache_dir, exc)
    return SemanticScorer(vectors, prompt_embed or embed)
