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
app uses them. Each index is as big as the app would build it on this
machine: the sample is cut when the embedder is slow (OWN_INDEX_BUDGET_S).
The chat model embeds a prompt in a few hundred ms on one thread, so it is
scored on every CHAT_MODEL_EVERY-th held-out prompt, its baseline on the same.
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
from zeta_desktop.core.routing.own_index import OwnIndexBuilder
from zeta_desktop.core.settings import OWN_INDEX_PROMPTS

QUICK_INDEX_PROMPTS = 16
CHAT_MODEL_EVERY = 8  # 3 in the quick mode
Classify = Callable[[str], Any]


def _own_index(engine: LlamaEngine, shipped: EmbeddingIndex, name: str, prompts: int,
               folder: Path) -> tuple[EmbeddingIndex, float]:
    probe = engine.embed(list(shipped.probe_texts))
    builder = OwnIndexBuilder(shipped, engine.embed, probe, name, folder, prompts)
    start = time.perf_counter()
    index = builder.build()
    return index, time.perf_counter() - start


def measure(rows: list[Any], shipped: EmbeddingIndex, quick: bool,
            evaluate: Callable[[Classify, list[Any]], Any],
            figures: Callable[[Any], dict[str, Any]],
            baselines: dict[str, tuple[str, Classify]]) -> dict[str, Any]:
    """Every figure of the own-index rows; prints them as it goes.
    `baselines`: for each row's key, what it is compared with (name, classify)."""
    prompts = QUICK_INDEX_PROMPTS if quick else OWN_INDEX_PROMPTS
    models = {"demo_embedder_sample": find_demo_embedder(), "demo_chat_model": find_demo_model()}
    scored = {"demo_embedder_sample": rows,
              "demo_chat_model": rows[::3 if quick else CHAT_MODEL_EVERY]}
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
                report = evaluate(TaskClassifier(vote).classify, scored[key])
                sample = [r.prompt for r in scored[key][::10]][:50]
                times = []
                for prompt in sample:
                    start = time.perf_counter()
                    vote.vector(prompt)
                    times.append((time.perf_counter() - start) * 1000)
            finally:
                engine.close()
            name, baseline = baselines[key]
            versus = evaluate(baseline, scored[key]).accuracy()
            result[key] = {
                "model": model.name, "index_prompts": len(index.labels),
                "scored_prompts": len(scored[key]), "build_s": seconds,
                "build_prompts_per_s": len(index.labels) / seconds,
                "embed_ms": statistics.median(times), **figures(report),
                "versus": {"baseline": name, "accuracy": versus,
                           "points": (report.accuracy() - versus) * 100}}
            print(f"{key} ({model.name}): an index of {len(index.labels)} prompts built in "
                  f"{seconds:.1f} s ({len(index.labels) / seconds:.1f} prompts/s); accuracy on "
                  f"{len(scored[key])} held-out prompts "
                  f"{report.accuracy():.1%}, by kind "
                  + ", ".join(f"{k} {r / t:.1%}" for k, (r, t) in
                              sorted(report.kind_accuracy().items()))
                  + f"; embedding one prompt {statistics.median(times):.1f} ms; "
                  f"{name} {versus:.1%} on the same prompts "
                  f"({(report.accuracy() - versus) * 100:+.1f} points)")
    return result
