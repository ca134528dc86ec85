"""How the benchmarks start and end: the demo model found (or a clear exit),
their checks printed, their report written as JSON.

Reports go to benchmarks/results/ (ignored by git).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zeta_desktop.core.models.files import find_demo_model

RESULTS = Path(__file__).resolve().parent / "results"


def print_checks(checks: dict[str, bool]) -> None:
    for name, passed in checks.items():
        print(f"  {'PASS' if passed else 'MISS'}  {name}")


def write_results(name: str, report: dict) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return out


def demo_model() -> Path:
    """The demo model's file; without it, say how to get it and exit with 2."""
    model = find_demo_model()
    if model is None:
        print("the demo model is not installed: run `make run` or `make test` once",
              file=sys.stderr)
        raise SystemExit(2)
    return model
