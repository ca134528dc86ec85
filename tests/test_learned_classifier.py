"""The trained task classifier: rebuilt bit for bit, calibrated, scored by `route --eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from zeta_desktop.core.routing.classifier import TaskClassifier, TaskKind
from zeta_desktop.core.routing.evaluation import Labelled, evaluate, read_labelled
from zeta_desktop.core.routing.learned import META_FILE, WEIGHTS_FILE, load_text_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "resources" / "classifier"
sys.path.insert(0, str(ROOT / "training"))

from train_classifier import load_corpus, source_group, split  # noqa: E402


def test_the_shipped_model_rebuilds_bit_for_bit_from_the_corpus(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "training" / "train_classifier.py"), "--out", str(tmp_path)],
        check=True, capture_output=True,
    )
    for name in (WEIGHTS_FILE, META_FILE):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_held_out_sources_are_never_trained_on() -> None:
    rows = load_corpus()
    train, held = split(rows)
    trained = {source_group(r["source"]) for r in train}
    held_groups = {source_group(r["source"]) for r in held}
    assert trained.isdisjoint(held_groups)
    assert {r["kind"] for r in held} == {"simple", "code", "reasoning"}
    assert len(rows) >= 5000
    meta = json.loads((SHIPPED / META_FILE).read_text())
    assert meta["trained_on"] == len(train)


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
    # The temperature was fitted on out-of-fold logits of training sources only.
    # Those folds are harder than this split (54 % vs 76 %), so on unseen
    # sources the model is under-confident: the error is below 0.2, not ~0.
    assert report.expected_calibration_error() < 0.2
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
