"""The trained task classifier: rebuilt bit for bit, calibrated, scored by `route --eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.models.files import find_demo_embedder
from zeta_desktop.core.routing.classifier import TaskClassifier, TaskKind
from zeta_desktop.core.routing.evaluation import Labelled, evaluate, read_labelled
from zeta_desktop.core.routing.learned import (
    INDEX_FILE,
    INDEX_META_FILE,
    META_FILE,
    WEIGHTS_FILE,
    embedding_text,
    load_text_model,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "resources" / "classifier"
sys.path.insert(0, str(ROOT / "training"))

from train_classifier import (  # noqa: E402
    HELD_OUT_EARLIER,
    HELD_OUT_EVERYDAY,
    HELD_OUT_FRESH,
    HELD_OUT_THIRD,
    HELD_OUT_TWINS,
    fresh_rule,
    load_corpus,
    quantise,
    source_group,
    split,
)


def test_the_shipped_models_rebuild_bit_for_bit_from_the_corpus(tmp_path: Path) -> None:
    """The text model, its temperature and rule gate, and the index's neighbours,
    blend and temperature, all rebuilt from the corpus. The index's own vectors
    are taken from the shipped file here (embedding the 7,650 training prompts
    takes minutes); the next test checks those against the demo embedder."""
    subprocess.run(
        [sys.executable, str(ROOT / "training" / "train_classifier.py"), "--out", str(tmp_path),
         "--index-from", str(SHIPPED)],
        check=True, capture_output=True,
    )
    for name in (WEIGHTS_FILE, META_FILE, INDEX_FILE, INDEX_META_FILE):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name


@pytest.mark.model
def test_the_shipped_index_holds_the_demo_embedders_vectors_of_the_training_prompts() -> None:
    train, _ = split(load_corpus())
    with np.load(SHIPPED / INDEX_FILE) as data:
        stored, labels = data["vectors"], data["labels"]
    assert len(stored) == len(train)
    assert [("simple", "code", "reasoning")[i] for i in labels] == [r["kind"] for r in train]
    sample = list(range(0, len(train), 97))
    embedder = find_demo_embedder()
    assert embedder is not None
    engine = LlamaEngine.load(embedder, LoadSettings(512, 0, 0, embedding=True))
    try:
        # One at a time, as the training script and the app embed a prompt.
        vectors = np.array([engine.embed([embedding_text(train[i]["prompt"])])[0]
                            for i in sample])
    finally:
        engine.close()
    # Rounded as the training script rounds them: float16 in its cache, then int8.
    again = quantise(vectors.astype(np.float16).astype(np.float64))
    assert np.array_equal(again, stored[sample])


def test_held_out_sources_are_never_trained_on() -> None:
    rows = load_corpus()
    train, held = split(rows)
    trained = {source_group(r["source"]) for r in train}
    held_groups = {source_group(r["source"]) for r in held}
    assert trained.isdisjoint(held_groups)
    assert {r["kind"] for r in held} == {"simple", "code", "reasoning"}
    assert len(rows) >= 10000
    meta = json.loads((SHIPPED / META_FILE).read_text())
    assert meta["trained_on"] == len(train)
    # This round's held-out sources are exactly what the rule picks among the
    # sources new this round: none was picked or dropped by hand.
    groups = {source_group(r["source"]) for r in rows}
    third = {g for g in groups if g.split("/")[0] in THIRD_ROUND_SOURCES} - set(HELD_OUT_EVERYDAY)
    new = groups - set(HELD_OUT_EARLIER) - trained_before() - third - set(HELD_OUT_EVERYDAY)
    assert set(HELD_OUT_FRESH) == {g for g in new if fresh_rule(g)}
    assert set(HELD_OUT_TWINS).isdisjoint(HELD_OUT_FRESH)
    assert set(HELD_OUT_THIRD) == {g for g in third if fresh_rule(g)}
    assert set(HELD_OUT_EVERYDAY) <= held_groups


# The third round's new sources (2026-12-03); the everyday set is held out whole.
THIRD_ROUND_SOURCES = {"t0", "gpteacher", "gsm8k", "self-instruct"}


def trained_before() -> set[str]:
    """The source groups the first round trained on (from its SOURCES table)."""
    return {
        "bigbench/" + task for task in (
            "navigate", "object_counting", "temporal_sequences", "tracking_shuffled_objects",
            "strategyqa", "penguins_in_a_table", "logic_grid_puzzle", "chinese_remainder_theorem",
            "unit_conversion", "minute_mysteries_qa", "sufficient_information",
            "code_line_description", "semantic_parsing_spider", "intent_recognition",
            "topical_chat")
    } | {"chatterbot-corpus/english", "chatterbot-corpus/coding", "zeta-tests"}


def held_out() -> list[Labelled]:
    return [Labelled(r["prompt"], r["kind"], source_group(r["source"]))
            for r in split(load_corpus())[1]]


def test_confidence_is_calibrated_on_the_held_out_sources(capsys) -> None:  # type: ignore[no-untyped-def]
    rows = held_out()[::3]  # every third prompt keeps the test quick
    report = evaluate(TaskClassifier().classify, rows)
    table = report.reliability()
    with capsys.disabled():
        print("\nheld-out reliability (low, high, prompts, confidence, accuracy):")
        for row in table:
            print("  " + "  ".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in row))
    # The temperature was fitted on out-of-fold logits of training sources only
    # (make bench-classify: expected calibration error 0.10 on all held-out
    # sources for the text model alone, 0.06 with the embedding index).
    assert report.expected_calibration_error() < 0.15
    assert table[-1][4] > table[0][4]  # more confident means more often right
    assert report.accuracy() > evaluate(TaskClassifier(text_model=None).classify, rows).accuracy()


def test_the_text_model_reads_the_issues_failure_cases() -> None:
    classifier = TaskClassifier()
    model = load_text_model()
    assert classifier.text_model is not None and model.classes == ("simple", "code", "reasoning")
    result = classifier.classify("Alice, Bob and Claire each hold a ball. First Alice and Bob "
                                 "swap balls, then Bob and Claire swap. Who holds which ball?")
    assert result.kind is TaskKind.REASONING
    assert any(e.startswith("text model: reasoning") for e in result.evidence)
    assert classifier.classify("/embed some text").kind is TaskKind.EMBEDDING
    assert abs(sum(result.scores.values()) - 1.0) < 1e-3


def test_route_eval_scores_a_file_and_names_bad_lines(tmp_path: Path) -> None:
    labelled = tmp_path / "mine.jsonl"
    labelled.write_text(
        '{"prompt": "Write a Python function that reverses a string", "kind": "code"}\n'
        "this line is not json\n"
        '{"prompt": "hello!", "kind": "chit-chat"}\n'
        '{"prompt": "Thanks, have a nice day", "kind": "simple"}\n',
        encoding="utf-8",
    )
    rows, problems = read_labelled(labelled)
    assert [r.kind for r in rows] == ["code", "simple"]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3"]
    done = subprocess.run(
        [sys.executable, "-m", "zeta_desktop", "route", "--eval", str(labelled)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "line 2: not JSON" in done.stderr and "line 3" in done.stderr
    assert "over 2 prompts" in done.stdout and "confusion" in done.stdout


def test_accuracy_by_prompt_length_shows_when_length_drives_the_label() -> None:
    from zeta_desktop.core.routing.classifier import Classification
    from zeta_desktop.core.routing.evaluation import format_report

    # Simple prompts of every length; a classifier that reads length as
    # reasoning (as issue 25 found) is right only on the short ones.
    rows = [Labelled("write a story " + "about the sea " * n, "simple") for n in range(40)]

    def by_length(prompt: str) -> Classification:
        kind = TaskKind.REASONING if len(prompt) > 300 else TaskKind.SIMPLE
        return Classification(kind, 0.9, ())

    report = evaluate(by_length, rows)
    bins = report.length_accuracy()
    assert [n for _, _, n, _ in bins] == [10, 10, 10, 10]
    assert [lo for lo, *_ in bins] == sorted(lo for lo, *_ in bins)  # shortest first
    assert bins[0][3] == 1.0 and bins[-1][3] == 0.0
    assert report.length_spread() == 1.0
    assert "spread 100.0 points" in format_report(report)
    # One that ignores length has no spread.
    fair = evaluate(lambda p: Classification(TaskKind.SIMPLE, 0.9, ()), rows)
    assert fair.length_spread() == 0.0
