"""Widgets on their own, without models: plot scale, chat labels, start-up GC."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, QRect

from zeta_desktop.core.routing.telemetry import Telemetry
from zeta_desktop.ui.chat.message_view import WrappedLabel
from zeta_desktop.ui.router.load_plots import LoadPlots, nice_ceiling


class EventLog(QObject):
    """An event filter that keeps the events of one type a widget receives."""

    def __init__(self, kind: QEvent.Type) -> None:
        super().__init__()
        self.kind = kind
        self.rects: list[QRect] = []  # each event's rect (paint events), else empty rects

    @property
    def count(self) -> int:
        return len(self.rects)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == self.kind:
            self.rects.append(event.rect() if self.kind == QEvent.Type.Paint else QRect())
        return False



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
    # Three labels that fit a small plot, on an axis whose width never moves the others.
    axis = plots.plots["tokens_per_s"].getAxis("left")
    assert [value for value, _ in axis._tickLevels[0]] == [0.0, 100.0, 200.0]
    assert [value for value, _ in plots.plots["machine"].getAxis("left")._tickLevels[0]] == [
        0.0, 50.0, 100.0
    ]
    assert axis.fixedWidth is not None


def test_plots_show_the_gpu_legend_and_its_live_readings(qtbot) -> None:  # type: ignore[no-untyped-def]
    from zeta_desktop.core.routing.machine import GpuReading, MachineReading

    telemetry = Telemetry()
    plots = LoadPlots(telemetry, [])
    qtbot.addWidget(plots)
    plots.refresh()
    assert "CPU and RAM" in plots.machine_label.text() and plots.machine_readings.isHidden()
    gpu = GpuReading(0, "RTX 4090", 55.0, 12_000, 24_000, 61.0, 300.0, 9_000)
    telemetry.set_machine(MachineReading("nvml", (gpu,), 20.0, 8_000, 32_000))
    plots.refresh()
    assert plots.machine_label.text().startswith("GPU (RTX 4090, NVML)")
    assert plots.machine_readings.text() == "61 °C · 300 W · this app 8.8 GiB"
    assert not plots.machine_readings.isHidden()


def test_role_card_shows_the_speed_now_while_answering(qtbot) -> None:  # type: ignore[no-untyped-def]
    from zeta_desktop.ui.models.role_panel import RoleCard

    telemetry = Telemetry()
    depth = [(0, 1, "busy")]
    model = telemetry.register("coder", lambda: depth[0])
    now = time.monotonic()
    series = telemetry.model_series["coder"]
    for i, rate in enumerate((0.0, 30.0, 40.0, 50.0)):  # 10 Hz samples; the first is old
        series.append(now - 5 + (0 if i == 0 else 4.6 + i * 0.1),
                      {"queue": 0, "in_flight": 1, "tokens_per_s": rate})
    live = telemetry.recent_tokens_per_s("coder", now=now)
    assert live == 40.0  # the last two seconds only
    card = RoleCard("coder")
    qtbot.addWidget(card)
    model.record_first_token(0.25)
    card.set_stats(telemetry.snapshot().models["coder"], live)
    assert card.stats_label.text() == "queue 0+1 · TTFT 0.25 s · 40 tok/s · 100% ok"
    # Idle again: the average over finished answers (none yet).
    depth[0] = (0, 0, "ready")
    card.set_stats(telemetry.snapshot().models["coder"], live)
    assert "– tok/s" in card.stats_label.text()


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


def test_chat_of_long_answers_is_as_tall_as_its_messages(qtbot) -> None:  # type: ignore[no-untyped-def]
    """No blank space under the last answer: the scroll area once reserved each
    message's height at 200 px wide, so the newest answers ended up out of view."""

    from zeta_desktop.ui.chat.chat_pane import ChatPane

    pane = ChatPane()
    qtbot.addWidget(pane)
    pane.resize(700, 500)
    pane.show()
    for turn in range(8):
        pane.add_user_message(f"question {turn}")
        pane.add_pending_answer(turn)
        view = pane.answer_view(turn)
        assert view is not None
        view.append("a long answer with many words " * 40)
        view.show_text()
        if turn < 6:
            pane._finish(turn)  # two answers still streaming, as with several models
    last = pane.message_views()[-1]
    viewport = pane.scroll.viewport()

    def last_answer_in_view() -> bool:
        shown = QRect(last.mapTo(viewport, last.rect().topLeft()), last.size())
        laid_out = pane.scroll.verticalScrollBar().maximum() > 0  # it holds screens of text
        return laid_out and viewport.rect().contains(shown)

    qtbot.waitUntil(last_answer_in_view, timeout=5000)
    list_widget = pane.scroll.widget()
    content = max(view.geometry().bottom() for view in pane.message_views())
    assert list_widget.height() - content < 40  # the list's margin, not screens of blank


