"""The real window, offscreen, driven like a user: type, Enter, watch tokens, Stop."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import build_window, start_and_wait
from gated_engine import gated_loader
from PySide6.QtCore import Qt

from zeta_desktop.core.chat.api import AnswerText
from zeta_desktop.core.config import load_config
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig
from zeta_desktop.ui.app import compose_window
from zeta_desktop.ui.main_window import MainWindow

pytestmark = pytest.mark.model
TIMEOUT_MS = 60_000


def test_typing_a_prompt_streams_an_answer(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.keyClicks(window.chat.input, "hello world")
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    assert window.chat.input.toPlainText() == ""
    view = window.answer_view(1)
    assert view is not None
    assert view.text == window.api.turn(1).answer and view.text
    assert view.shown_text() == view.text and not view.streaming  # all of it shows once done,
    assert view.accessibleDescription() == view.text  # to screen readers too,
    prose = view.answer.prose_views()  # and selectable at once, without hovering first
    # (a widget added to a shown layout is shown by a queued call: wait for it)
    qtbot.waitUntil(lambda: bool(prose) and all(p.isVisibleTo(window) for p in prose),
                    timeout=5000)
    assert all(p.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
               for p in prose)
    assert view.header.text() == "coder"
    assert "tok/s" in view.footer.text()
    assert not window.chat.stop_button.isEnabled()


def test_stop_halts_the_answer_and_marks_it(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    # The tiny model fills its context in well under a second: the answer is
    # held after 12 tokens (gated_engine), so it is surely still streaming
    # when Stop is pressed.
    reached, release = threading.Event(), threading.Event()
    win = start_and_wait(qtbot, build_window(
        qtbot, tiny_config, tmp_path, gated_loader(12, reached, release)))
    win.chat.input.setPlainText("keep going")
    qtbot.mouseClick(win.chat.send_button, Qt.MouseButton.LeftButton)
    # The label catches up while the answer still streams (tokens shown in batches).
    qtbot.waitUntil(
        lambda: len(win.answer_view(1).shown_text()) > 10,  # type: ignore[union-attr]
        timeout=TIMEOUT_MS,
    )
    assert reached.is_set() and win.api.turn(1).status == "streaming"
    assert win.chat.stop_button.isEnabled()
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(win.chat.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].stopped is True
    view = win.answer_view(1)
    assert view is not None and "stopped" in view.footer.text()
    assert view.text == win.api.turn(1).answer  # the partial answer stays
    win.close()


def test_window_stays_responsive_while_streaming(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A 5 ms timer keeps firing while tokens arrive: the GUI thread is not held by them."""
    import time

    from PySide6.QtCore import QTimer

    window.api.session.roles["coder"].config.max_tokens = 400
    ticks: list[float] = []
    tokens: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    window.bridge.sig_event.connect(
        lambda event: isinstance(event, AnswerText) and tokens.append(time.perf_counter()))
    timer.start()
    window.chat.input.setPlainText("stream please")
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        window.chat.send_button.click()
    timer.stop()
    assert len(tokens) > 100
    streaming_s = tokens[-1] - tokens[0]
    during = [t for t in ticks if tokens[0] <= t <= tokens[-1]]
    # Ticks come through between the token events, at a fair share of the rate a
    # free event loop gives (generous: the machine is shared and the model busy).
    assert len(during) >= max(3, 0.25 * streaming_s / 0.005), (len(during), streaming_s)
    assert threading.current_thread() is threading.main_thread()


def test_a_too_long_prompt_comes_back_to_the_input(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    prompt = "alpha " * 2000
    window.chat.input.setPlainText(prompt)
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS) as blocker:
        window.chat.send_button.click()
    assert "context holds 512" in blocker.args[0].error
    qtbot.waitUntil(lambda: window.chat.input.toPlainText() == prompt.strip(), timeout=TIMEOUT_MS)
    assert "context holds 512" in window.answer_view(1).footer.text()  # type: ignore[union-attr]


def test_banner_and_status_bar_name_the_model_files(window: MainWindow, tiny_model: Path) -> None:
    assert window.banner.isHidden()  # not demo mode: real files are configured
    assert window.statusBar().currentMessage().count(tiny_model.name) == 3
    assert window.roles_panel.cards["coder"].model_label.text() == tiny_model.name


def test_the_card_says_where_the_layers_run(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    from zeta_desktop.core.engines.build_info import build_info

    card = window.roles_panel.cards["coder"]
    qtbot.waitUntil(lambda: "MiB" in card.model_label.text(), timeout=TIMEOUT_MS)  # stats timer
    memory = window.api.memory("coder")
    assert memory is not None
    assert card.model_label.text().endswith(f" · {memory.placement}")
    if not build_info().can_offload:  # llama.cpp says nothing of layers: all on the CPU
        assert memory.offloaded_layers is None and memory.placement == "CPU"
    else:
        assert memory.offloaded_layers is not None


def test_unavailable_role_shows_the_reason(qtbot, tiny_config: AppConfig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tiny_config.roles["reasoner"].model_path = str(tmp_path / "missing.gguf")
    win = build_window(qtbot, tiny_config, tmp_path)
    win.start_models()
    card = win.roles_panel.cards["reasoner"]
    qtbot.waitUntil(lambda: card.state == "unavailable", timeout=TIMEOUT_MS)
    assert "not found" in card.detail_label.text()
    assert not card.detail_label.isHidden()
    qtbot.waitUntil(lambda: win.roles_panel.cards["coder"].state == "ready", timeout=TIMEOUT_MS)
    win.close()


def test_demo_mode_says_so(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    loaded = load_config(tmp_path / "absent.toml")
    win = compose_window(loaded, loaded.config, LlamaEngine.load)
    qtbot.addWidget(win)
    assert not win.banner.isHidden()
    assert "Demo mode" in win.banner.text() and "Choose GGUF" in win.banner.text()
    assert "SmolLM2" in win.roles_panel.cards["coder"].model_label.text()
    win.close()  # never started: closing must still be clean


def test_config_problems_stay_shown_above_the_chat(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text("this is [not toml")
    loaded = load_config(path)
    win = compose_window(loaded, loaded.config, LlamaEngine.load)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.history.restored, timeout=5000)  # a chat shown must not hide it
    text = win.alert_label.text()
    assert "not valid TOML" in text and str(path) in text and win.alerts.isVisibleTo(win)
    win.close()


def test_choosing_a_model_reloads_the_role_and_saves_it(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    from tiny_gguf import write_tiny_llama

    other = write_tiny_llama(tmp_path / "other.gguf", seed=7)
    window.models.set_role_model("reasoner", str(other))
    card = window.roles_panel.cards["reasoner"]
    qtbot.waitUntil(lambda: card.state == "ready", timeout=TIMEOUT_MS)
    assert card.model_label.text() == "other.gguf"
    saved = load_config(window.api.config_path)
    assert saved.config.roles["reasoner"].model_path == str(other)


def test_closing_the_window_ends_every_model_thread(qtbot, gated_window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window = gated_window
    window.chat.input.setPlainText("long answer")
    window.chat.send_button.click()
    qtbot.waitUntil(lambda: window.api.turn(1).status == "streaming", timeout=TIMEOUT_MS)
    window.close()
    alive = [t.name for t in threading.enumerate() if t.name.startswith("zeta-")]
    assert alive == []
