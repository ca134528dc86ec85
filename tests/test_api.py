"""The door: what a client sees through ChatApi."""

from __future__ import annotations

from pathlib import Path

from zeta_desktop.core.chat.api import Alert, SessionEvent, open_chat
from zeta_desktop.core.config import load_config
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig


def test_an_alert_raised_before_anyone_listens_reaches_the_first_subscriber(
        tiny_config: AppConfig, tmp_path: Path) -> None:
    loaded = load_config(tmp_path / "config.toml")
    api = open_chat(loaded, tiny_config, LlamaEngine.load, keep_history=False)  # never started
    api.alert("the history file could not be written")
    heard: list[SessionEvent] = []
    api.subscribe(heard.append)
    assert heard == [Alert("the history file could not be written")]
    api.alert("and again")  # from now on, as it happens
    assert heard[-1] == Alert("and again") and len(heard) == 2
    later: list[SessionEvent] = []
    api.subscribe(later.append)
    assert later == []  # held alerts go to the first subscriber only, not twice
    api.shutdown()
