"""Machine readings: NVML absent is normal; recorded readings drive the real path."""

from __future__ import annotations

import math
import time

import pytest

from zeta_desktop.core.routing.machine import GpuReading, MachineReading, NvmlSource, RecordedSource
from zeta_desktop.core.routing.telemetry import Telemetry


def test_without_an_nvidia_driver_readings_fall_back_to_cpu_and_ram() -> None:
    source = NvmlSource()
    reading = source.read()
    source.close()
    # CI and these machines have no NVIDIA driver; a GPU machine gets "nvml".
    if reading.source == "psutil":
        assert reading.gpus == ()
        assert "NVML" in reading.note
        assert reading.ram_total_mb > 0 and 0 <= reading.cpu_pct <= 100
    else:
        assert reading.gpus and reading.gpus[0].mem_total_mb


def test_recorded_readings_flow_into_the_plot_series() -> None:
    gpu = GpuReading(0, "RTX 4090", 55.0, 12_000, 24_000, 61.0, 300.0, 9_000)
    readings = [
        MachineReading("nvml", (gpu,), 20.0, 4_000, 32_000, taken_at=1.0),
        MachineReading("psutil", (), 35.0, 5_000, 32_000, note="NVML failed mid-run", taken_at=2.0),
    ]
    source = RecordedSource(readings)
    telemetry = Telemetry()
    telemetry.register("coder", lambda: (2, 1, "busy"))
    for _ in readings:
        telemetry.set_machine(source.read())
        telemetry.sample(time.monotonic())
    _, values = telemetry.machine_series.copy()
    assert values["gpu_util"][0] == 55.0 and values["gpu_mem"][0] == 50.0
    assert math.isnan(values["gpu_util"][1])  # the fallback has no GPU numbers
    assert values["cpu"].tolist() == [20.0, 35.0]
    _, model = telemetry.model_series["coder"].copy()
    assert model["queue"].tolist() == [2.0, 2.0] and model["in_flight"].tolist() == [1.0, 1.0]
    assert telemetry.machine is not None and telemetry.machine.note == "NVML failed mid-run"


def test_zero_gpu_use_is_a_value_not_missing() -> None:
    idle = GpuReading(0, "A100", 0.0, 0.0, 40_000, None, None, None)
    telemetry = Telemetry()
    telemetry.set_machine(MachineReading("nvml", (idle,), 1.0, 1, 2))
    telemetry.sample()
    _, values = telemetry.machine_series.copy()
    assert values["gpu_util"].tolist() == [0.0] and values["gpu_mem"].tolist() == [0.0]


def test_series_keep_the_newest_samples_in_order() -> None:
    from zeta_desktop.core.routing.telemetry import Series

    series = Series(("v",), length=5)
    for i in range(8):
        series.append(float(i), {"v": i * 10.0})
    times, values = series.copy()
    assert times.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert values["v"].tolist() == [30.0, 40.0, 50.0, 60.0, 70.0]
    times, values = series.copy(since=5.5)
    assert times.tolist() == [6.0, 7.0] and values["v"].tolist() == [60.0, 70.0]


@pytest.mark.parametrize("appended", [0, 3, 5, 7, 12])
@pytest.mark.parametrize("since", [None, -1.0, 2.0, 4.5, 9.0, 100.0])
def test_a_series_copies_exactly_the_samples_since(appended: int, since: float | None) -> None:
    """Wrapped or not, whichever part of the ring the window starts in."""
    from zeta_desktop.core.routing.telemetry import Series

    series = Series(("v",), length=5)
    for i in range(appended):
        series.append(float(i), {"v": i * 10.0})
    kept = [i for i in range(max(0, appended - 5), appended) if since is None or i >= since]
    times, values = series.copy(since)
    assert times.tolist() == [float(i) for i in kept]
    assert values["v"].tolist() == [i * 10.0 for i in kept]
