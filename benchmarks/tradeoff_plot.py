"""The speed/fit trade-off as one picture: each policy's median p95 (with its
95 % interval over seeds) against its fit, written as a PNG beside the JSON."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from bench_results import RESULTS

from zeta_desktop.core.settings import Thresholds


def plot_tradeoff(rows: dict[str, dict], name: str, title: str) -> Path:
    """rows: policy -> {"median_p95_s", "median_p95_ci95": [low, high], "fit_acceptable"}.
    A policy with an infinite p95 (it lost prompts) is drawn at the right edge."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    finite = [r["median_p95_s"] for r in rows.values() if r["median_p95_s"] is not None]
    right = 1.2 * max(finite, default=1.0)
    plot = pg.PlotWidget(background="w", title=title)
    plot.resize(900, 600)
    plot.setLabel("bottom", "p95 latency, s (median over seeds; bars: 95 % interval)")
    plot.setLabel("left", "fit: share answered at acceptable quality")
    plot.getAxis("left").enableAutoSIPrefix(False)  # a share, not "x0.001" of one
    colours = {"adaptive": (200, 30, 30), "zeta": (200, 30, 30), "static": (60, 60, 60)}
    sweep: list[tuple[float, float, float]] = []  # (slider setting, p95, fit)
    default = Thresholds.speed_vs_quality
    for policy, row in rows.items():
        x = row["median_p95_s"] if row["median_p95_s"] is not None else right
        y = row["fit_acceptable"]
        low, high = (v if v is not None else right for v in row["median_p95_ci95"])
        base = policy.split("@")[0].split()[0]
        colour = colours.get(base, (30, 90, 200))
        plot.addItem(pg.ErrorBarItem(x=np.array([x]), y=np.array([y]),
                                     left=np.array([x - low]), right=np.array([high - x]),
                                     pen=pg.mkPen(colour, width=1)))
        plot.plot([x], [y], pen=None, symbol="o", symbolBrush=colour, symbolSize=9)
        shown = f"adaptive (default, {default:g})" if policy == "adaptive" else policy
        # The default's label below its point: the sweep's neighbours sit close.
        label = pg.TextItem(shown, color=colour, anchor=(0, 0) if policy == "adaptive" else (0, 1))
        label.setPos(x, y)
        plot.addItem(label)
        if base == "adaptive":
            _, _, setting = policy.partition("@")
            sweep.append((float(setting) if setting else default, x, y))
    if len(sweep) > 1:  # the sweep joined in slider order, from best fit to fastest
        sweep.sort()
        plot.plot([x for _, x, _ in sweep], [y for _, _, y in sweep],
                  pen=pg.mkPen(colours["adaptive"], width=1, style=pg.QtCore.Qt.DashLine))
    out = RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    app.processEvents()
    pyqtgraph.exporters.ImageExporter(plot.plotItem).export(str(out))
    plot.close()
    return out
