"""bench-classify's rows for an embedder of the user's own: its index built as
the app builds it (own_index.py, from the shipped index's prompts), then
scored on the same held-out prompts.

Two embedders, both real GGUF models the project ships:
- the demo embedder (all-MiniLM-L6-v2) again, with an own index of a sample:
  against the shipped index (every training prompt), this is what the
  sample alone costs;
- the demo chat model (SmolLM2-135M) as the embedder: a model the shipped
  index does not fit, the case the own index is for; against the text model
  alone.
The blend's scales were fitted for MiniLM and are used unfitted here, as the
app uses them.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.models.files import find_demo_embedder, find_demo_model
from zeta_desktop.core.routing.classifier import EmbeddingVote, TaskClassifier
from zeta_desktop.core.routing.learned import EmbeddingIndex
from zeta_desktop.core.routing.own_index import OWN_INDEX_PROMPTS, OwnIndexBuilder

QUICK_INDEX_PROMPTS = 48


def _own_index(engine: LlamaEngine, shipped: EmbeddingIndex, name: str, prompts: int,
               folder: Path) -> tuple[EmbeddingIndex, float]:
    probe = engine.embed(list(shipped.probe_texts))
    builder = OwnIndexBuilder(shipped, engine.embed, probe, name, folder, prompts)
    start = time.perf_counter()
    index = builder.build()
    return index, time.perf_counter() - start


def measure(rows: list[Any], shipped: EmbeddingIndex, quick: bool,
            evaluate: Callable[[Callable[[str], Any], list[Any]], Any],
            figures: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Every figure of the own-index rows; prints them as it goes."""
    prompts = QUICK_INDEX_PROMPTS if quick else OWN_INDEX_PROMPTS
    models = {"demo_embedder_sample": find_demo_embedder(), "demo_chat_model": find_demo_model()}
    result: dict[str, Any] = {"index_prompts": prompts}
    print(f"\n=== an embedder of the user's own: its index of {prompts} prompts, "
          "built as the app builds it ===")
    with tempfile.TemporaryDirectory() as folder:
        for key, model in models.items():
            if model is None:
                print(f"{key}: model not installed (`make setup`)")
                continue
            engine = LlamaEngine.load(model, LoadSettings(512, 0, 0, embedding=True))
            try:
                index, seconds = _own_index(engine, shipped, model.name, prompts, Path(folder))
                vote = EmbeddingVote(index, engine.embed)
                report = evaluate(TaskClassifier(vote).classify, rows)
                sample = [r.prompt for r in rows[::10]]
                times = []
                for prompt in sample:
                    start = time.perf_counter()
                    vote.vector(prompt)
                    times.append((time.perf_counter() - start) * 1000)
            finally:
                engine.close()
            result[key] = {
                "model": model.name, "build_s": seconds,
                "build_prompts_per_s": len(index.labels) / seconds,
                "embed_ms": statistics.median(times), **figures(report)}
            print(f"{key} ({model.name}): built in {seconds:.1f} s "
                  f"({len(index.labels) / seconds:.0f} prompts/s); held-out accuracy "
                  f"{report.accuracy():.1%}, by kind "
                  + ", ".join(f"{k} {r / t:.1%}" for k, (r, t) in
                              sorted(report.kind_accuracy().items()))
                  + f"; embedding one prompt {statistics.median(times):.1f} ms")
    return result
