"""The chat and the plots repaint in separate passes: each waits out the other's gap."""

from __future__ import annotations

import time

from zeta_desktop.core.routing.telemetry import Telemetry
from zeta_desktop.ui.paint_turns import GAP_S, PaintTurns


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_side_waits_out_the_other_sides_gap_but_never_its_own() -> None:
    clock = FakeClock()
    turns = PaintTurns(clock)
    assert turns.wait_ms("chat") == 0  # nobody has drawn yet
    turns.take("plots")
    assert turns.wait_ms("plots") == 0  # a side never waits for itself
    assert turns.wait_ms("chat") == round(GAP_S * 1000)
    clock.now += GAP_S / 2
    assert 0 < turns.wait_ms("chat") <= round(GAP_S * 500)
    clock.now += GAP_S / 2
    assert turns.wait_ms("chat") == 0


def test_new_tokens_wait_for_a_plot_just_drawn_then_show(qtbot) -> None:  # type: ignore[no-untyped-def]
    from zeta_desktop.ui.chat.chat_pane import ChatPane

    turns = PaintTurns()
    pane = ChatPane(turns)
    qtbot.addWidget(pane)
    pane.show()
    pane.add_user_message("hi")
    pane.add_pending_answer(1)
    view = pane.answer_view(1)
    assert view is not None
    view.start_streaming()
    pane.append_text(1, "hello")
    turns.take("plots")
    pane._show_new_text()  # as if its timer fired right after a plot tick
    assert view.shown_text() == ""  # put off, not dropped
    assert pane._text_timer.isActive()
    qtbot.waitUntil(lambda: view.shown_text() == "hello", timeout=2000)


def test_a_plot_tick_right_after_new_tokens_waits_then_draws(qtbot) -> None:  # type: ignore[no-untyped-def]
    from zeta_desktop.ui.router.load_plots import LoadPlots

    telemetry = Telemetry()
    telemetry.register("coder", lambda: (0, 1, ""))
    telemetry.model_series["coder"].append(
        time.monotonic(), {"queue": 1, "in_flight": 1, "tokens_per_s": 5.0}
    )
    turns = PaintTurns()
    plots = LoadPlots(telemetry, ["coder"], turns)
    qtbot.addWidget(plots)
    curve = plots.curves[("load", "coder")]
    turns.take("chat")
    plots._refresh_one()
    assert len(curve.xData) == 0  # nothing drawn in the chat's pass
    assert plots.timer.interval() < plots.tick_ms  # it comes back once the gap is over
    plots.start()
    qtbot.waitUntil(lambda: len(curve.xData) == 1, timeout=2000)
    assert plots.timer.interval() == plots.tick_ms  # and then keeps its normal pace
    plots.stop()