def test_live_text_repaints_without_asking_for_a_layout(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

    from zeta_desktop.ui.chat.live_text import LiveText

    parent = QWidget()
    qtbot.addWidget(parent)
    text = LiveText("queue 10+1 · 100 tok/s")
    QVBoxLayout(parent).addWidget(text)
    parent.resize(300, 100)
    parent.show()
    QApplication.processEvents()
    requests = EventLog(QEvent.Type.LayoutRequest)
    parent.installEventFilter(requests)
    for value in (1, 22, 333, 4444):
        text.setText(f"queue 0+1 · {value} tok/s")
        QApplication.processEvents()
    assert requests.count == 0 and text.text() == "queue 0+1 · 4444 tok/s"
    assert text.sizeHint().width() == text.fontMetrics().horizontalAdvance("queue 10+1 · 100 tok/s")
    text.resize(40, text.height())  # too narrow: cut, the whole text on hover
    text.repaint()
    assert text.toolTip() == "queue 0+1 · 4444 tok/s"


def test_start_up_objects_are_parked_out_of_the_collectors_way() -> None:
    import gc

    from zeta_desktop.ui.app import settle_garbage_collector

    try:
        settle_garbage_collector()
        # Qt, numpy and pyqtgraph are loaded here: tens of thousands of objects.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # leave the rest of the test run as it was


def test_application_fills_on_the_gui_thread(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from zeta_desktop.ui.app import make_application

    monkeypatch.delenv("QT_NO_GUI_THREADPOOL", raising=False)
    make_application()
    # Qt reads it before its first fill: no thread pool hand-off per paint.
    assert os.environ["QT_NO_GUI_THREADPOOL"] == "1"


def test_a_message_builds_only_the_parts_it_shows_in_their_places(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Widgets are made when first needed (a prompt sent adds two messages while
    models stream); made late, each still lands where it belongs."""
    from PySide6.QtWidgets import QWidget

    from zeta_desktop.ui.chat.answer_body import AnswerBody
    from zeta_desktop.ui.chat.message_view import Badge, MessageView, WrappedLabel

    def parts(view: MessageView) -> list[type]:
        return [type(child) for child in view.findChildren(QWidget)]

    question = MessageView("You", "what is a list?", "#6b7280")
    qtbot.addWidget(question)
    assert parts(question).count(WrappedLabel) == 1  # the text, no footer
    assert Badge not in parts(question) and AnswerBody not in parts(question)

    answer = MessageView("…", "", "#9ca3af", markdown=True)
    qtbot.addWidget(answer)
    answer.resize(400, 200)
    answer.show()
    assert AnswerBody not in parts(answer)  # nothing to show yet
    answer.set_footer("routing…")  # the footer comes first, the answer's text after
    answer.start_streaming()
    answer.append("a list holds items in order")
    answer.show_text()
    assert Badge not in parts(answer) and answer.shown_text() == "a list holds items in order"
    qtbot.waitUntil(lambda: answer.answer.isVisible() and answer.footer.isVisible(), timeout=2000)
    assert answer.answer.geometry().bottom() < answer.footer.geometry().top()
    answer.set_badge("coder · code", "#2563eb")
    answer.finish_streaming()
    header_y = answer.header.geometry().top()
    assert answer.badge.geometry().top() <= header_y + 4  # beside the header
    assert header_y < answer.answer.geometry().top() < answer.footer.geometry().top()
    assert answer.answer.prose_views()[0].toPlainText() == "a list holds items in order"


def test_chat_list_settles_when_its_reach_ends_between_two_messages(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A message that ends in the gap just above the list's reach was shown by
    one pass and hidden by the next, each asking for another: a thousand
    passes a second while the chat sat still (`make bench-ui` caught it)."""
    from PySide6.QtCore import QCoreApplication

    from zeta_desktop.ui.chat.chat_pane import ChatPane
    from zeta_desktop.ui.chat.message_list import SPACING

    pane = ChatPane()
    qtbot.addWidget(pane)
    pane.resize(700, 500)
    pane.show()
    for turn in range(12):
        pane.add_user_message(f"question {turn}", key=f"q{turn}")
        pane.add_answer(turn, "a long answer with many words " * 30)
    bar = pane.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 6 * pane.scroll.viewport().height(), timeout=5000)
    pane.messages.scroll_to("q6")
    above = pane.messages.view(5)
    assert above is not None
    # The reach starts a screen above the view: put its edge in the gap under answer 5.
    gap_at = above.geometry().bottom() + 1 + SPACING // 2
    bar.setValue(gap_at + pane.scroll.viewport().height())
    for _ in range(3):
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()
    shown, hidden = EventLog(QEvent.Type.Show), EventLog(QEvent.Type.Hide)
    for view in pane.messages.views():
        view.installEventFilter(shown)
        view.installEventFilter(hidden)
    for _ in range(5):
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()
    assert (shown.count, hidden.count) == (0, 0)


def test_each_plot_redraws_when_its_curves_have_moved_a_pixel(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A redraw sooner moves nothing the eye can see; none is more than a second apart."""
    telemetry = Telemetry()
    telemetry.register("coder", lambda: (0, 1, ""))
    plots = LoadPlots(telemetry, ["coder"])
    qtbot.addWidget(plots)
    plots.resize(1400, 400)
    plots.show()
    view = plots.plots["load"].getViewBox()
    qtbot.waitUntil(lambda: view.width() > 400, timeout=2000)
    pixel_ms = 1000 * 60.0 / view.width()
    assert plots.refresh_ms() == int(max(pixel_ms, 100))
    plots.window_box.setCurrentText("10 min")  # 600 s over the same pixels: a second at most
    assert plots.refresh_ms() == 1000
    plots.start()
    plots.refresh()  # a new round: the four plots take turns within the period
    plots._refresh_one()
    assert plots.timer.interval() == plots.tick_ms == 1000 // len(plots.plots)
    plots.stop()
