"""Machine readings: NVIDIA GPUs through NVML, else CPU and RAM through psutil.

NVML missing (no driver), failing mid-run, or a metric it does not support
are normal states: the reading says which source it came from and why, and
routing carries on with whatever is known.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    util_pct: float | None
    mem_used_mb: float | None
    mem_total_mb: float | None
    temperature_c: float | None
    power_w: float | None
    process_mem_mb: float | None  # this process's memory on the GPU

    @property
    def mem_pct(self) -> float | None:
        if self.mem_used_mb is None or not self.mem_total_mb:
            return None
        return 100.0 * self.mem_used_mb / self.mem_total_mb


@dataclass(frozen=True)
class MachineReading:
    source: str  # "nvml", "psutil"
    gpus: tuple[GpuReading, ...]
    cpu_pct: float
    ram_used_mb: float
    ram_total_mb: float
    note: str = ""  # why there is no GPU reading, when there is none
    taken_at: float = 0.0

    @property
    def max_gpu_util_pct(self) -> float | None:
        values = [g.util_pct for g in self.gpus if g.util_pct is not None]
        return max(values) if values else None

    @property
    def max_gpu_mem_pct(self) -> float | None:
        values = [g.mem_pct for g in self.gpus if g.mem_pct is not None]
        return max(values) if values else None

    @property
    def ram_pct(self) -> float:
        return 100.0 * self.ram_used_mb / self.ram_total_mb if self.ram_total_mb else 0.0


class MachineSource(Protocol):
    def read(self) -> MachineReading: ...
    def close(self) -> None: ...


def _cpu_ram(source: str, gpus: tuple[GpuReading, ...], note: str) -> MachineReading:
    memory = psutil.virtual_memory()
    return MachineReading(
        source=source,
        gpus=gpus,
        cpu_pct=psutil.cpu_percent(interval=None),
        ram_used_mb=(memory.total - memory.available) / 2**20,
        ram_total_mb=memory.total / 2**20,
        note=note,
        taken_at=time.monotonic(),
    )


class NvmlSource:
    """Reads every NVIDIA GPU; falls back to CPU/RAM with a note when NVML fails."""

    RETRY_AFTER_S = 30.0

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._note = ""
        self._next_try = 0.0
        self._pid = os.getpid()
        psutil.cpu_percent(interval=None)  # prime: the first call always returns 0

    def _init(self) -> None:
        now = time.monotonic()
        if self._nvml is not None or now < self._next_try:
            return
        self._next_try = now + self.RETRY_AFTER_S
        try:
            import pynvml
        except ImportError:
            self._note = "NVML unavailable: the nvidia-ml-py package is not installed"
            return
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except pynvml.NVMLError as exc:
            self._note = f"NVML unavailable: {_nvml_error_text(exc)}"
            return
        self._nvml = pynvml
        self._note = "" if self._handles else "NVML found no NVIDIA GPU"

    def read(self) -> MachineReading:
        self._init()
        if self._nvml is None or not self._handles:
            return _cpu_ram("psutil", (), self._note)
        try:
            gpus = tuple(self._read_gpu(i, h) for i, h in enumerate(self._handles))
        except self._nvml.NVMLError as exc:
            # The driver went away mid-run: fall back, try again later.
            self._note = f"NVML failed mid-run: {_nvml_error_text(exc)}"
            log.warning("%s", self._note)
            self.close()
            return _cpu_ram("psutil", (), self._note)
        return _cpu_ram("nvml", gpus, "")

    def _metric(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except self._nvml.NVMLError_NotSupported:
            return None

    def _read_gpu(self, index: int, handle: Any) -> GpuReading:
        nvml = self._nvml
        name = nvml.nvmlDeviceGetName(handle)
        if isinstance(name, bytes):
            name = name.decode()
        util = self._metric(nvml.nvmlDeviceGetUtilizationRates, handle)
        memory = self._metric(nvml.nvmlDeviceGetMemoryInfo, handle)
        temperature = self._metric(
            nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU
        )
        power_mw = self._metric(nvml.nvmlDeviceGetPowerUsage, handle)
        processes = self._metric(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
        own = [p.usedGpuMemory for p in processes if p.pid == self._pid and p.usedGpuMemory]
        return GpuReading(
            index=index,
            name=str(name),
            util_pct=float(util.gpu) if util is not None else None,
            mem_used_mb=memory.used / 2**20 if memory is not None else None,
            mem_total_mb=memory.total / 2**20 if memory is not None else None,
            temperature_c=float(temperature) if temperature is not None else None,
            power_w=power_mw / 1000.0 if power_mw is not None else None,
            process_mem_mb=sum(own) / 2**20 if own else (0.0 if processes else None),
        )

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
        self._nvml = None
        self._handles = []


def _nvml_error_text(exc: Exception) -> str:
    name = type(exc).__name__
    if "LibraryNotFound" in name:
        return "no NVIDIA driver found (NVMLError_LibraryNotFound); showing CPU and RAM"
    if "DriverNotLoaded" in name:
        return "the NVIDIA driver is not loaded; showing CPU and RAM"
    return f"{name}: {exc}"


class RecordedSource:
    """Replays readings (from a test or a recorded run) through the real interface."""

    def __init__(self, readings: list[MachineReading]) -> None:
        if not readings:
            raise ValueError("RecordedSource needs at least one reading")
        self._readings = list(readings)
        self._index = 0

    def read(self) -> MachineReading:
        reading = self._readings[min(self._index, len(self._readings) - 1)]
        self._index += 1
        return reading

    def close(self) -> None:
        pass
