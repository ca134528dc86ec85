"""The model picker, as a user meets it: the role card's button, the scan,
the suggested model selected, Load: two clicks to a loaded model."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import build_window, start_and_wait
from PySide6.QtCore import Qt
from tiny_gguf import write_tiny_llama

from zeta_desktop.core.config import load_config
from zeta_desktop.core.fleet.worker import WorkerState
from zeta_desktop.core.settings import AppConfig

pytestmark = pytest.mark.model
TIMEOUT_MS = 60_000


def test_two_clicks_from_the_role_card_to_a_loaded_model(
        qtbot, tiny_config: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    snapshot = home / ".cache/huggingface/hub/models--acme--bigger-GGUF/snapshots/1"
    snapshot.mkdir(parents=True)
    bigger = write_tiny_llama(snapshot / "bigger.gguf", n_embd=128, seed=5)
    lmstudio = home / ".lmstudio/models/acme/small"
    lmstudio.mkdir(parents=True)
    write_tiny_llama(lmstudio / "small.gguf", seed=6)
    write_tiny_llama(lmstudio / "embeds.gguf", seed=7, pooling_mean=True, chat_template=None)
    (lmstudio / "broken.gguf").write_bytes(b"GGUF but not really" * 4)
    monkeypatch.setenv("HOME", str(home))
    for name in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "LLAMA_CACHE"):
        monkeypatch.delenv(name, raising=False)

    window = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path))
    qtbot.mouseClick(window.roles_panel.cards["reasoner"].choose_button,
                     Qt.MouseButton.LeftButton)  # click one
    picker = window.models.model_picker
    qtbot.waitUntil(lambda: not picker.scanning and bool(picker.found), timeout=TIMEOUT_MS)
    assert "3 models found, 1 unreadable" in picker.progress.text()
    # Chat models only (the role chats), largest suggested and selected.
    shown = [picker.table.item(r, 0).text() for r in range(picker.table.rowCount())
             if not picker.table.isRowHidden(r)]
    assert not any("embeds" in s for s in shown)
    selected = picker.table.selectionModel().selectedRows()[0].row()
    assert picker.table.item(selected, 0).text() == (
        "acme/bigger-GGUF/bigger.gguf  (suggested for reasoner)")
    picker.search.setText("small")
    assert [picker.table.item(r, 0).text() for r in range(picker.table.rowCount())
            if not picker.table.isRowHidden(r)] == ["acme/small/small.gguf"]
    picker.search.setText("")
    picker.table.selectRow(selected)
    qtbot.mouseClick(picker.load_button, Qt.MouseButton.LeftButton)  # click two

    def loaded() -> bool:
        worker = window.api.session.fleet.worker("reasoner")
        return worker.model_path == bigger and worker.state is WorkerState.READY

    qtbot.waitUntil(loaded, timeout=TIMEOUT_MS)
    assert load_config(window.api.config_path).config.roles["reasoner"].model_path == str(bigger)
    window.close()
