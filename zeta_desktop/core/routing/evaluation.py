"""Scoring a classifier on labelled prompts: accuracy per kind, confusion, reliability.

Used by `zeta-desktop route --eval FILE.jsonl` and `make bench-classify`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from zeta_desktop.core.routing.classifier import Classification, TaskKind

KINDS = tuple(kind.value for kind in TaskKind)


@dataclass(frozen=True)
class Labelled:
    prompt: str
    kind: str
    source: str = ""


def read_labelled(path: Path) -> tuple[list[Labelled], list[str]]:
    """Lines of {"prompt": ..., "kind": ...}. A bad line is named and skipped."""
    rows: list[Labelled] = []
    problems: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                problems.append(f"line {number}: not an object")
                continue
            prompt, kind = row.get("prompt"), row.get("kind")
            if not isinstance(prompt, str) or not prompt.strip():
                problems.append(f"line {number}: no \"prompt\" text")
            elif kind not in KINDS:
                problems.append(f"line {number}: \"kind\" must be one of {', '.join(KINDS)}, "
                                f"not {kind!r}")
            else:
                rows.append(Labelled(prompt, kind, str(row.get("source", ""))))
    return rows, problems


@dataclass
class Report:
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # truth -> predicted
    by_source: dict[str, list[int]] = field(default_factory=dict)  # source -> [right, total]
    outcomes: list[tuple[float, bool]] = field(default_factory=list)  # (confidence, right)
    lengths: list[int] = field(default_factory=list)  # each prompt's characters, as outcomes

    def add(self, row: Labelled, result: Classification) -> None:
        predicted = result.kind.value
        self.confusion.setdefault(row.kind, {}).setdefault(predicted, 0)
        self.confusion[row.kind][predicted] += 1
        right = predicted == row.kind
        tally = self.by_source.setdefault(row.source or "(file)", [0, 0])
        tally[0] += right
        tally[1] += 1
        self.outcomes.append((result.confidence, right))
        self.lengths.append(len(row.prompt))

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def accuracy(self) -> float:
        return sum(right for _, right in self.outcomes) / max(1, self.total)

    def kind_accuracy(self) -> dict[str, tuple[int, int]]:
        return {
            kind: (row.get(kind, 0), sum(row.values()))
            for kind, row in self.confusion.items()
        }

    def reliability(self, bins: Iterable[float] = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001)
                    ) -> list[tuple[float, float, int, float, float]]:
        """(low, high, prompts, mean confidence, accuracy) per confidence bin."""
        edges = list(bins)
        table = []
        for low, high in itertools.pairwise(edges):
            inside = [(c, r) for c, r in self.outcomes if low <= c < high]
            if inside:
                table.append((low, min(high, 1.0), len(inside),
                              sum(c for c, _ in inside) / len(inside),
                              sum(r for _, r in inside) / len(inside)))
        return table

    def length_accuracy(self, bins: int = 4) -> list[tuple[int, int, int, float]]:
        """(shortest, longest characters, prompts, accuracy) per length bin:
        `bins` bins of about equal counts, shortest first. Whether the label
        follows the prompt's length shows as a spread between them."""
        ranked = sorted(zip(self.lengths, (r for _, r in self.outcomes), strict=True))
        table = []
        for index in range(bins):
            part = ranked[index * len(ranked) // bins:(index + 1) * len(ranked) // bins]
            if part:
                table.append((part[0][0], part[-1][0], len(part),
                              sum(r for _, r in part) / len(part)))
        return table

    def length_spread(self, bins: int = 4) -> float:
        """Best bin's accuracy minus the worst's, 0..1."""
        accuracies = [acc for *_, acc in self.length_accuracy(bins)]
        return max(accuracies) - min(accuracies) if accuracies else 0.0

    def expected_calibration_error(self) -> float:
        return sum(n * abs(conf - acc) for _, _, n, conf, acc in self.reliability()) / max(
            1, self.total)


def evaluate(classify: Callable[[str], Classification], rows: Iterable[Labelled]) -> Report:
    report = Report()
    for row in rows:
        report.add(row, classify(row.prompt))
    return report


def format_report(report: Report, sources: bool = False) -> str:
    kinds = [k for k in KINDS if k in report.confusion or any(
        k in row for row in report.confusion.values())]
    lines = [f"accuracy {report.accuracy():.1%} over {report.total} prompts", "", "per kind:"]
    for kind, (right, total) in report.kind_accuracy().items():
        lines.append(f"  {kind:10} {right / total:6.1%}  ({right}/{total})")
    lines += ["", "confusion (rows: labelled, columns: classified):",
              "  " + " " * 10 + "".join(f"{k:>11}" for k in kinds)]
    for truth in kinds:
        row = report.confusion.get(truth, {})
        if row:
            lines.append(f"  {truth:10}" + "".join(f"{row.get(k, 0):>11}" for k in kinds))
    if sources:
        lines += ["", "per source:"]
        for source, (right, total) in sorted(report.by_source.items()):
            lines.append(f"  {source:42} {right / total:6.1%}  ({right}/{total})")
    lines += ["", "reliability (is confidence the chance of being right?):",
              "  confidence     prompts  mean conf  accuracy"]
    for low, high, n, conf, acc in report.reliability():
        lines.append(f"  {low:4.2f}-{high:4.2f}  {n:9}  {conf:9.1%}  {acc:8.1%}")
    lines.append(f"  expected calibration error {report.expected_calibration_error():.3f}")
    lines += ["", "by prompt length (four bins of about equal counts):",
              "  characters     prompts  accuracy"]
    for shortest, longest, n, acc in report.length_accuracy():
        lines.append(f"  {shortest:5}-{longest:<6}  {n:7}  {acc:8.1%}")
    lines.append(f"  spread {report.length_spread() * 100:.1f} points (best bin - worst)")
    return "\n".join(lines)
