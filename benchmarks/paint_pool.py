"""Qt's GUI thread pool for fills, on or off: `.venv/bin/python benchmarks/paint_pool.py`.

Qt's raster engine hands every fill of 96 rows or more to a thread pool and
waits for it; the app turns that off (QT_NO_GUI_THREADPOOL, see
zeta_desktop/ui/app.py). This measures why: the wall time of repainting the
chat's scroll bar and of the whole window, with a conversation and three
answers streaming, in child processes with the pool on and off (ABAB), once
on an idle machine and once with every core busy at nice 10, as while models
decode. The variable is read once per process, hence the children.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

REPAINTS = 200
BUSY_SNIPPET = "import os; os.nice(10)\nwhile True: pass"


def child() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile
    from pathlib import Path

    from PySide6.QtWidgets import QApplication

    from zeta_desktop.core.config import LoadedConfig
    from zeta_desktop.core.settings import AppConfig
    from zeta_desktop.ui.app import compose_window

    app = QApplication.instance() or QApplication([])
    window = compose_window(
        LoadedConfig(AppConfig(), Path(tempfile.mkdtemp()) / "config.toml", []),
        AppConfig(), lambda *_: None,  # type: ignore[arg-type,return-value]  # never started
        keep_history=False,
    )
    window.resize(1280, 800)
    window.show()
    chat = window.chat
    for turn in range(9):
        chat.add_user_message(f"question {turn}")
        chat.add_pending_answer(turn)
        view = chat.answer_view(turn)
        assert view is not None
        view.append("An answer with enough words to wrap over several lines. " * 12)
        if turn < 6:
            chat._finish(turn)
        else:
            view.show_text()
    for _ in range(20):
        app.processEvents()

    def wall_ms(widget) -> float:  # type: ignore[no-untyped-def]
        samples = []
        for _ in range(REPAINTS):
            start = time.perf_counter()
            widget.repaint()
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    print(json.dumps({
        "scroll_bar_ms": wall_ms(chat.scroll.verticalScrollBar()),
        "window_ms": wall_ms(window),
    }))


def run_child(pool_on: bool) -> dict[str, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("QT_NO_GUI_THREADPOOL", None)
    if not pool_on:
        env["QT_NO_GUI_THREADPOOL"] = "1"
    # The app sets the variable itself; this child imports no app entry point.
    out = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(load: str) -> dict[str, dict[str, float]]:
    busy = []
    if load == "busy":
        busy = [subprocess.Popen([sys.executable, "-c", BUSY_SNIPPET])
                for _ in range(os.cpu_count() or 2)]
    try:
        runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for pool_on in (True, False, False, True):
            runs[pool_on].append(run_child(pool_on))
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return {
        "pool": {k: statistics.mean(r[k] for r in runs[True]) for k in runs[True][0]},
        "serial": {k: statistics.mean(r[k] for r in runs[False]) for k in runs[False][0]},
    }


def main() -> int:
    if "--child" in sys.argv:
        child()
        return 0
    print(f"median wall time of one repaint ({REPAINTS} each), two child processes per variant")
    for load in ("idle", "busy"):
        result = measure(load)
        pool, serial = result["pool"], result["serial"]
        for key, name in (("scroll_bar_ms", "chat scroll bar"), ("window_ms", "whole window")):
            print(f"  {load:5} {name:16} pool {pool[key]:6.2f} ms   serial {serial[key]:6.2f} ms"
                  f"   serial / pool {serial[key] / pool[key]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
