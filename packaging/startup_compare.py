"""Start-up of the frozen app vs `make run`, measured in one run (median of 3 each)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def probe(command: list[str]) -> tuple[float, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ZETA_STARTUP_PROBE": "Say hi."}
    started = time.time()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    stamps = {}
    for line in out.stdout.splitlines():
        if line.startswith("probe "):
            _, event, stamp = line.split()
            stamps[event] = float(stamp) - started
    if "first_token" not in stamps:
        raise SystemExit(f"no probe output from {command}:\n{out.stdout}\n{out.stderr}")
    return stamps["window_shown"], stamps["first_token"]


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
