"""A role's settings dialog: Apply reloads that role beside the old model,
which finishes what it holds; the other roles keep streaming meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from zeta_desktop.core.chat.turn_runner import TurnStatus
from zeta_desktop.core.config import load_config
from zeta_desktop.core.fleet.worker import WorkerState

pytestmark = pytest.mark.model
TIMEOUT_MS = 60_000


def test_settings_reload_one_role_while_it_and_another_answer(qtbot, gated_window) -> None:  # type: ignore[no-untyped-def]
    window = gated_window
    session = window.api.session
    # Both answers hold after 12 tokens (the gate): they are mid-answer below.
    coder_turn = session.send("def f(x): return x", role="coder")
    reasoner_turn = session.send("Why is the sky blue?", role="reasoner")
    qtbot.waitUntil(lambda: all(session.turn(t).status is TurnStatus.STREAMING
                                and len(session.turn(t).answer) > 0
                                for t in (coder_turn, reasoner_turn)), timeout=TIMEOUT_MS)
    old_reasoner = session.fleet.worker("reasoner")

    qtbot.mouseClick(window.roles_panel.cards["reasoner"].settings_button,
                     Qt.MouseButton.LeftButton)
    dialog = window.models.role_settings
    dialog.n_ctx.setValue(1024)
    dialog.sampling["top_k"].setValue(40)
    dialog.system_prompt.setPlainText("You are a careful reasoner.")
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)

    # The new model loads and takes the role's key while the old one still
    # holds its answer (held at the gate): the swap never waits for it.
    qtbot.waitUntil(lambda: session.fleet.worker("reasoner") is not old_reasoner
                    and session.fleet.worker("reasoner").state is WorkerState.READY,
                    timeout=TIMEOUT_MS)
    assert old_reasoner.is_alive()
    assert session.turn(coder_turn).status is TurnStatus.STREAMING
    assert session.turn(reasoner_turn).status is TurnStatus.STREAMING
    window.gate_release.set()  # both held answers go on to their end
    qtbot.waitUntil(lambda: not session.turn(coder_turn).status.active
                    and not session.turn(reasoner_turn).status.active, timeout=TIMEOUT_MS)
    assert session.turn(coder_turn).status is TurnStatus.DONE
    assert session.turn(reasoner_turn).status is TurnStatus.DONE  # the old model finished it
    assert session.turn(reasoner_turn).role == "reasoner"
    qtbot.waitUntil(lambda: not old_reasoner.is_alive(), timeout=TIMEOUT_MS)
    assert session.fleet.worker("reasoner").settings.n_ctx == 1024
    qtbot.waitUntil(lambda: load_config(window.api.config_path).config.roles["reasoner"].n_ctx
                    == 1024, timeout=TIMEOUT_MS)
    saved = load_config(window.api.config_path).config.roles["reasoner"]
    assert saved.sampling == {"top_k": 40.0}
    assert saved.system_prompt == "You are a careful reasoner."
    # The new model answers, with its sampling and its own system prompt.
    after = session.send("And at sunset?", role="reasoner")
    qtbot.waitUntil(lambda: not session.turn(after).status.active, timeout=TIMEOUT_MS)
    assert session.turn(after).status is TurnStatus.DONE
    window.close()


def test_settings_that_cannot_load_keep_the_old_model(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = window.api.session
    old = session.fleet.worker("coder")
    qtbot.mouseClick(window.roles_panel.cards["coder"].settings_button, Qt.MouseButton.LeftButton)
    dialog = window.models.role_settings
    dialog.model_path.setText(str(tmp_path / "missing.gguf"))
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("Kept coder as it was:" in text and "missing.gguf" in text
                                for text in window.chat.notice_texts()), timeout=TIMEOUT_MS)
    assert session.fleet.worker("coder") is old and old.state is WorkerState.READY
    assert session.config.roles["coder"].model_path != str(tmp_path / "missing.gguf")
    turn = session.send("def g(): pass", role="coder")
    qtbot.waitUntil(lambda: not session.turn(turn).status.active, timeout=TIMEOUT_MS)
    assert session.turn(turn).status is TurnStatus.DONE
