"""`make gpu-check`: the GPU paths on a real NVIDIA GPU, with figures.

On a machine with an NVIDIA GPU (NVML answers):
1. `--self-test` with every role fully offloaded (`n_gpu_layers = -1`) on the
   demo model;
2. the sampler's NVML readings over a few seconds of streaming;
3. the memory estimate against NVML's memory for this process;
4. the router's GPU ceilings reacting to the real readings.
Without one it says why and exits 0 (CI has no GPU; the recorded-readings
tests cover those paths there). With one it exits 1 when the llama.cpp build
cannot offload, the self-test fails, a model put no layer on the GPU, or
NVML's memory for this process rose by less than the offloaded weights'
estimate: each failure is said. Writes benchmarks/results/gpu_check.json
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
from zeta_desktop.core.engines.build_info import build_info
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.models.files import resolve_model
from zeta_desktop.core.models.memory import mib
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


def failures(can_offload: bool, self_test_exit: int | None,
             offloaded: dict[str, tuple[int, int] | None], weights_estimate: int,
             measured: int | None) -> list[str]:
    """What failed on a machine with an NVIDIA GPU (empty: all held).
    `offloaded`: each model's (layers on the GPU, of) as llama.cpp said;
    `measured`: how much NVML's memory for this process (or, where NVML
    names no process, the GPU's used memory) rose over the loads."""
    if not can_offload:
        return ["this llama.cpp build cannot offload to the GPU: rebuild with "
                "`make setup GPU=cuda`"]
    found = []
    if self_test_exit not in (None, 0):
        found.append(f"the self-test failed (exit {self_test_exit})")
    for name, layers in offloaded.items():
        if layers is None or layers[0] == 0:
            found.append(f"{name}: no layer went to the GPU "
                         f"({'llama.cpp said none' if layers else 'llama.cpp said nothing'})")
    if measured is None:
        found.append("NVML gave no memory reading to check the offload against")
    elif measured < weights_estimate:
        found.append(f"GPU memory rose by {mib(measured)}, less than the offloaded weights' "
                     f"estimate of {mib(weights_estimate)}")
    return found


def memory_rise(before: list, after: list) -> int | None:
    """Bytes this process took on the GPUs (NVML's per-process reading), or
    the GPUs' used memory's rise where NVML names no process (a container)."""
    mine = [(a.process_mem_mb, b.process_mem_mb) for a, b in zip(after, before, strict=False)]
    if any(a is not None for a, _b in mine):
        return int(sum((a or 0) - (b or 0) for a, b in mine) * 2**20)
    used = [(a.mem_used_mb, b.mem_used_mb) for a, b in zip(after, before, strict=False)]
    if any(a is None or b is None for a, b in used) or not used:
        return None
    return int(sum(a - b for a, b in used) * 2**20)


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
    build = build_info()
    report["build"] = build.as_dict()
    print(build.describe())
    if not build.can_offload:
        report["failures"] = failures(False, None, {}, 0, None)
        return finish(report, source)

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
        offloaded: dict[str, tuple[int, int] | None] = {}
        predicted = weights = 0
        print("3. memory, per model (estimate on the GPU; layers llama.cpp offloaded):")
        for key, replica in session.fleet.endpoints.items():
            worker = replica.worker
            if worker.remote:
                continue
            plan = session.fleet.plans.get(key)
            on_gpu = plan.estimate.vram_bytes if plan is not None else 0
            predicted += on_gpu
            weights += plan.estimate.weights_vram if plan is not None else 0
            offloaded[key] = worker.offloaded_layers
            layers = "{}/{}".format(*worker.offloaded_layers) if worker.offloaded_layers else "?"
            print(f"   {key}: {worker.model_path.name}: estimate {mib(on_gpu)}, "
                  f"{layers} layers")
        measured = memory_rise(before.gpus, loaded.gpus)
        ratio = f"{predicted / measured:.2f}" if measured else "n/a"
        report["memory"] = {"estimate_bytes": predicted, "weights_estimate_bytes": weights,
                            "measured_bytes": measured, "offloaded": offloaded,
                            "ratio": predicted / measured if measured else None}
        print(f"   all: estimate {mib(predicted)} on the GPU, NVML says "
              f"{mib(measured) if measured is not None else 'nothing'}; "
              f"estimate / measured {ratio}")
        report["failures"] = failures(True, report["self_test_exit"], offloaded, weights,
                                      measured)
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
    return finish(report, source)


def finish(report: dict, source: NvmlSource) -> int:
    source.close()
    for failure in report["failures"]:
        print(f"gpu-check: FAIL: {failure}")
    print(f"wrote {write_results('gpu_check', report)}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
