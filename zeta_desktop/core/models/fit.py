"""Will it fit? A load is planned against free memory before it is tried.

Free RAM and VRAM come from the machine readings (psutil, NVML); models
already loaded are in them, and models loading at the same moment are
counted by their estimates (`Reservations`). A load that would not fit is
refused with the numbers, never tried into an out-of-memory kill; with
`n_gpu_layers = "auto"` as many layers go to the GPU as fit there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from zeta_desktop.core.models.gguf_info import GGUFInfo
from zeta_desktop.core.models.memory import MemoryEstimate, estimate, mib
from zeta_desktop.core.settings import AUTO_GPU_LAYERS

CPU_BUILD_NOTE = ("this llama.cpp build cannot offload to the GPU: every layer runs on the "
                  "CPU and is counted against RAM; `make setup GPU=cuda` builds one that can")


@dataclass(frozen=True)
class FitPlan:
    ok: bool
    n_gpu_layers: int  # what to load with (auto resolved)
    estimate: MemoryEstimate
    message: str  # why not, or what auto chose


def _parts(est: MemoryEstimate, n_ctx: int) -> str:
    return (f"weights {mib(est.weights_ram + est.weights_vram)}, KV cache {mib(est.kv_cache)} "
            f"for n_ctx {n_ctx}, compute {mib(est.compute)}")


def plan_load(info: GGUFInfo, n_ctx: int, n_gpu_layers: int, free_ram: int,
              free_vram: int | None, can_offload: bool = True) -> FitPlan:
    """The load to make, or why none fits. `free_vram` None: no GPU.
    `can_offload` False: the llama.cpp build has no GPU backend, so every
    layer stays on the CPU and everything is counted against RAM."""
    layers = n_gpu_layers
    note = ""
    if not can_offload:
        if n_gpu_layers != 0 and free_vram is not None:  # a GPU the build cannot use
            note = CPU_BUILD_NOTE
        free_vram, layers = None, 0
    elif free_vram is None:
        layers = 0 if n_gpu_layers == AUTO_GPU_LAYERS else n_gpu_layers
    elif n_gpu_layers == AUTO_GPU_LAYERS:
        layers = 0
        for candidate in range(info.n_layers, 0, -1):
            if estimate(info, n_ctx, candidate).vram_bytes <= free_vram:
                layers = candidate
                break
        note = (f"auto: {layers} of {info.n_layers} layers on the GPU "
                f"({mib(free_vram)} free there)")
    est = estimate(info, n_ctx, layers if free_vram is not None else 0)
    if free_vram is not None and est.vram_bytes > free_vram:
        return FitPlan(False, layers, est, (
            f"{info.path.name} needs about {mib(est.vram_bytes)} of GPU memory with "
            f"{est.offloaded_layers} layers offloaded ({_parts(est, n_ctx)}) but "
            f"{mib(free_vram)} is free; offload fewer layers, or set n_gpu_layers = \"auto\""))
    if est.ram_bytes > free_ram:
        return FitPlan(False, layers, est, (
            f"{info.path.name} needs about {mib(est.ram_bytes)} of RAM ({_parts(est, n_ctx)}) "
            f"but {mib(free_ram)} is free, counting the models loading now; lower n_ctx, "
            "choose a smaller quantisation, or offload layers to a GPU"))
    return FitPlan(True, layers, est, note)


class Reservations:
    """Memory promised to loads in progress, which free memory does not show yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[int, int]] = {}

    def others(self, key: str) -> tuple[int, int]:
        with self._lock:
            held = [v for k, v in self._held.items() if k != key]
        return sum(r for r, _ in held), sum(v for _, v in held)

    def hold(self, key: str, est: MemoryEstimate) -> None:
        with self._lock:
            self._held[key] = (est.ram_bytes, est.vram_bytes)

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)
