"""`make gpu-check`'s verdict: on a machine with an NVIDIA GPU it fails,
saying why, unless the build offloads, the self-test passes, every model put
layers on the GPU and the GPU's memory rose by at least the weights sent there."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from gpu_check import failures, memory_rise

from zeta_desktop.core.routing.machine import GpuReading

GIB = 2**30


def gpu(process_mb: float | None, used_mb: float | None) -> GpuReading:
    return GpuReading(0, "GPU", 0.0, used_mb, 80_000.0, 40.0, 100.0, process_mb)


def test_everything_held_is_no_failure() -> None:
    assert failures(True, 0, {"coder": (25, 25), "reasoner": (49, 49)}, 3 * GIB, 4 * GIB) == []


def test_each_way_to_fail_is_said() -> None:
    assert "cannot offload" in failures(False, 0, {}, 0, 0)[0]
    assert failures(True, 1, {"coder": (25, 25)}, GIB, 2 * GIB) \
        == ["the self-test failed (exit 1)"]
    said = failures(True, 0, {"coder": (0, 25), "reasoner": None}, GIB, 2 * GIB)
    assert said == ["coder: no layer went to the GPU (llama.cpp said none)",
                    "reasoner: no layer went to the GPU (llama.cpp said nothing)"]
    short = failures(True, 0, {"coder": (25, 25)}, 4 * GIB, GIB)
    assert short == ["GPU memory rose by 1,024 MiB, less than the offloaded weights' "
                     "estimate of 4,096 MiB"]
    assert "no memory reading" in failures(True, 0, {"coder": (25, 25)}, GIB, None)[0]


def test_the_rise_is_this_processs_memory_or_else_the_gpus_used_memory() -> None:
    assert memory_rise([gpu(100.0, 5000.0)], [gpu(2148.0, 9000.0)]) == 2048 * 2**20
    # A container: NVML names no process, so the GPU's used memory stands in.
    assert memory_rise([gpu(None, 5000.0)], [gpu(None, 6024.0)]) == 1024 * 2**20
    assert memory_rise([gpu(None, None)], [gpu(None, None)]) is None
