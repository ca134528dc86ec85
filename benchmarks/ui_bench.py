"""GUI responsiveness while all three models stream: `make bench-ui`.

Opens the real window offscreen with the demo model in every role, keeps all
three streaming Markdown answers (the model's own tokens laid out as
headings, paragraphs, lists, a table and a code block: markdown_shaped.py),
and measures the GUI event loop with a 1 ms probe timer: the stall is how
late each tick fires. Four runs in one process, each in a fresh
window with an empty chat (a growing history would slow later runs' models
and flatter them), in ABBA order: with the live load panel shown (the
subject) and with it hidden and its timer stopped (the baseline). A fifth run
never shows its window: the stalls this machine has with the models streaming
and nothing painted (the floor). Prints the tokens/s each variant carried, so
the loads can be compared. Also times every plot refresh. Stall percentiles
are weighted by time: one 20 ms block weighs as 20 ms of the run, not as one
sample among thousands of 1 ms ticks. Targets: p99 stall <= 8 ms, max <= 16 ms,
plot refresh < 2 ms.
Writes benchmarks/results/ui.json (UI_BENCH_HISTORY=1: ui_history.json).

`--quick` (or QUICK=1): one run of each variant (AB, not ABBA), 0.25 s
warm-up and 0.5 s phases (UI_BENCH_SECONDS still sets the phase): a smoke run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pyqtgraph as pg
from bench_results import demo_model, print_checks, quick_parser, write_results
from markdown_shaped import load_markdown_shaped
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEvent, QEventLoop, Qt, QTimer

from zeta_desktop.core.chat.api import AnswerText
from zeta_desktop.core.config import LoadedConfig
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig, RoleConfig
from zeta_desktop.ui.app import compose_window, settle_garbage_collector
from zeta_desktop.ui.main_window import MainWindow

PHASE_S = float(os.environ.get("UI_BENCH_SECONDS", "20"))
WARM_UP_S = 3.0
# ABBA: the first window of a process runs a little differently (caches,
# first loads), so each variant gets one early and one late run.
ORDER = (True, False, False, True)
QUICK = False
# UI_BENCH_NORMAL_PRIORITY=1 runs the models at the GUI's priority, to see what
# the default (model threads niced below the GUI) buys.
LOW_PRIORITY = os.environ.get("UI_BENCH_NORMAL_PRIORITY") != "1"
PROMPTS = {
    "coder": "Write a long Python tutorial about lists, with many examples.",
    "embedder": "Tell me a long story about a dragon and a lighthouse.",
    "reasoner": "Explain step by step, at length, why the sky is blue.",
}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def time_pct(stalls_ms: list[float], p: float) -> float:
    """The stall below which p % of the measured time was spent, not p % of the ticks.

    A probe tick that came 20 ms late covers 21 ms of time, but a plain
    percentile counts it once, like each 1 ms tick of the quiet stretches
    around it; weighting each tick by the interval it closed counts time.
    """
    ordered = sorted(stalls_ms)
    total = sum(s + 1.0 for s in ordered)
    covered = 0.0
    for stall in ordered:
        covered += stall + 1.0
        if covered >= p / 100 * total:
            return stall
    return ordered[-1]


class Probe:
    """A 1 ms timer; each tick records how late it came (the event loop's stall)."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.stalls_ms: list[float] = []
        self._last = 0

    def start(self) -> None:
        self.stalls_ms.clear()
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.stalls_ms.append(max(0.0, (now - self._last) / 1e6 - 1.0))
        self._last = now


def make_window(model: Path, tmp: Path, keep_history: bool = True) -> MainWindow:
    config = AppConfig()
    for role in PROMPTS:
        config.roles[role] = RoleConfig(
            model_path=str(model), n_ctx=2048, n_threads=1, max_tokens=400, temperature=0.7,
            can_embed=role == "embedder",
            low_priority=LOW_PRIORITY,
        )
    config.router.semantic = False
    # Answers as the chat renders them: Markdown (prose, lists, a table, code),
    # made from the demo model's own tokens (UI_BENCH_PLAIN=1: its plain text).
    loader = LlamaEngine.load if os.environ.get("UI_BENCH_PLAIN") == "1" else load_markdown_shaped
    return compose_window(LoadedConfig(config, tmp / "config.toml", []), config, loader,
                          keep_history=keep_history, history_path=tmp / "history.sqlite3")


def keep_streaming(window: MainWindow) -> None:
    """Give the first idle role another long answer: one prompt per call, as a user sends."""
    for role, prompt in PROMPTS.items():
        worker = window.api.session.worker(role)
        if worker.queue_depth == 0 and worker.in_flight == 0:
            window.chat.target_box.setCurrentIndex(window.chat.target_box.findData(role))
            window.chat.input.setPlainText(prompt)
            window.chat.send_button.click()
            break
    window.chat.target_box.setCurrentIndex(0)


def run_event_loop(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


@dataclass
class Measured:
    """One window's measured phase: raw samples, pooled later."""

    stalls_ms: list[float]
    tokens: int
    gui_cpu_s: float
    seconds: float
    tick_ms: list[float] = field(default_factory=list)
    paint_ms: list[float] = field(default_factory=list)
    rounds: int = 0


def run_phase(window: MainWindow, probe: Probe, seconds: float) -> tuple[list[float], float]:
    feeder = QTimer()
    feeder.setInterval(200)
    feeder.timeout.connect(lambda: keep_streaming(window))
    feeder.start()
    probe.start()
    cpu_before = time.thread_time()  # this is the GUI thread
    run_event_loop(seconds)
    gui_cpu_s = time.thread_time() - cpu_before
    probe.stop()
    feeder.stop()
    window.api.stop()
    return list(probe.stalls_ms), gui_cpu_s


def measure(
    model: Path, panel_shown: bool, paint_ms: list[float], on_screen: bool = True,
    keep_history: bool = True,
) -> Measured:
    """A fresh window (so every run starts from an empty chat), warmed up, then measured.

    on_screen=False is the machine's floor: the same models and chat, but a
    window never shown and no plot or stats timers, so nothing is painted.
    """
    import tempfile

    window = make_window(model, Path(tempfile.mkdtemp()), keep_history)
    window.resize(1280, 800)
    if on_screen:
        window.show()
    window.start_models()
    settle_garbage_collector()  # as the app does once its window is up
    if not panel_shown:
        window.plots.stop()
        window.plots.hide()
    if not on_screen:
        window.router_panel.stop()
        window.router_log.stop()
        window.models.stop()  # the role cards' stats timer
    while not window.api.wait_loaded(0):
        run_event_loop(0.1)

    # What one refresh costs the event loop: the timer tick (copy + setData for
    # one plot) and the repaint that follows it, each timed on its own.
    tick_ms: list[float] = []
    original_tick = window.plots._refresh_one

    def timed_tick() -> None:
        t0 = time.perf_counter()
        original_tick()
        tick_ms.append((time.perf_counter() - t0) * 1000)

    window.plots.timer.timeout.disconnect()
    window.plots.timer.timeout.connect(timed_tick)
    tokens = [0]
    window.bridge.sig_event.connect(
        lambda event: isinstance(event, AnswerText) and tokens.__setitem__(0, tokens[0] + 1))
    probe = Probe()
    # Warm up: first paints and first tokens pay one-off costs.
    run_phase(window, probe, WARM_UP_S)
    tick_ms.clear()
    paint_ms.clear()
    tokens[0] = 0
    rounds_before = window.plots.refresh_count
    stalls, gui_cpu_s = run_phase(window, probe, PHASE_S)
    result = Measured(stalls, tokens[0], gui_cpu_s, PHASE_S)
    if panel_shown:
        result.tick_ms, result.paint_ms = list(tick_ms), list(paint_ms)
        result.rounds = window.plots.refresh_count - rounds_before
    window.close()
    # Gone before the next run: a closed window lived on (owned by Qt, not
    # Python) with its collector's, history's and documents' timers running
    # on the GUI thread through every later run.
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return result


def summarize(runs: list[Measured]) -> dict:
    stalls = [s for run in runs for s in run.stalls_ms]
    seconds = sum(run.seconds for run in runs)
    result = {
        "runs": len(runs),
        "ticks": len(stalls),
        # Time-weighted (see time_pct); the per-tick figures are kept beside them.
        "p50_stall_ms": time_pct(stalls, 50),
        "p99_stall_ms": time_pct(stalls, 99),
        "p99_stall_ms_per_tick": pct(stalls, 99),
        "max_stall_ms": max(stalls),
        "max_stall_ms_per_run": [round(max(run.stalls_ms), 1) for run in runs],
        "tokens_per_s": sum(run.tokens for run in runs) / seconds,  # the load the GUI carried
        "gui_thread_cpu_pct": 100 * sum(run.gui_cpu_s for run in runs) / seconds,
    }
    ticks = [t for run in runs for t in run.tick_ms]
    paints = [p for run in runs for p in run.paint_ms]
    if ticks and paints:
        rounds = sum(run.rounds for run in runs)
        # One plot refresh = one tick plus its repaint; a round updates all four.
        per_plot = [t + p for t, p in zip(sorted(ticks), sorted(paints), strict=False)]
        result["plot_tick_median_ms"] = statistics.median(ticks)
        result["plot_paint_median_ms"] = statistics.median(paints)
        result["plot_paint_p99_ms"] = pct(paints, 99)
        result["plot_refresh_median_ms"] = statistics.median(per_plot)
        result["full_round_ms"] = (sum(ticks) + sum(paints)) / max(rounds, 1)
        result["plot_refresh_rounds_per_s"] = rounds / seconds
    return result


def history_cost(model: Path, paint_ms: list[float]) -> int:
    """UI_BENCH_HISTORY=1: the same shown window with the store writing vs no store, ABBA."""
    runs: dict[bool, list[Measured]] = {True: [], False: []}
    for keep in ORDER:
        runs[keep].append(measure(model, True, paint_ms, keep_history=keep))
    on, off = summarize(runs[True]), summarize(runs[False])
    for name, r in (("store writing", on), ("no store (base)", off)):
        print(f"{name:18} p50 {r['p50_stall_ms']:.2f} ms  p99 {r['p99_stall_ms']:.2f} ms "
              f"(per tick {r['p99_stall_ms_per_tick']:.2f})  "
              f"max {r['max_stall_ms']:.1f} ms  {r['tokens_per_s']:.1f} tok/s  "
              f"max per run {r['max_stall_ms_per_run']}")
    ratio = on["p99_stall_ms"] / max(off["p99_stall_ms"], 1e-3)
    print(f"p99 stall ratio, store writing / no store: {ratio:.2f}")
    checks = {"p99 stall with the store writing <= 1.1 x without": ratio <= 1.1}
    print_checks(checks)
    write_results("ui_history", {"quick": QUICK, "phase_s": PHASE_S, "store_writing": on,
                                 "no_store": off, "p99_ratio": ratio, "checks": checks})
    return 0


def main() -> int:
    global PHASE_S, WARM_UP_S, ORDER, QUICK
    QUICK = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    if QUICK:
        PHASE_S = float(os.environ.get("UI_BENCH_SECONDS", "0.5"))
        WARM_UP_S, ORDER = 0.25, (True, False)
    model = demo_model()
    from zeta_desktop.ui.app import make_application

    make_application()
    # Shiboken looks Python overrides up once per class, so the paint timer
    # has to be in place before the first plot view exists.
    paint_ms: list[float] = []
    original_paint = pg.GraphicsView.paintEvent

    def timed_paint(view, event) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        original_paint(view, event)
        paint_ms.append((time.perf_counter() - t0) * 1000)

    pg.GraphicsView.paintEvent = timed_paint
    if os.environ.get("UI_BENCH_HISTORY") == "1":
        return history_cost(model, paint_ms)
    runs: dict[bool, list[Measured]] = {True: [], False: []}
    for panel_shown in ORDER:
        runs[panel_shown].append(measure(model, panel_shown, paint_ms))
    shown, baseline = summarize(runs[True]), summarize(runs[False])
    # What this machine allows at all: models streaming, nothing painted.
    floor = summarize([measure(model, False, paint_ms, on_screen=False)])

    report = {"quick": QUICK, "phase_s": PHASE_S, "panel_shown": shown,
              "panel_hidden_baseline": baseline, "no_window_floor": floor,
              "model_threads_low_priority": LOW_PRIORITY}
    print(f"model threads at {'low' if LOW_PRIORITY else 'normal'} priority")
    print("stall percentiles weighted by time (p99/tick: the per-tick p99)")
    print(f"{'':22}{'p50 ms':>8}{'p99 ms':>8}{'p99/tick':>9}{'max ms':>8}{'ticks':>8}"
          f"{'tokens/s':>10}{'GUI cpu':>9}")
    for name, r in (("live panel shown", shown), ("panel hidden (base)", baseline),
                    ("no window (floor)", floor)):
        print(f"{name:22}{r['p50_stall_ms']:8.2f}{r['p99_stall_ms']:8.2f}"
              f"{r['p99_stall_ms_per_tick']:9.2f}{r['max_stall_ms']:8.2f}"
              f"{r['ticks']:8d}{r['tokens_per_s']:10.1f}{r['gui_thread_cpu_pct']:8.0f}%"
              f"   max per run {r['max_stall_ms_per_run']}")
    print(
        f"plot refresh (one plot: tick + repaint): median {shown['plot_refresh_median_ms']:.2f} ms"
        f" (tick {shown['plot_tick_median_ms']:.2f}, paint {shown['plot_paint_median_ms']:.2f},"
        f" paint p99 {shown['plot_paint_p99_ms']:.2f});"
        f" all four plots: {shown['full_round_ms']:.2f} ms per round,"
        f" {shown['plot_refresh_rounds_per_s']:.1f} rounds/s"
    )
    ratio = shown["p99_stall_ms"] / max(baseline["p99_stall_ms"], 1e-3)
    max_ratio = shown["max_stall_ms"] / max(baseline["max_stall_ms"], 1e-3)
    print(f"stall ratio shown / hidden: p99 {ratio:.2f}, max {max_ratio:.2f}")
    report["p99_ratio_shown_hidden"], report["max_ratio_shown_hidden"] = ratio, max_ratio
    checks = {
        "p99 stall <= 8 ms": shown["p99_stall_ms"] <= 8,
        "max stall shown / hidden <= 1.2": max_ratio <= 1.2,
        "max stall <= 16 ms": shown["max_stall_ms"] <= 16,
        "one plot refresh < 2 ms (median, tick + repaint)": shown["plot_refresh_median_ms"] < 2,
    }
    print_checks(checks)
    report["checks"] = checks
    write_results("ui", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
