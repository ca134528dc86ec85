"""Start-up of the frozen app vs `make run`, measured in one run (median of 3 each)."""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_BENCH = ROOT / "benchmarks" / "startup.py"


def _load_probe_reader():  # type: ignore[no-untyped-def]
    """The probe parsing of benchmarks/startup.py (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("zeta_startup_bench", STARTUP_BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.stamps


def probe(command: list[str]) -> tuple[float, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ZETA_STARTUP_PROBE": "Say hi."}
    found = _load_probe_reader()(command, env)
    if "first_token" not in found:
        raise SystemExit(f"no first token from {command}: {found}")
    return found["window_shown"], found["first_token"]


def main() -> int:
    frozen_app = sys.argv[1]
    frozen, source = [], []
    for _ in range(3):
        frozen.append(probe([frozen_app]))
        source.append(probe(["make", "--no-print-directory", "run"]))
    f_show = statistics.median(s for s, _ in frozen)
    f_token = statistics.median(t for _, t in frozen)
    s_show = statistics.median(s for s, _ in source)
    s_token = statistics.median(t for _, t in source)
    print(f"start-up, window shown: frozen {f_show:.2f} s, make run {s_show:.2f} s "
          f"(ratio {f_show / s_show:.2f})")
    print(f"start-up, first token:  frozen {f_token:.2f} s, make run {s_token:.2f} s "
          f"(ratio {f_token / s_token:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
