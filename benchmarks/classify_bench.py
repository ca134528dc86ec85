"""`make bench-classify`: the task classifier on sources it was never trained on.

Held-out-by-source accuracy (per kind, per source, confusion, reliability) for
the rules alone (the baseline, measured in the same run), the shipped text
model, and the text model with the embedding index's vote (the demo embedder,
all-MiniLM-L6-v2, loaded with llama.cpp as the app loads it). Reported for
the sources held out this round by a rule (fresh: no choice was ever made
looking at them), for those held out the round before (their figures were
seen when that round chose its settings), and for all together. Then the
latency of one text-only classification against the rules', and the
embedding time on its own. Writes benchmarks/results/classify.json.

`--quick` (or QUICK=1): about QUICK_PROMPTS of the held-out prompts (every
n-th), latency over one pass of them instead of three: a smoke run.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

import own_index_eval  # noqa: E402
from bench_results import quick_parser, write_results  # noqa: E402
from train_classifier import (  # noqa: E402
    HELD_OUT_EARLIER,
    HELD_OUT_EVERYDAY,
    HELD_OUT_FRESH,
    HELD_OUT_THIRD,
    HELD_OUT_TWINS,
    load_corpus,
    source_group,
    split,
)

from zeta_desktop.core.routing.classifier import (  # noqa: E402
    EmbeddingVote,
    TaskClassifier,
    shipped_embedding_index,
)
from zeta_desktop.core.routing.evaluation import Labelled, evaluate, format_report  # noqa: E402

TARGET_WITH_EMBEDDER, TARGET_KIND, TARGET_TEXT = 0.92, 0.88, 0.88
TARGET_LATENCY_MS, TARGET_EMBED_MS, TARGET_SPREAD_POINTS = 2.0, 25.0, 8.0
EVERYDAY = "everyday chat (Self-Instruct's user-oriented asks, each labelled by the rule)"
SPLITS = {
    EVERYDAY: set(HELD_OUT_EVERYDAY),
    "round 3 (held out by rule; never seen)": set(HELD_OUT_THIRD),
    "round 2 (held out by rule; seen in round 2)": set(HELD_OUT_FRESH) | set(HELD_OUT_TWINS),
    "round 1 (held out by hand; seen in round 1)": set(HELD_OUT_EARLIER),
}
QUICK_PROMPTS = 30
# The JSON report's keys for the printed names.
KEYS = {"rules only (baseline)": "rules", "text model": "text",
        "text model + embedding index": "text_embedding", "all": "all",
        EVERYDAY: "everyday",
        "round 3 (held out by rule; never seen)": "round3",
        "round 2 (held out by rule; seen in round 2)": "fresh",
        "round 1 (held out by hand; seen in round 1)": "earlier"}


def held_out_rows() -> list[Labelled]:
    _, held = split(load_corpus())
    return [Labelled(r["prompt"], r["kind"], source_group(r["source"])) for r in held]


def median_ms(classify, prompts: list[str], repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        for prompt in prompts:
            start = time.perf_counter()
            classify(prompt)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def load_embedder():  # type: ignore[no-untyped-def]
    from zeta_desktop.core.engines.base import LoadSettings
    from zeta_desktop.core.engines.llama import LlamaEngine
    from zeta_desktop.core.models.files import find_demo_embedder

    model = find_demo_embedder()
    if model is None:
        print("no demo embedder: `make setup` installs it; no embedder rows")
        return None
    return LlamaEngine.load(model, LoadSettings(512, 0, 0, embedding=True))


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def figures(report) -> dict:  # type: ignore[no-untyped-def]
    return {
        "prompts": report.total,
        "accuracy": report.accuracy(),
        "kind_accuracy": {k: right / total for k, (right, total) in report.kind_accuracy().items()},
        "expected_calibration_error": report.expected_calibration_error(),
        "confusion": report.confusion,
        "length_bins": [{"chars": [lo, hi], "prompts": n, "accuracy": acc}
                        for lo, hi, n, acc in report.length_accuracy()],
        "length_spread_points": report.length_spread() * 100,
    }


def main() -> int:
    quick = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    rows = held_out_rows()
    repeats = 3
    if quick:  # a few prompts of every split, so each split's figures exist
        share = QUICK_PROMPTS // len(SPLITS)
        picked = []
        for groups in SPLITS.values():
            members = [r for r in rows if r.source in groups]
            picked += members[::max(1, len(members) // share)]
        rows = picked
        repeats = 1
    sources = sorted({r.source for r in rows})
    print(f"held-out: {len(rows)} prompts from {len(sources)} sources never seen in training")
    rules = TaskClassifier(text_model=None)
    text = TaskClassifier()
    classifiers = {"rules only (baseline)": rules.classify, "text model": text.classify}
    engine = load_embedder()
    index = shipped_embedding_index()
    embed_ms = None
    result: dict = {"quick": quick, "held_out_prompts": len(rows), "sources": len(sources)}
    if engine is not None and index is not None:
        probe = engine.embed(list(index.probe_texts))
        result["probe_cosine_min"] = index.matches(probe)
        print(f"embedder matches the index: lowest probe cosine {result['probe_cosine_min']:.5f}")
        vote = EmbeddingVote(index, engine.embed)
        classifiers["text model + embedding index"] = TaskClassifier(vote).classify
        embed_ms = median_ms(lambda p: vote.vector(p), [r.prompt for r in rows[::10]], 1)
    reports = {}
    try:
        for name, classify in classifiers.items():
            reports[name] = {"all": evaluate(classify, rows)}
            for split_name, groups in SPLITS.items():
                reports[name][split_name] = evaluate(
                    classify, [r for r in rows if r.source in groups])
        for name, by_split in reports.items():
            for split_name, report in by_split.items():
                print(f"\n=== {name}: {split_name} ===")
                print(format_report(report, sources=split_name == "all"))
        if index is not None:  # the shipped index still votes: a baseline here
            baselines = {"demo_chat_model": ("the text model alone", text.classify)}
            if "text model + embedding index" in classifiers:
                baselines["demo_embedder_sample"] = (
                    "the shipped index", classifiers["text model + embedding index"])
            result["own_index"] = own_index_eval.measure(rows, index, quick, evaluate, figures,
                                                         baselines)
    finally:
        if engine is not None:
            engine.close()

    # More prompts than the classifier keeps (RECENT_CONTEXTS), so no repeat is a cache hit.
    prompts = [r.prompt for r in rows]
    rules_ms = median_ms(rules.classify, prompts, repeats)
    text_ms = median_ms(text.classify, prompts, repeats)
    print(f"\n=== latency, one classification, median over the held-out prompts x{repeats} ===")
    print(f"rules only {rules_ms:.3f} ms; text model {text_ms:.3f} ms "
          f"(ratio {text_ms / rules_ms:.2f} x the rules)")
    if embed_ms is not None:
        print(f"embedding one prompt with the demo embedder: {embed_ms:.1f} ms "
              "(median over every 10th held-out prompt, its first and last 256 characters)")

    result["classifiers"] = {
        KEYS[name]: {KEYS[split_name]: figures(report) for split_name, report in by_split.items()}
        for name, by_split in reports.items()}
    result["latency_ms"] = {"rules": rules_ms, "text_model": text_ms,
                            "ratio_text_to_rules": text_ms / rules_ms}
    if embed_ms is not None:
        result["latency_ms"]["embedding"] = embed_ms
    checks = {}
    for split_name in ("all", EVERYDAY):
        title = "all held-out sources" if split_name == "all" else split_name
        print(f"\n=== targets ({title}) ===")
        for name, target in (("text model", TARGET_TEXT),
                             ("text model + embedding index", TARGET_WITH_EMBEDDER)):
            if name not in reports:
                print(f"{name}: not measured")
                continue
            report = reports[name][split_name]
            worst = min(r / t for r, t in report.kind_accuracy().values())
            kind_target = TARGET_KIND if "embedding" in name else 0.0
            spread = report.length_spread() * 100
            met = report.accuracy() >= target and worst >= kind_target
            result["classifiers"][KEYS[name]][KEYS[split_name]]["worst_kind_accuracy"] = worst
            where = "" if split_name == "all" else f" [{KEYS[split_name]}]"
            checks[f"{name}{where}: accuracy >= {target:.0%}"
                   + (f", worst kind >= {kind_target:.0%}" if kind_target else "")] = met
            checks[f"{name}{where}: length spread <= {TARGET_SPREAD_POINTS:.0f} points"] = (
                spread <= TARGET_SPREAD_POINTS)
            print(f"{name}: {report.accuracy():.1%} (target >= {target:.0%}), worst kind "
                  f"{worst:.1%}{f' (target >= {kind_target:.0%})' if kind_target else ''}: "
                  f"{verdict(met)}; length spread {spread:.1f} points "
                  f"(target <= {TARGET_SPREAD_POINTS:.0f}): "
                  f"{verdict(spread <= TARGET_SPREAD_POINTS)}")
    if embed_ms is not None:
        checks[f"embedding one prompt <= {TARGET_EMBED_MS:.0f} ms"] = embed_ms <= TARGET_EMBED_MS
        print(f"embedding {embed_ms:.1f} ms (target <= {TARGET_EMBED_MS:.0f} ms): "
              f"{verdict(embed_ms <= TARGET_EMBED_MS)}")
    print(f"latency {text_ms:.2f} ms (target <= {TARGET_LATENCY_MS} ms): "
          f"{verdict(text_ms <= TARGET_LATENCY_MS)}")
    checks[f"text model latency <= {TARGET_LATENCY_MS} ms"] = text_ms <= TARGET_LATENCY_MS
    result["checks"] = checks
    print(f"wrote {write_results('classify', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
