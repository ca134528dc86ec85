"""Memory that fits before it loads: the estimate against free memory from the
machine readings, a refusal with the numbers, and "auto" GPU layers."""

from __future__ import annotations

from pathlib import Path

import pytest
from session_events import TIMEOUT, make_session

from zeta_desktop.core.config import load_config, save_config
from zeta_desktop.core.fleet.worker import WorkerState
from zeta_desktop.core.models.fit import plan_load
from zeta_desktop.core.models.gguf_info import read_info
from zeta_desktop.core.models.memory import estimate
from zeta_desktop.core.routing.machine import GpuReading, MachineReading, RecordedSource
from zeta_desktop.core.settings import AUTO_GPU_LAYERS, AppConfig, RoleConfig

pytestmark = pytest.mark.model
MIB = 2**20


def reading(free_ram_mb: float, gpu_free_mb: float | None = None) -> MachineReading:
    gpus = () if gpu_free_mb is None else (
        GpuReading(0, "test GPU", 0.0, 8192 - gpu_free_mb, 8192.0, None, None, None),)
    return MachineReading("recorded", gpus, 0.0, 16384 - free_ram_mb, 16384.0)


def test_a_load_that_does_not_fit_is_refused_with_the_numbers(tiny_model: Path) -> None:
    config = AppConfig(roles={
        "coder": RoleConfig(model_path=str(tiny_model), n_ctx=512, n_threads=1),
    })
    config.router.semantic = False
    # 2 MiB free: the tiny model needs about 6 (weights, its KV cache, compute).
    session = make_session(config, machine=RecordedSource([reading(2.0)]))
    try:
        worker = session.fleet.worker("coder")
        assert worker.state is WorkerState.UNAVAILABLE
        assert "needs about 6 MiB of RAM (weights 0 MiB, KV cache 0 MiB for n_ctx 512, " \
               "compute 5 MiB) but 2 MiB is free" in worker.detail
        assert "lower n_ctx" in worker.detail
        assert not session.fleet.plans["coder"].ok
    finally:
        session.shutdown(TIMEOUT)


def test_the_same_load_goes_ahead_with_room(tiny_model: Path) -> None:
    config = AppConfig(roles={
        "coder": RoleConfig(model_path=str(tiny_model), n_ctx=512, n_threads=1, max_tokens=4),
    })
    config.router.semantic = False
    session = make_session(config, machine=RecordedSource([reading(4096.0)]))
    try:
        assert session.fleet.worker("coder").state is WorkerState.READY
        plan = session.fleet.plans["coder"]
        expected = estimate(read_info(tiny_model), 512).total_bytes
        assert plan.ok and plan.estimate.total_bytes == expected
    finally:
        session.shutdown(TIMEOUT)


def test_auto_offloads_as_many_layers_as_fit_and_says_how_many(tiny_model: Path) -> None:
    info = read_info(tiny_model)
    whole = estimate(info, 512, -1).vram_bytes
    one_layer = estimate(info, 512, 1).vram_bytes
    assert one_layer < whole
    plan = plan_load(info, 512, AUTO_GPU_LAYERS, free_ram=2**30, free_vram=one_layer)
    assert plan.ok and plan.n_gpu_layers == 1
    assert plan.message.startswith("auto: 1 of 2 layers on the GPU")
    assert plan_load(info, 512, AUTO_GPU_LAYERS, 2**30, whole).n_gpu_layers == 2
    assert plan_load(info, 512, AUTO_GPU_LAYERS, 2**30, None).n_gpu_layers == 0  # no GPU
    refused = plan_load(info, 512, -1, 2**30, one_layer)
    assert not refused.ok and "of GPU memory with 2 layers offloaded" in refused.message
    assert 'set n_gpu_layers = "auto"' in refused.message


def test_a_build_that_cannot_offload_keeps_every_layer_on_the_cpu_and_counts_ram(
        tiny_model: Path) -> None:
    from zeta_desktop.core.models.fit import CPU_BUILD_NOTE

    info = read_info(tiny_model)
    everything = estimate(info, 512, 0)
    for asked in (-1, AUTO_GPU_LAYERS, 2):
        # A GPU with no room at all: a CPU build never puts anything there.
        plan = plan_load(info, 512, asked, free_ram=2**30, free_vram=0, can_offload=False)
        assert plan.ok and plan.n_gpu_layers == 0
        assert plan.estimate.vram_bytes == 0
        assert plan.estimate.ram_bytes == everything.ram_bytes
        assert plan.message == CPU_BUILD_NOTE and "make setup GPU=cuda" in plan.message
    # RAM short by a byte: refused, though a GPU build could have put weights in VRAM.
    short = plan_load(info, 512, -1, everything.ram_bytes - 1, 2**34, can_offload=False)
    assert not short.ok and "of RAM" in short.message
    # No GPU at all: nothing to say about offloading.
    assert plan_load(info, 512, -1, 2**30, None, can_offload=False).message == ""
    assert plan_load(info, 512, 0, 2**30, 2**34, can_offload=False).message == ""


def test_auto_is_written_and_read_as_auto(tmp_path: Path) -> None:
    config = AppConfig()
    config.roles["reasoner"].n_gpu_layers = AUTO_GPU_LAYERS
    path = save_config(config, tmp_path / "config.toml")
    assert 'n_gpu_layers = "auto"' in path.read_text()
    assert load_config(path).config.roles["reasoner"].n_gpu_layers == AUTO_GPU_LAYERS


def test_gpu_check_runs_where_there_is_a_gpu_and_says_so_where_there_is_none(
        tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from zeta_desktop.core.routing.machine import NvmlSource

    source = NvmlSource()
    has_gpu = source.read().source == "nvml"
    source.close()
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    # Its report goes here, not over a `make gpu-check` run's in benchmarks/results/.
    env = {**os.environ, "ZETA_BENCH_RESULTS": str(tmp_path)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=900, check=False, env=env)
    assert result.returncode == 0, result.stderr
    if has_gpu:
        assert "1. self-test" in result.stdout and "4. ceilings" in result.stdout
    else:
        assert "gpu-check: no NVIDIA GPU reading here (" in result.stdout


@pytest.mark.parametrize("which, n_ctx", [("tiny", 512), ("demo", 2048), ("demo", 8192),
                                          ("embedder", 512)])
def test_the_estimate_is_within_15_percent_of_what_llama_cpp_allocates(
        which: str, n_ctx: int, tiny_model: Path) -> None:
    from zeta_desktop.core.engines.base import LoadSettings
    from zeta_desktop.core.engines.llama import LlamaEngine
    from zeta_desktop.core.models.files import resolve_model

    path = {"tiny": tiny_model, "demo": resolve_model("").path,
            "embedder": resolve_model("", embedding_role=True).path}[which]
    engine = LlamaEngine.load(path, LoadSettings(n_ctx, 0, 1, embedding=which == "embedder"))
    try:
        taken = sum(engine.allocated.values())
        assert set(engine.allocated) >= {"model", "compute"}
    finally:
        engine.close()
    predicted = estimate(read_info(path), n_ctx).total_bytes
    assert 0.85 <= predicted / taken <= 1.15, (predicted, engine.allocated)
