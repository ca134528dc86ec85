"""Live load curves per model, drawn from the telemetry ring buffers.

Each curve is created once; a GUI-thread timer copies the buffers and calls
setData. No worker thread ever touches a plot. Each plot redraws when its
curves have moved by a pixel (its time window over its width: a 60 s window
some 180 px wide, every 0.34 s), at most 10 and at least once a second; a
redraw sooner moves nothing the eye can see. The four take turns so that no
single repaint holds the event loop for all of them.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Slot
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QGraphicsScene,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import Telemetry
from zeta_desktop.ui.chat.live_text import LiveText
from zeta_desktop.ui.paint_turns import PaintTurns
from zeta_desktop.ui.style import role_colour, set_small_text

WINDOWS_S = {"60 s": 60.0, "10 min": 600.0}
REFRESH_MS = 100  # each plot's shortest refresh period
SLOWEST_REFRESH_MS = 1000  # and its longest: a new reading shows within a second
MAX_POINTS = 150  # per curve: a few per pixel column is all a small plot can show

pg.setConfigOptions(antialias=False, background="w", foreground="#374151")


# The smallest y range per plot; a larger one grows in 1-2-5 steps.
Y_FLOOR = {"load": 1.0, "tokens_per_s": 10.0, "ttft_s": 1.0}


def _finite(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).any())


def nice_ceiling(value: float, floor: float) -> float:
    """The 1-2-5 step at or above `value`, at least `floor`.

    Steps rather than auto-range keep the axis still (and its cached labels
    valid) while values wander inside the same step.
    """
    if not math.isfinite(value) or value <= floor:
        return floor
    scale = 10.0 ** math.floor(math.log10(value))
    # value < 10 x scale by construction, so the last step always fits.
    return next(m * scale for m in (1.0, 2.0, 5.0, 10.0) if m * scale >= value * (1 - 1e-9))


def _bin(x: np.ndarray, *series: np.ndarray) -> tuple[np.ndarray, ...]:
    """Average consecutive samples so no curve carries more than MAX_POINTS."""
    step = -(-len(x) // MAX_POINTS)
    if step <= 1:
        return (x, *series)
    usable = len(x) // step * step
    return tuple(_bin_mean(a[len(a) - usable:].reshape(-1, step)) for a in (x, *series))


def _bin_mean(blocks: np.ndarray) -> np.ndarray:
    # nanmean costs several times mean; only time to first token has gaps.
    if not np.isnan(blocks).any():
        return blocks.mean(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins stay NaN
        return np.nanmean(blocks, axis=1)


class LiveCurve(pg.PlotCurveItem):
    """A curve whose bounds are its plot's visible range.

    PlotCurveItem works its bounds out from the data (NaN-aware min and max
    plus pixel padding, in Python) after every setData, and the scene asks for
    them on each update. Each plot clips to its view and its ranges are fixed
    (x) or stepped (y), so the view rect is as good an answer, far cheaper.
    """

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        if self._boundingRect is None:
            view = self.getViewBox()
            self._boundingRect = view.viewRect() if view is not None else QRectF()
        return self._boundingRect


class LoadPlots(QWidget):
    def __init__(
        self,
        telemetry: Telemetry,
        roles: list[str],
        paint_turns: PaintTurns | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self._paint_turns = paint_turns
        self.telemetry = telemetry
        self.roles = roles
        self.window_s = WINDOWS_S["60 s"]
        self.refresh_count = 0  # full rounds: every plot updated once

        self.window_box = QComboBox()
        self.window_box.addItems(list(WINDOWS_S))
        self.window_box.currentTextChanged.connect(self._on_window_changed)
        self.machine_label = QLabel("Machine: waiting for a reading")
        self.machine_label.setWordWrap(True)
        set_small_text(self.machine_label, "#4b5563")
        # Temperature, power and memory change with every reading: LiveText, so
        # they never ask the window for a new layout (the legend above rarely changes).
        self.machine_readings = LiveText("100 °C · 1000 W · this app 100.0 GiB",
                                         Qt.AlignmentFlag.AlignRight)
        set_small_text(self.machine_readings, "#4b5563")
        self.machine_readings.hide()

        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumHeight(200)
        # Every curve moves ten times a second: a BSP index of the scene would
        # be rebuilt over and over (Qt's advice for dynamic scenes is NoIndex).
        self.view.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.plots = {
            "load": self._plot(0, 0, "queued + running"),
            "tokens_per_s": self._plot(0, 1, "decode tokens/s"),
            "ttft_s": self._plot(1, 0, "time to first token (s)"),
            "machine": self._plot(1, 1, "machine %"),
        }
        self._set_y_top("machine", 100.0)
        self.y_tops = dict(Y_FLOOR)
        for name, top in self.y_tops.items():
            self._set_y_top(name, top)
        # What the next round draws, per plot: (curve, x, y) triples.
        self._pending: dict[str, list[tuple[LiveCurve, np.ndarray, np.ndarray]]] = {}
        self._turn = 0
        # PlotCurveItem, not plot()'s PlotDataItem: its setData costs a tenth.
        self.curves: dict[tuple[str, str], LiveCurve] = {}
        for role in roles:
            # A role's further replicas: its colour, dashed.
            style = Qt.PenStyle.DashLine if "#" in role else Qt.PenStyle.SolidLine
            pen = pg.mkPen(role_colour(role), width=2, style=style)
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
        machine_row = QHBoxLayout()
        machine_row.addWidget(self.machine_label, 1)
        machine_row.addWidget(self.machine_readings)
        layout.addLayout(machine_row)

        self.timer = QTimer(self)
        self.tick_ms = self._tick_ms()
        self.timer.setInterval(self.tick_ms)
        self.timer.timeout.connect(self._refresh_one)

    def _curve(self, plot: str, pen: object) -> LiveCurve:
        curve = LiveCurve(pen=pen, connect="finite")
        self.plots[plot].addItem(curve)
        return curve

    def _plot(self, row: int, col: int, title: str) -> pg.PlotItem:
        plot = self.view.addPlot(row=row, col=col, title=title)
        plot.setXRange(-self.window_s, 0, padding=0)
        plot.disableAutoRange()  # x is "seconds ago"; y moves in steps (nice_ceiling)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getAxis("bottom").setStyle(tickTextOffset=2)
        plot.titleLabel.setText(title, size="8pt")
        # No grid: a grid makes each axis span its whole plot, so every curve
        # update would repaint it. The axis replays its labels from a QPicture
        # on each repaint; cached as a pixmap it is one blit.
        for side in ("left", "bottom"):
            plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # A y axis sized to its labels widens when they do ("5" -> "10"), and that
        # moves every plot in the layout: all eight axes redrawn, 20+ ms at once.
        # Room for four digits, fixed.
        left = plot.getAxis("left")
        left.setStyle(autoExpandTextSpace=False)
        left.setWidth(QFontMetrics(left.font()).horizontalAdvance("8888") + 8)
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
        """Copy the ring buffers and update every curve now (GUI thread only)."""
        self._collect()
        for name in self.plots:
            self._draw(name)
        self._turn = 0
        self.refresh_count += 1

    @Slot()
    def _refresh_one(self) -> None:
        """The timer's tick: one plot per tick, the buffers copied once per round."""
        # The chat just changed: draw after its repaint, not with it.
        if self._paint_turns and not self._paint_turns.take_or_defer("plots", self.timer):
            return
        names = list(self.plots)
        if self._turn == 0:
            self._collect()
            self.tick_ms = self._tick_ms()  # the window or the width may have changed
        if self.timer.interval() != self.tick_ms:  # back to its pace after waiting
            self.timer.setInterval(self.tick_ms)
        self._draw(names[self._turn])
        self._turn = (self._turn + 1) % len(names)
        if self._turn == 0:
            self.refresh_count += 1

    def refresh_ms(self) -> int:
        """Each plot's refresh period: the time its curves take to move one pixel."""
        width = self.plots["load"].getViewBox().width()
        pixel_ms = 1000 * self.window_s / max(width, 1.0)
        return int(min(max(pixel_ms, REFRESH_MS), SLOWEST_REFRESH_MS))

    def _tick_ms(self) -> int:
        return max(1, self.refresh_ms() // len(self.plots))

    def _draw(self, name: str) -> None:
        pending = self._pending.pop(name, [])
        if not pending:
            return
        for curve, x, y in pending:
            curve.setData(x, y)
        floor = Y_FLOOR.get(name)
        if floor is None:
            return
        highest = max((float(np.nanmax(y)) for _, _, y in pending if _finite(y)), default=0.0)
        top = nice_ceiling(highest, floor)
        if top != self.y_tops[name]:
            self.y_tops[name] = top
            self._set_y_top(name, top)

    def _set_y_top(self, name: str, top: float) -> None:
        """y from 0 to `top`, labelled at 0, half and top only.

        The plots are some 70 px tall: pyqtgraph's automatic ticks put five
        labels on top of one another there.
        """
        self.plots[name].setYRange(0, top, padding=0.05)
        ticks = [(value, f"{value:g}") for value in (0.0, top / 2, top)]
        self.plots[name].getAxis("left").setTicks([ticks, []])

    def _collect(self) -> None:
        now = time.monotonic()
        since = now - self.window_s
        pending: dict[str, list[tuple[LiveCurve, np.ndarray, np.ndarray]]] = {
            name: [] for name in self.plots
        }
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
            pending["load"].append((self.curves[("load", role)], x, load))
            pending["tokens_per_s"].append((self.curves[("tokens_per_s", role)], x, speed))
            if _finite(ttft):
                pending["ttft_s"].append((self.curves[("ttft_s", role)], x, ttft))
        pending["machine"] = self._collect_machine(now, since)
        self._pending = pending

    def _collect_machine(
        self, now: float, since: float
    ) -> list[tuple[LiveCurve, np.ndarray, np.ndarray]]:
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
            text = f"GPU ({names}, NVML): solid = utilisation %, dashed = memory %"
            readings = " · ".join(extra)
        else:
            first, second = values["cpu"], values["ram"]
            why = reading.note if reading is not None and reading.note else "no NVIDIA GPU"
            text = f"CPU and RAM (psutil): solid = CPU %, dashed = RAM % · {why}"
            readings = ""
        x, first, second = _bin(x, np.asarray(first), np.asarray(second))
        if self.machine_label.text() != text:
            self.machine_label.setText(text)
        self.machine_readings.setText(readings)
        if self.machine_readings.isHidden() == bool(readings):
            self.machine_readings.setVisible(bool(readings))
        return [
            (self.machine_curves["first"], x, first),
            (self.machine_curves["second"], x, second),
        ]
