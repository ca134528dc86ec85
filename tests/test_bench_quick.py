"""Every `make bench-*` benchmark in its quick mode (`--quick`): it runs to the
end and writes every figure it reports.

Each runs as `make` runs it, a script in a child process from the repository
root, with its JSON report sent to this test's folder ($ZETA_BENCH_RESULTS)
and the app's folders to temporary ones. What is checked is that each figure
is there and is a finite number (or a non-empty list or table): never whether
it meets a target, which a quick run on a busy machine says nothing about.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
# Generous for a slow CI machine; a quick run takes seconds on two cores.
TIMEOUT_S = 180
# Settings that would change a benchmark's load: the test runs each as its
# quick mode alone sizes it.
LOAD_SETTINGS = ("QUICK", "RUNS", "KILL_RUNS", "UI_BENCH_SECONDS", "UI_BENCH_HISTORY",
                 "UI_BENCH_PLAIN", "UI_BENCH_NORMAL_PRIORITY", "CHAT_BENCH_MESSAGES",
                 "DOCS_BENCH_RUNS", "DOCS_BENCH_PHASE_S")
STALLS = ("p50_stall_ms", "p99_stall_ms", "p99_stall_ms_per_tick", "max_stall_ms",
          "max_stall_ms_per_run.*", "ticks", "tokens_per_s", "gui_thread_cpu_pct")
PLOTS = ("plot_tick_median_ms", "plot_paint_median_ms", "plot_paint_p99_ms",
         "plot_refresh_median_ms", "full_round_ms", "plot_refresh_rounds_per_s")
MS = ("median_ms", "max_ms")


def under(prefix: str, names: tuple[str, ...] | list[str]) -> list[str]:
    return [f"{prefix}.{name}" for name in names]


@dataclass(frozen=True)
class Bench:
    script: str
    result: str  # the report's name: <result>.json
    # Dotted paths to finite numbers; `*` is every item of a list or table
    # (and there must be at least one).
    figures: list[str]
    tables: list[str] = field(default_factory=list)  # paths to non-empty lists or tables
    files: list[str] = field(default_factory=list)  # paths to the names of files it wrote (a plot)
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.result


ROUTER_ROW = ("prompts", "lost", "failed_visibly", "never_ended", "p50_s", "median_p95_s",
              "median_p95_ci95.*", "p99_s", "p95_ttft_s", "tokens_per_s", "fit_acceptable",
              "fit_quality", "p95_s_per_seed.*", "served.*")
# Under a fault a policy may lose prompts, and then has no finite p95: its counts still show.
FAULT_ROW = ("prompts", "lost", "failed_visibly", "never_ended", "fit_acceptable", "served.*")
PEER_ROW = ("prompts", "lost", "p50_s", "median_p95_s", "median_p95_ci95.*", "p99_s",
            "p95_ttft_s", "fit_acceptable", "fit_quality", "p95_s_per_seed.*", "served.*")
CLASSIFIERS = ("rules", "text", "text_embedding")
SPLITS = ("all", "everyday", "round3", "fresh", "earlier")

BENCHES = [
    Bench("router_bench.py", "router", [
        "capacity.jobs_per_s", "capacity.tokens_per_s", "capacity.token_s_coder",
        "arrivals_per_s", "seconds_per_seed", "arrivals.*", "prompts.*",
        *under("rows.*", ROUTER_ROW), *under("rows.adaptive", ROUTER_ROW),
        *under("faults.*.*", FAULT_ROW),
        "verdict.vs_best_baseline.ratio", "verdict.vs_best_baseline.ci95.*",
        "verdict.vs_static.ratio", "verdict.vs_static.ci95.*", "verdict.per_seed_wins.wins",
        "decision_micro.adaptive_median_us", "decision_micro.adaptive_p99_us",
        "decision_micro.static_median_us", "elapsed_s",
    ], tables=["checks"], files=["plot"]),
    Bench("peer_bench.py", "peer", [
        "capacity.*", "arrival_rate", "prompts_per_seed",
        *under("policies.*", PEER_ROW), *under("policies.zeta adaptive", PEER_ROW),
        *under("policies.static", PEER_ROW), "policies.static.zeta_ratio.ratio",
        "policies.complexity-router.zeta_ratio.ci95.*", "zeta_vs_best_litellm.ratio",
        "zeta_vs_best_litellm.ci95.*",
    ], tables=["checks", "groups"], files=["plot"]),
    Bench("serve_bench.py", "serve", [
        *under("concurrency.*", ("tokens_per_s_ratio", "tokens_per_s_ratio_per_repeat.*",
                                 "decode_rate_ratio", "session_decode_rate_ratio",
                                 "p95_ratio", "p50_ratio")),
        *[f"concurrency.*.{side}.{figure}" for side in ("in_process", "served")
          for figure in ("requests", "errors", "tokens_per_s", "decode_tok_s_median",
                         "ttft_ms.p50", "ttft_ms.p95", "p50_s", "p95_s",
                         "cpu_s_per_1k_tokens.*")],
        *[f"concurrency.*.added.{figure}.{p}" for figure in (
            "ttft_added_ms", "request_to_ask_ms", "first_words_out_ms", "end_out_ms",
            "end_to_end_added_ms", "session_ttft_ms") for p in ("p50", "p95")],
        "ttft_added_ms.p50", "ttft_added_ms.p95", "peer.capacity.*", "peer.arrival_rate",
        *under("peer.sides.*", ("prompts", "lost", "p50_s", "median_p95_s",
                                "median_p95_ci95.*", "p95_s_per_seed.*", "fit_acceptable")),
        "peer.zeta_vs_litellm.*.ratio", "peer.zeta_vs_litellm.*.ci95.*",
    ], tables=["checks"]),
    Bench("classify_bench.py", "classify", [
        "held_out_prompts", "sources", "probe_cosine_min",
        *[f"classifiers.{c}.{s}.{figure}" for c in CLASSIFIERS for s in SPLITS
          for figure in ("prompts", "accuracy", "expected_calibration_error")],
        *[f"classifiers.{c}.all.kind_accuracy.*" for c in CLASSIFIERS],
        *[f"classifiers.{c}.all.{figure}" for c in CLASSIFIERS
          for figure in ("length_bins.*.accuracy", "length_bins.*.prompts",
                         "length_spread_points", "confusion.*.*")],
        "classifiers.text.all.worst_kind_accuracy", "classifiers.text.everyday.worst_kind_accuracy",
        "classifiers.text_embedding.all.worst_kind_accuracy",
        "latency_ms.rules", "latency_ms.text_model", "latency_ms.ratio_text_to_rules",
        "latency_ms.embedding", "own_index.index_prompts",
        *[f"own_index.{embedder}.{figure}" for embedder in ("demo_embedder_sample",
                                                             "demo_chat_model")
          for figure in ("build_s", "build_prompts_per_s", "embed_ms", "accuracy",
                         "kind_accuracy.*", "versus.accuracy", "versus.points")],
    ], tables=["checks"]),
    Bench("worker_overhead.py", "worker", [
        "bare_tok_s.*", "worker_tok_s.*", "bare_median_tok_s", "worker_median_tok_s", "ratio",
    ]),
    Bench("startup.py", "startup", [
        "window_shown_s", "first_token_s", "empty_qt_window_s", "window_vs_empty_ratio",
    ]),
    Bench("ui_bench.py", "ui", [
        *[f"{variant}.{figure}" for variant in
          ("panel_shown", "panel_hidden_baseline", "no_window_floor") for figure in STALLS],
        *under("panel_shown", PLOTS), "p99_ratio_shown_hidden", "max_ratio_shown_hidden",
    ], tables=["checks"]),
    Bench("ui_bench.py", "ui_history", [
        *[f"{variant}.{figure}" for variant in ("store_writing", "no_store")
          for figure in (*STALLS, *PLOTS)],
        "p99_ratio",
    ], tables=["checks"], env={"UI_BENCH_HISTORY": "1"}),
    Bench("chat_bench.py", "chat", [
        *under("token_batch", ("batches", "markdown_median_ms", "markdown_in_prose_median_ms",
                               "markdown_in_code_median_ms", "plain_median_ms",
                               "ratio_markdown_to_plain", "markdown_p90_ms", "plain_p90_ms")),
        *under("new_message", ("painted_median_ms", "styled_median_ms",
                               "ratio_painted_to_styled")),
        *under("open_conversation", ("long_first_paint_ms", "long_first_paint_ms_runs.*",
                                     "long_added_mb", "short_first_paint_ms",
                                     "short_added_mb")),
        *under("scroll_step", ("steps", "median_ms", "p99_ms", "max_ms")),
    ]),
    Bench("docs_bench.py", "docs", [
        "indexing.chunks", "indexing.chunks_per_s.*", "indexing.ratio_to_raw.*",
        "query.question_embedding_ms.p50", "query.question_embedding_ms.p95",
        # the quick mode's sizes
        *[f"query.{scale}.{figure}" for scale in (250, 500, 1000)
          for figure in ("p50_ms", "p95_ms", "queries")],
        *[f"recall.{split}.{figure}" for split in ("eval", "dev")
          for figure in ("vector", "keyword", "fused", "questions")],
        "gui.p99_ms.indexing", "gui.p99_ms.baseline", "gui.indexed.*", "gui.p99_ratio",
    ], tables=["checks"]),
    # Without an NVIDIA GPU it says so and exits 0: its report is {"gpu": false}
    # (GPU_FIGURES below where there is one).
    Bench("gpu_check.py", "gpu_check", []),
    Bench("memory_estimate.py", "memory", [
        "cases.*.n_ctx", "cases.*.estimate", "cases.*.measured", "cases.*.ratio",
    ]),
    Bench("stop_bench.py", "stop", [
        "prompt_tokens", "delays_s.batches.*", "delays_s.one call.*", "batches_median_s",
        "one_call_median_s", "ratio",
    ]),
    Bench("history_bench.py", "history", [
        "store.conversations", "store.messages", "store.fill_s", "store.file_mb",
        *under("start_to_last_conversation_shown", MS), *under("start_with_empty_history", MS),
        *under("switch_between_500_message_conversations", MS), "messages_built_per_switch",
        *under("fts_search", MS),
        # (the per-kill lists are empty for a kill that lost its prompt: a
        # figure of its own, prompts_lost)
        *under("kill_mid_answer", ("runs", "prompts_lost", "lost_within_last_flush_window",
                                   "max_chars_lost")),
    ]),
]
GPU_FIGURES = [
    "self_test_exit", "sampler.answers", "sampler.readings", "sampler.gpu_util_pct.*",
    "sampler.gpu_mem_pct.*", "memory.estimate_bytes", "memory.measured_bytes",
    "ceilings.gpu_mem_pct", "ceilings.capped_at_pct",
]


def values_at(report: object, path: str) -> list[object]:
    """The values at a dotted path (`*`: every item); KeyError naming the
    part of the path that is missing or empty."""
    found = [report]
    done: list[str] = []
    for part in path.split("."):
        done.append(part)
        here = ".".join(done)
        step: list[object] = []
        for value in found:
            if part == "*":
                items = list(value.values()) if isinstance(value, dict) else value
                if not isinstance(items, list) or not items:
                    raise KeyError(f"{here}: no items in {value!r:.80}")
                step.extend(items)
            elif isinstance(value, dict) and part in value:
                step.append(value[part])
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                step.append(value[int(part)])
            else:
                keys = list(value) if isinstance(value, dict) else type(value).__name__
                raise KeyError(f"{here}: missing (there: {keys})")
        found = step
    return found


def is_figure(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def run_quick(bench: Bench, tmp_path: Path, cache: Path) -> dict:
    results = tmp_path / "results"
    env = {key: value for key, value in os.environ.items() if key not in LOAD_SETTINGS}
    env.update({
        "ZETA_BENCH_RESULTS": str(results),
        "ZETA_DATA_DIR": str(tmp_path / "data"),
        "ZETA_CONFIG": str(tmp_path / "config" / "config.toml"),
        # Shared by the session, as in conftest: each model file's load check
        # runs once, not once per benchmark.
        "ZETA_CACHE_DIR": str(cache),
        "QT_QPA_PLATFORM": "offscreen",
        "GGML_NO_BACKTRACE": "1",
        **bench.env,
    })
    command = [sys.executable, f"benchmarks/{bench.script}", "--quick"]
    try:
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{bench.script} --quick ran past {TIMEOUT_S} s\n"
                    f"{tail(timeout.stdout)}\n{tail(timeout.stderr)}")
    assert run.returncode == 0, (
        f"{bench.script} --quick exited {run.returncode}\n--- stdout\n{tail(run.stdout)}\n"
        f"--- stderr\n{tail(run.stderr)}")
    out = results / f"{bench.result}.json"
    assert out.is_file(), f"{bench.script} --quick wrote no {out.name}\n{tail(run.stdout)}"
    return json.loads(out.read_text())


def tail(text: str | bytes | None, lines: int = 40) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


@pytest.mark.parametrize("bench", BENCHES, ids=str)
def test_quick_mode_writes_every_figure(bench: Bench, tmp_path: Path,
                                        _session_cache: Path) -> None:
    report = run_quick(bench, tmp_path, _session_cache)
    assert report.get("quick") is True, f"{bench.result}.json does not say it was a quick run"
    figures = list(bench.figures)
    if bench.result == "gpu_check":
        assert isinstance(report.get("gpu"), bool), report
        if report["gpu"]:
            figures += GPU_FIGURES
    problems = []
    for path in figures:
        try:
            values = values_at(report, path)
        except KeyError as missing:
            problems.append(str(missing.args[0]))
            continue
        problems += [f"{path}: {value!r:.80} is not a finite number"
                     for value in values if not is_figure(value)]
    for path in [*bench.tables, *bench.files]:
        try:
            [value] = values_at(report, path)
        except KeyError as missing:
            problems.append(str(missing.args[0]))
            continue
        if path in bench.files:
            if not (Path(str(value)).is_file() and Path(str(value)).stat().st_size > 0):
                problems.append(f"{path}: {value!r} is not a file it wrote")
        elif not isinstance(value, list | dict) or not value:
            problems.append(f"{path}: {value!r:.80} is not a non-empty list or table")
    assert not problems, f"{bench.result}.json:\n  " + "\n  ".join(problems)
