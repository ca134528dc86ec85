"""Start-up time: `make run` (already set up) to window shown and to the first token.

Runs the real app offscreen with ZETA_STARTUP_PROBE, which sends one prompt as
soon as the window is up and closes at the first token. The baseline, measured
in the same run, is a bare PySide6 process that shows an empty QMainWindow: the
floor for any Qt app on this machine.

    make bench-startup
    make bench-startup QUICK=1    # one run instead of RUNS (3): a smoke run

Writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = os.environ.get("RUNS")
EMPTY_WINDOW = (
    "import time\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "from PySide6.QtCore import QTimer\n"
    "app = QApplication([])\n"
    "w = QMainWindow(); w.show()\n"
    "QTimer.singleShot(0, lambda: (print(f'probe window_shown {time.time():.6f}', flush=True),"
    " app.quit()))\n"
    "app.exec()\n"
)


def stamps(command: list[str], env: dict[str, str]) -> dict[str, float]:
    started = time.time()
    out = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    found = {}
    for line in out.stdout.splitlines():
        if line.startswith("probe "):
            _, event, stamp = line.split()
            found[event] = float(stamp) - started
    if "window_shown" not in found:
        raise RuntimeError(f"{command} printed no probe:\n{out.stdout}\n{out.stderr}")
    return found


def main() -> int:
    # Here, not at the top: packaging/startup_compare.py loads this file by
    # path for stamps() alone, without benchmarks/ on sys.path.
    from bench_results import quick_parser, write_results

    quick = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    runs = int(RUNS or (1 if quick else 3))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    app_env = {**env, "ZETA_STARTUP_PROBE": "Say hi."}
    python = str(ROOT / ".venv" / "bin" / "python")
    shown, first, floor = [], [], []
    for _ in range(runs):
        result = stamps(["make", "--no-print-directory", "run"], app_env)
        shown.append(result["window_shown"])
        if "first_token" not in result:
            raise RuntimeError(f"no first token: {result}")
        first.append(result["first_token"])
        floor.append(stamps([python, "-c", EMPTY_WINDOW], env)["window_shown"])
    report = {
        "quick": quick,
        "runs": runs,
        "window_shown_s": statistics.median(shown),
        "first_token_s": statistics.median(first),
        "empty_qt_window_s": statistics.median(floor),
    }
    report["window_vs_empty_ratio"] = report["window_shown_s"] / report["empty_qt_window_s"]
    print(f"make run -> window shown   {report['window_shown_s']:.2f} s  (runs {shown})")
    print(f"make run -> first token    {report['first_token_s']:.2f} s  (demo model, offscreen)")
    print(f"baseline: empty Qt window  {report['empty_qt_window_s']:.2f} s")
    print(f"ratio window / baseline    {report['window_vs_empty_ratio']:.2f}")
    print(f"wrote {write_results('startup', report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
