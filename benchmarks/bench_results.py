"""How the benchmarks start and end: the demo model found (or a clear exit),
their checks printed, their report written as JSON; `--quick` (or QUICK=1).

Reports go to benchmarks/results/ (ignored by git), or to $ZETA_BENCH_RESULTS
when set: the suite's quick runs write there, never over a full run's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from zeta_desktop.core.models.files import find_demo_model

RESULTS = Path(os.environ.get("ZETA_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def quick_from_env() -> bool:
    """QUICK=1 (any value but empty or 0), as `make bench-* QUICK=1` passes it on."""
    return os.environ.get("QUICK", "") not in ("", "0")


def quick_parser(description: str) -> argparse.ArgumentParser:
    """A parser with `--quick`: the same code path with a smaller load (fewer
    runs, shorter phases), a smoke run whose figures are not a verdict."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", default=quick_from_env(),
                        help="a smaller load: a smoke run (also QUICK=1)")
    return parser


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
