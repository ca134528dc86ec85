"""How every benchmark ends: its checks printed, its report written as JSON.

Reports go to benchmarks/results/ (ignored by git).
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def print_checks(checks: dict[str, bool]) -> None:
    for name, passed in checks.items():
        print(f"  {'PASS' if passed else 'MISS'}  {name}")


def write_results(name: str, report: dict) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return out
