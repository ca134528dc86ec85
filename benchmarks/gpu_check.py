"""`make gpu-check`: the GPU paths on a real NVIDIA GPU, with figures.

On a machine with an NVIDIA GPU (NVML answers):
1. `--self-test` with every role fully offloaded (`n_gpu_layers = -1`) on the
   demo model;
2. the sampler's NVML readings over a few seconds of streaming;
3. the memory estimate against NVML's memory for this process;
4. the router's GPU ceilings reacting to the real readings.
Without one it says why and exits 0 (CI has no GPU; the recorded-readings
tests cover those paths there). Writes benchmarks/results/gpu_check.json
(`{"gpu": false, ...}` without one).

`--quick` (or QUICK=1): 2 s of streaming for (2) instead of 5: a smoke run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_results import quick_parser, write_results

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.config import save_config
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.models.files import resolve_model
from zeta_desktop.core.models.gguf_info import read_info
from zeta_desktop.core.models.memory import estimate, mib
from zeta_desktop.core.routing.classifier import TaskKind
from zeta_desktop.core.routing.machine import NvmlSource
from zeta_desktop.core.settings import AppConfig, RoleConfig

STREAM_S = 5.0


def offloaded_config(model: Path) -> AppConfig:
    config = AppConfig()
    for role in config.roles.values():
        role.n_gpu_layers = -1
    config.roles["coder"] = RoleConfig(model_path=str(model), n_ctx=2048, n_gpu_layers=-1,
                                       max_tokens=128)
    config.router.semantic = False
    return config


def main() -> int:
    global STREAM_S
    quick = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    if quick:
        STREAM_S = 2.0
    source = NvmlSource()
    first = source.read()
    if first.source != "nvml" or not first.gpus:
        reason = first.note or first.source
        print(f"gpu-check: no NVIDIA GPU reading here ({reason}); "
              "nothing to check. The recorded-readings tests cover these paths.")
        source.close()
        out = write_results("gpu_check", {"gpu": False, "quick": quick, "reason": reason})
        print(f"wrote {out}")
        return 0
    report: dict = {"gpu": True, "quick": quick, "stream_s": STREAM_S,
                    "gpus": [f"{g.index}: {g.name}" for g in first.gpus]}
    model = resolve_model("").path
    print(f"GPUs: {', '.join(f'{g.index}: {g.name}' for g in first.gpus)}")

    with tempfile.TemporaryDirectory() as folder:
        path = save_config(offloaded_config(model), Path(folder) / "config.toml")
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        run = subprocess.run([sys.executable, "-m", "zeta_desktop", "--config", str(path),
                              "--self-test"], capture_output=True, text=True, env=env,
                             timeout=600, check=False)
        report["self_test_exit"] = run.returncode
        print(f"1. self-test, every role offloaded (exit {run.returncode}):")
        print("   " + "\n   ".join(run.stdout.strip().splitlines()))

    before = source.read()
    session = ChatSession(offloaded_config(model), LlamaEngine.load, machine=source)
    session.start()
    session.wait_loaded(300)
    try:
        loaded = source.read()
        turns = []
        started = time.monotonic()
        while time.monotonic() - started < STREAM_S:
            turns.append(session.send("Write a Python function that sorts a list.",
                                      role="coder", with_history=False))
            while session.turn(turns[-1]).status.active and time.monotonic() - started < 60:
                time.sleep(0.05)
        _, series = session.telemetry.machine_series.copy()
        util, mem = series["gpu_util"], series["gpu_mem"]
        report["sampler"] = {"answers": len(turns), "readings": len(util),
                             "gpu_util_pct": [min(util), max(util)],
                             "gpu_mem_pct": [min(mem), max(mem)]}
        print(f"2. sampler over {STREAM_S:g} s of streaming ({len(turns)} answers, "
              f"{len(util)} readings): GPU busy {min(util):.0f}-{max(util):.0f} %, "
              f"memory {min(mem):.1f}-{max(mem):.1f} %")
        predicted = estimate(read_info(model), 2048, -1).vram_bytes
        mine = [(a.process_mem_mb or 0) - (b.process_mem_mb or 0)
                for a, b in zip(loaded.gpus, before.gpus, strict=False)]
        measured = int(sum(mine) * 2**20)
        ratio = f"{predicted / measured:.2f}" if measured > 0 else "n/a (no per-process reading)"
        report["memory"] = {"estimate_bytes": predicted, "measured_bytes": measured,
                            "ratio": predicted / measured if measured > 0 else None}
        print(f"3. memory: estimate {mib(predicted)} on the GPU, NVML says this process took "
              f"{mib(measured)}; estimate / measured {ratio}")
        router = session.router
        free = router.route(TaskKind.CODE, commit=False)
        now_mem = session.telemetry.machine.max_gpu_mem_pct or 0.0
        router.update_thresholds(gpu_mem_ceiling_pct=max(10.0, now_mem - 5.0))
        capped = router.route(TaskKind.CODE, commit=False)
        report["ceilings"] = {"gpu_mem_pct": now_mem, "default": free.reason,
                              "capped_at_pct": router.thresholds.gpu_mem_ceiling_pct,
                              "capped": capped.reason}
        print(f"4. ceilings: GPU memory at {now_mem:.1f} %; with the default ceiling: "
              f"{free.reason}; with the ceiling at {router.thresholds.gpu_mem_ceiling_pct:.0f} %: "
              f"{capped.reason}")
    finally:
        session.shutdown(60)
        source.close()
    print(f"wrote {write_results('gpu_check', report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
