"""Live load curves per model, drawn from the telemetry ring buffers.

Each curve is created once; a GUI-thread timer (about 10 Hz) copies the
buffers and calls setData. No worker thread ever touches a plot.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from zeta_desktop.core.telemetry import Telemetry
from zeta_desktop.ui.style import ROLE_COLOURS

WINDOWS_S = {"60 s": 60.0, "10 min": 600.0}
REFRESH_MS = 100
MAX_POINTS = 150  # per curve: a few per pixel column is all a small plot can show

pg.setConfigOptions(antialias=False, background="w", foreground="#374151")


def _finite(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).any())


def _bin(x: np.ndarray, *series: np.ndarray) -> tuple[np.ndarray, ...]:
    """Average consecutive samples so no curve carries more than MAX_POINTS."""
    step = -(-len(x) // MAX_POINTS)
    if step <= 1:
        return (x, *series)
    usable = len(x) // step * step
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins stay NaN
        return tuple(
            np.nanmean(a[len(a) - usable:].reshape(-1, step), axis=1) for a in (x, *series)
        )


class LoadPlots(QWidget):
    def __init__(self, telemetry: Telemetry, roles: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.telemetry = telemetry
        self.roles = roles
        self.window_s = WINDOWS_S["60 s"]
        self.refresh_count = 0

        self.window_box = QComboBox()
        self.window_box.addItems(list(WINDOWS_S))
        self.window_box.currentTextChanged.connect(self._on_window_changed)
        self.machine_label = QLabel("Machine: waiting for a reading")
        self.machine_label.setWordWrap(True)
        self.machine_label.setStyleSheet("color: #4b5563; font-size: 11px;")

        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumHeight(200)
        self.plots = {
            "load": self._plot(0, 0, "queued + running"),
            "tokens_per_s": self._plot(0, 1, "decode tokens/s"),
            "ttft_s": self._plot(1, 0, "time to first token (s)"),
            "machine": self._plot(1, 1, "machine %"),
        }
        self.plots["machine"].setYRange(0, 100)
        # PlotCurveItem, not plot()'s PlotDataItem: its setData costs a tenth.
        self.curves: dict[tuple[str, str], pg.PlotCurveItem] = {}
        for role in roles:
            pen = pg.mkPen(ROLE_COLOURS.get(role, "#6b7280"), width=2)
            for name in ("load", "tokens_per_s", "ttft_s"):
                self.curves[(name, role)] = self._curve(name, pen)
        self.machine_curves = {
            "first": self._curve("machine", pg.mkPen("#7c3aed", width=2)),
            "second": self._curve(
                "machine",
                pg.mkPen("#db2777", width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
            ),
        }

        top = QHBoxLayout()
        top.addWidget(QLabel("Live load"))
        top.addStretch(1)
        top.addWidget(QLabel("window"))
        top.addWidget(self.window_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.machine_label)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    def _curve(self, plot: str, pen: object) -> pg.PlotCurveItem:
        curve = pg.PlotCurveItem(pen=pen, connect="finite")
        self.plots[plot].addItem(curve)
        return curve

    def _plot(self, row: int, col: int, title: str) -> pg.PlotItem:
        plot = self.view.addPlot(row=row, col=col, title=title)
        plot.setXRange(-self.window_s, 0, padding=0)
        plot.disableAutoRange(axis="x")  # x is "seconds ago": a fixed range
        plot.showGrid(x=False, y=True, alpha=0.2)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getAxis("bottom").setStyle(tickTextOffset=2)
        plot.titleLabel.setText(title, size="8pt")
        return plot

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @Slot(str)
    def _on_window_changed(self, text: str) -> None:
        self.window_s = WINDOWS_S[text]
        for plot in self.plots.values():
            plot.setXRange(-self.window_s, 0, padding=0)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Copy the ring buffers and update every curve (GUI thread only)."""
        now = time.monotonic()
        since = now - self.window_s
        for role in self.roles:
            series = self.telemetry.model_series.get(role)
            if series is None:
                continue
            times, values = series.copy(since)
            x = np.asarray(times) - now
            load = np.asarray(values["queue"]) + np.asarray(values["in_flight"])
            x, load, speed, ttft = _bin(
                x, load, np.asarray(values["tokens_per_s"]), np.asarray(values["ttft_s"])
            )
            self.curves[("load", role)].setData(x, load)
            self.curves[("tokens_per_s", role)].setData(x, speed)
            if _finite(ttft):
                self.curves[("ttft_s", role)].setData(x, ttft)
        self._refresh_machine(now, since)
        self.refresh_count += 1

    def _refresh_machine(self, now: float, since: float) -> None:
        reading = self.telemetry.machine
        times, values = self.telemetry.machine_series.copy(since)
        x = np.asarray(times) - now
        if reading is not None and reading.source == "nvml" and reading.gpus:
            first, second = values["gpu_util"], values["gpu_mem"]
            gpu = reading.gpus[0]
            names = ", ".join(sorted({g.name for g in reading.gpus}))
            extra = []
            if gpu.temperature_c is not None:
                extra.append(f"{gpu.temperature_c:.0f} °C")
            if gpu.power_w is not None:
                extra.append(f"{gpu.power_w:.0f} W")
            if gpu.process_mem_mb is not None:
                extra.append(f"this app {gpu.process_mem_mb / 1024:.1f} GiB")
            text = (
                f"GPU ({names}, NVML): solid = utilisation %, dashed = memory %"
                + (f" · {' · '.join(extra)}" if extra else "")
            )
        else:
            first, second = values["cpu"], values["ram"]
            why = reading.note if reading is not None and reading.note else "no NVIDIA GPU"
            text = f"CPU and RAM (psutil): solid = CPU %, dashed = RAM % · {why}"
        x, first, second = _bin(x, np.asarray(first), np.asarray(second))
        self.machine_curves["first"].setData(x, first)
        self.machine_curves["second"].setData(x, second)
        if self.machine_label.text() != text:
            self.machine_label.setText(text)
