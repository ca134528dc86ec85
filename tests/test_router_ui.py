"""Live plots, sliders, route preview, override and badges in the real window."""

from __future__ import annotations

import math
import tomllib

import pytest
from PySide6.QtCore import Qt

from zeta_desktop.core.config import load_config
from zeta_desktop.core.routing.classifier import TaskKind
from zeta_desktop.core.settings import THRESHOLD_LIMITS, Thresholds
from zeta_desktop.ui.main_window import MainWindow

pytestmark = pytest.mark.model
TIMEOUT_MS = 60_000


def send(qtbot, window: MainWindow, prompt: str) -> int:  # type: ignore[no-untyped-def]
    """Send through the window; returns the new turn's id once it is routed.

    Waits on the session, not on a signal: a turn routed twice in quick
    succession (a failover) would deliver a second queued emission to a
    waitSignal blocker already gone."""
    before = {t.turn_id for t in window.api.turns}
    window.chat.input.setPlainText(prompt)
    qtbot.mouseClick(window.chat.send_button, Qt.MouseButton.LeftButton)

    def routed() -> int | None:
        return next((t.turn_id for t in window.api.turns
                     if t.turn_id not in before and t.decision is not None), None)

    def shown() -> bool:  # the window has heard of the routing too (the badge is up)
        turn_id = routed()
        view = window.answer_view(turn_id) if turn_id is not None else None
        return view is not None and not view.badge.isHidden()

    qtbot.waitUntil(shown, timeout=TIMEOUT_MS)
    turn_id = routed()
    assert turn_id is not None
    return turn_id


