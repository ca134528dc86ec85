"""Widgets on their own, without models: the plot scale and the chat label."""

from __future__ import annotations

import time

import numpy as np
import pytest

from zeta_desktop.core.telemetry import Telemetry
from zeta_desktop.ui.chat_pane import WrappedLabel
from zeta_desktop.ui.load_plots import LoadPlots, nice_ceiling


@pytest.mark.parametrize(
    ("value", "floor", "expected"),
    [
        (0.0, 1.0, 1.0),
        (float("nan"), 10.0, 10.0),
        (0.4, 1.0, 1.0),
        (1.5, 1.0, 2.0),
        (2.0, 1.0, 2.0),
        (3.0, 1.0, 5.0),
        (7.0, 1.0, 10.0),
        (42.0, 10.0, 50.0),
        (101.0, 10.0, 200.0),
    ],
)
def test_nice_ceiling_steps_1_2_5(value: float, floor: float, expected: float) -> None:
    assert nice_ceiling(value, floor) == pytest.approx(expected)


def test_plots_scale_y_in_steps_and_bound_curves_by_the_view(qtbot) -> None:  # type: ignore[no-untyped-def]
    telemetry = Telemetry()
    telemetry.register("coder", lambda: (0, 1, ""))
    plots = LoadPlots(telemetry, ["coder"])
    qtbot.addWidget(plots)
    series = telemetry.model_series["coder"]
    now = time.monotonic()
    for i, speed in enumerate((12.0, 37.0, 30.0)):
        series.append(now - 3 + i, {"queue": 0, "in_flight": 1, "tokens_per_s": speed})
    plots.refresh()
    curve = plots.curves[("tokens_per_s", "coder")]
    x, y = curve.getData()
    assert list(y) == [12.0, 37.0, 30.0] and np.all(x < 0)
    assert plots.y_tops["tokens_per_s"] == 50.0  # 37 tok/s shows on a 0-50 scale
    view = plots.plots["tokens_per_s"].getViewBox()
    assert curve.boundingRect() == view.viewRect()
    assert view.viewRange()[1][1] >= 50.0

    # The timer draws one plot per tick; four ticks make one full round.
    series.append(now, {"queue": 0, "in_flight": 1, "tokens_per_s": 180.0})
    rounds = plots.refresh_count
    for _ in range(len(plots.plots)):
        plots._refresh_one()
    assert plots.refresh_count == rounds + 1
    assert plots.y_tops["tokens_per_s"] == 200.0
    assert curve.getData()[1][-1] == 180.0


def test_wrapped_label_measures_again_when_its_text_grows(qtbot) -> None:  # type: ignore[no-untyped-def]
    label = WrappedLabel("short")
    qtbot.addWidget(label)
    one_line = label.heightForWidth(200)
    assert label.heightForWidth(200) == one_line  # from the cache
    label.setText("many words that wrap " * 20)
    wrapped = label.heightForWidth(200)
    assert wrapped > 3 * one_line
    font = label.font()
    font.setPointSize(font.pointSize() * 2)
    label.setFont(font)  # a font change measures again too
    assert label.heightForWidth(200) > wrapped