def test_moving_a_slider_changes_the_router_and_the_saved_config(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    slider = window.router_panel.sliders["max_wait_s"]
    expected = Thresholds().max_wait_s + 4.0
    slider.setValue(slider.value() + 8)  # steps of 0.5 s
    assert window.api.session.router.thresholds.max_wait_s == expected
    assert window.router_panel.value_labels["max_wait_s"].text() == f"{expected:g} s"

    def saved() -> float:
        data = tomllib.loads(window.api.config_path.read_text())
        return float(data["router"]["max_wait_s"])

    qtbot.waitUntil(lambda: saved() == expected, timeout=5000)


def test_every_slider_reaches_exactly_what_the_file_accepts(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """One definition: a slider's ends are the file's limits, so no saved value
    is clipped by its slider, and none the slider sets is refused on reading."""
    for name, (low, high) in THRESHOLD_LIMITS.items():
        slider = window.router_panel.sliders[name]
        slider.setValue(slider.maximum())
        assert getattr(window.api.session.router.thresholds, name) == high
        slider.setValue(slider.minimum())
        assert getattr(window.api.session.router.thresholds, name) == low
        slider.setValue(slider.maximum())
    window.router_panel.save()
    loaded = load_config(window.api.config_path)
    assert loaded.problems == []
    assert loaded.config.router.thresholds() == Thresholds(**{
        name: high for name, (_low, high) in THRESHOLD_LIMITS.items()})


def test_policy_selector_switches_the_policy_and_reset_restores(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.router_panel.policy_box.setCurrentText("least-busy")
    assert window.api.session.router.policy == "least-busy"
    window.router_panel.sliders["max_queue"].setValue(9)
    window.api.session.router.learn_choice(TaskKind.CODE, "reasoner", "coder")
    assert window.api.session.router.learned_shift()
    window.router_panel.reset_button.click()
    assert window.api.session.router.learned_shift() == {}  # the user's choices are forgotten too
    assert window.api.session.router.policy == "adaptive"
    assert window.api.session.router.thresholds == Thresholds()
    assert window.router_panel.sliders["max_queue"].value() == Thresholds().max_queue


def test_route_preview_follows_a_threshold_across_the_live_load(  # type: ignore[no-untyped-def]
    qtbot, gated_window: MainWindow
) -> None:
    window = gated_window
    panel = window.router_panel
    panel.sliders["max_queue"].setValue(5)
    panel.sliders["speed_vs_quality"].setValue(20)  # 1.0: a busy coder is worth leaving
    turn_id = send(qtbot, window, "```\nfix this code\n```")
    assert window.api.turn(turn_id).role == "coder"
    qtbot.waitUntil(lambda: window.api.turn(turn_id).status == "streaming", timeout=TIMEOUT_MS)
    panel.refresh_preview()
    assert panel.preview.item(0, 1).text() == "coder (code)"
    panel.sliders["max_queue"].setValue(0)  # the busy coder now breaks the limit
    assert panel.preview.item(0, 1).text() != "coder (code)"
    assert "coder queue 1 > 0" in panel.preview.item(0, 2).text()
    window.api.stop()


def test_plots_receive_points_while_a_model_streams(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.api.session.roles["coder"].config.max_tokens = 300
    turn_id = send(qtbot, window, "hello")
    qtbot.waitUntil(lambda: window.api.turn(turn_id).status == "done", timeout=TIMEOUT_MS)
    curve = window.plots.curves[("tokens_per_s", "coder")]

    def streamed_points() -> bool:
        _, y = curve.getData()
        return y is not None and any(v > 0 for v in y if not math.isnan(v))

    qtbot.waitUntil(streamed_points, timeout=5000)
    assert window.plots.refresh_count > 0
    assert (
        "CPU and RAM" in window.plots.machine_label.text()
        or "GPU" in window.plots.machine_label.text()
    )
    card = window.roles_panel.cards["coder"]
    qtbot.waitUntil(
        lambda: "tok/s" in card.stats_label.text() and "–" not in card.stats_label.text(),
        timeout=5000,
    )


def test_override_sends_the_next_prompt_to_the_chosen_role(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.chat.target_box.setCurrentIndex(window.chat.target_box.findData("reasoner"))
    turn_id = send(qtbot, window, "```\nint x;\n```")
    turn = window.api.turn(turn_id)
    assert turn.role == "reasoner" and turn.decision is not None
    assert turn.decision.policy == "override"
    view = window.answer_view(turn_id)
    assert view is not None and view.badge.text() == "reasoner · code · override"


WORD_PROBLEM = (
    "If 3 workers build a wall in 12 days, how many days do 9 workers need? Explain step by step."
)


def test_badge_shows_the_reason_and_opens_the_full_decision(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    turn_id = send(qtbot, window, WORD_PROBLEM)
    view = window.answer_view(turn_id)
    assert view is not None and not view.badge.isHidden()
    assert view.badge.text() == "reasoner · reasoning"
    assert view.footer.text().startswith("reasoning -> reasoner: preferred")
    qtbot.mouseClick(view.badge, Qt.MouseButton.LeftButton)
    dialog = window.turns.decision_dialog
    assert dialog is not None and dialog.isVisible()
    from PySide6.QtWidgets import QPlainTextEdit

    text = dialog.findChild(QPlainTextEdit).toPlainText()
    assert "evidence: " in text and "runner-up: " in text and "coder: " in text
    dialog.close()


def test_a_real_failover_reaches_the_answer_and_the_router_log(  # type: ignore[no-untyped-def]
    qtbot, tiny_config, tmp_path
) -> None:
    from conftest import build_window, start_and_wait

    from zeta_desktop.core.engines.llama import LlamaEngine

    # The coder loads the tiny model through its own link and dies after two tokens.
    broken = tmp_path / "coder-breaks.gguf"
    broken.symlink_to(tiny_config.roles["coder"].model_path)
    tiny_config.roles["coder"].model_path = str(broken)

    class DiesMidAnswer:
        counts_tokens = True

        def __init__(self, inner):  # type: ignore[no-untyped-def]
            self._inner, self.n_ctx = inner, inner.n_ctx
            self.count_tokens, self.embed, self.close = (
                inner.count_tokens, inner.embed, inner.close)

        def stream_chat(self, messages, **kwargs):  # type: ignore[no-untyped-def]
            for index, piece in enumerate(self._inner.stream_chat(messages, **kwargs)):
                if index == 2:
                    raise RuntimeError("decode failed")
                yield piece

    def loader(path, settings):  # type: ignore[no-untyped-def]
        engine = LlamaEngine.load(path, settings)
        return DiesMidAnswer(engine) if path == broken else engine

    window = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path, loader))
    turn_id = send(qtbot, window, "```\nfix this code\n```")
    qtbot.waitUntil(lambda: not window.api.turn(turn_id).status.active, timeout=TIMEOUT_MS)
    turn = window.api.turn(turn_id)
    assert turn.status == "done"
    assert turn.attempts == [("coder", "RuntimeError: decode failed")] and turn.role != "coder"
    # The turn ends on a worker thread; the window hears of it through the
    # bridge a moment later: wait for the window, not only the turn.
    qtbot.waitUntil(lambda: window.answer_view(turn_id) is not None
                    and "coder failed" in window.answer_view(turn_id).footer.text()
                    and window.answer_view(turn_id).text == turn.answer, timeout=TIMEOUT_MS)
    log = window.router_log.toPlainText()
    assert f"failover: turn {turn_id} failed on coder (RuntimeError: decode failed)" in log
    view = window.answer_view(turn_id)
    assert view.text == turn.answer  # the retry's answer, not the dead one's two tokens
    assert window.api.session.telemetry.snapshot().models["coder"].failed == 1
    window.close()


def test_adjustments_reach_the_router_log(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.api.session.router.update_thresholds(max_queue=4)
    model = window.api.session.telemetry.model("coder")
    for _ in range(4):
        model.record_success(0.1, 50.0, 9.0, 9.0, 40)
    window.api.session.router.refit()
    qtbot.waitUntil(lambda: "adjusted coder: " in window.router_log.toPlainText(), timeout=5000)


def test_the_panel_says_how_task_kinds_are_read(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.router_panel.refresh_preview()
    # The suite's windows classify by the text model alone (semantic off).
    assert window.router_panel.task_reading.text() == (
        "Task kinds: the text model (the embedding vote is off)")
