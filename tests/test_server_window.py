"""The window's Server switch: the real server in the app, through the `openai` package."""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keyring
import openai
import pytest
from conftest import build_window, start_and_wait
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as NoKeyring
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from zeta_desktop.core.settings import AppConfig
from zeta_desktop.server.keys import KEY_ENV, KEYRING_NAME, KEYRING_SERVICE
from zeta_desktop.ui.history.sidebar import ID_ROLE
from zeta_desktop.ui.main_window import MainWindow
from zeta_desktop.ui.server.client_mark import API_COLOUR
from zeta_desktop.ui.server.server_panel import PROBLEM_COLOUR, ServerPanel

pytestmark = pytest.mark.model
TIMEOUT_MS = 60_000
HELLO = "Say hello to the world."


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps its secrets in memory: the user's is never touched."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture(autouse=True)
def ring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.delenv(KEY_ENV, raising=False)
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def open_window(qtbot, config: AppConfig, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    """The window as the app starts it: models, then the Server switch as it was left."""
    config.server.port = free_port()
    win = start_and_wait(qtbot, build_window(qtbot, config, tmp_path))
    win.start_serving()
    win.tabs.setCurrentWidget(win.server_panel)  # the user opens the Server tab
    qtbot.waitUntil(lambda: win.server_panel.new_key_button.isEnabled(), timeout=10_000)
    return win


@pytest.fixture
def win(qtbot, tiny_config: AppConfig, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, tiny_config, tmp_path)
    yield window
    window.close()


def base_url(panel: ServerPanel) -> str:
    return f"http://127.0.0.1:{panel.settings.port}/v1"


def ask(qtbot, url: str, key: str = "none", prompt: str = HELLO) -> Any:  # type: ignore[no-untyped-def]
    """One chat completion from a thread (the GUI thread keeps running); raises its error."""
    def call() -> Any:
        with openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60) as client:
            return client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": prompt}], max_tokens=8)

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(call)
        qtbot.waitUntil(future.done, timeout=TIMEOUT_MS)
    return future.result()


def flip(qtbot, panel: ServerPanel) -> None:  # type: ignore[no-untyped-def]
    """Click the switch as the user does; wait until it has started or stopped."""
    qtbot.mouseClick(panel.switch, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.control.busy and panel.switch.isEnabled(), timeout=10_000)


def saved_server(win: MainWindow) -> dict[str, Any]:
    return dict(tomllib.loads(win.api.config_path.read_text())["server"])  # type: ignore[union-attr]


def shown_texts(win: MainWindow) -> list[str]:
    return [v.text for v in win.chat.message_views() if v.key is not None]


def colour(label: Any) -> str:
    return str(label.palette().color(QPalette.ColorRole.WindowText).name())


def test_the_switch_serves_requests_marked_as_api_and_off_stops_it(qtbot, win: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = win.server_panel
    url = base_url(panel)
    assert panel.switch.text() == f"Serve on {url}" and not panel.switch.isChecked()
    assert panel.key_label.text().startswith("No key — loopback only")
    assert not panel.forget_key_button.isEnabled()  # no key to forget
    shown = win.api.conversation.id
    with pytest.raises(openai.APIConnectionError):
        ask(qtbot, url)  # off: nothing listens

    flip(qtbot, panel)
    assert panel.switch.isChecked() and panel.control.running
    assert panel.status.text() == f"Listening on {url}"
    assert not panel.port_spin.isEnabled()  # the port changes while it is off
    assert saved_server(win)["enabled"] is True
    subscribers = len(win.api.session.events._subscribers)

    reply = ask(qtbot, url)
    assert reply.choices[0].finish_reason in ("stop", "length")
    turn = next(t for t in win.api.turns if t.from_client)
    assert win.api.client_of(turn.turn_id) == "api: OpenAI/Python"
    # The router log and the route preview show it, marked as an API request.
    qtbot.waitUntil(lambda: f"API · OpenAI/Python: turn {turn.turn_id} answered by"
                    in win.router_log.toPlainText(), timeout=5000)
    assert (f"API · OpenAI/Python: turn {turn.turn_id} → {turn.role} "
            f"({turn.decision.kind.value}): “{HELLO}”") in win.router_log.toPlainText()
    win.router_panel.refresh_preview()
    cell = win.router_panel.preview.item(0, 0)
    assert cell.text() == f"API · OpenAI/Python · {HELLO}"
    assert "OpenAI/Python through the local server" in cell.toolTip()
    # The plots read the same telemetry as for a typed prompt.
    assert win.api.telemetry.snapshot().models[turn.role].completed >= 1
    # The chat shown is untouched, and nothing was kept.
    assert win.api.conversation.id == shown and shown_texts(win) == []
    assert win.sidebar.titles() == []

    flip(qtbot, panel)
    assert not panel.switch.isChecked() and not panel.control.running
    assert panel.status.text() == "Off" and panel.port_spin.isEnabled()
    assert saved_server(win)["enabled"] is False
    with pytest.raises(openai.APIConnectionError):
        ask(qtbot, url)

    flip(qtbot, panel)  # on again: the same counters, no second subscriber
    assert panel.control.running
    assert len(win.api.session.events._subscribers) == subscribers
    ask(qtbot, url)


def test_a_port_in_use_says_so_and_leaves_the_switch_off(qtbot, win: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = win.server_panel
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        panel.port_spin.setValue(port)
        assert panel.switch.text() == f"Serve on http://127.0.0.1:{port}/v1"
        flip(qtbot, panel)
        assert panel.status.text() == f"127.0.0.1:{port} is in use; choose another port"
        assert colour(panel.status) == PROBLEM_COLOUR
        assert not panel.switch.isChecked() and not panel.control.running
        assert panel.switch.isEnabled() and panel.port_spin.isEnabled()
        assert saved_server(win)["enabled"] is False  # a failed start is not saved as on
    flip(qtbot, panel)  # the port is free again
    assert panel.control.running and panel.status.text() == f"Listening on {base_url(panel)}"
    assert saved_server(win)["port"] == port and saved_server(win)["enabled"] is True


def test_kept_requests_are_listed_by_client_and_the_chat_stays(qtbot, win: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = win.server_panel
    win.chat.input.setPlainText("a typed question")
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        qtbot.mouseClick(win.chat.send_button, Qt.MouseButton.LeftButton)
    shown, before = win.api.conversation.id, shown_texts(win)
    assert len(before) == 2 and win.sidebar.titles() == ["a typed question"]

    panel.keep_box.click()
    assert saved_server(win)["keep_history"] is True
    flip(qtbot, panel)
    reply = ask(qtbot, base_url(panel))
    title = f"api: OpenAI/Python: {HELLO}"
    qtbot.waitUntil(lambda: win.sidebar.titles() == [title, "a typed question"], timeout=10_000)
    # The chat shown, and the one marked in the list, are the typed one still.
    assert win.api.conversation.id == shown and shown_texts(win) == before
    assert win.sidebar.list.currentItem().data(ID_ROLE) == shown
    win.router_panel.refresh_preview()
    assert win.router_panel.preview.item(0, 0).text() == f"API · OpenAI/Python · {HELLO}"
    assert win.router_panel.preview.item(1, 0).text() == "a typed question"  # not marked
    assert win.router_panel.preview.item(0, 0).foreground().color().name() == API_COLOUR
    assert win.router_panel.preview.item(1, 0).foreground().color().name() != API_COLOUR

    kept = win.sidebar.list.item(0).data(ID_ROLE)
    win.sidebar.sig_open.emit(kept, "")
    qtbot.waitUntil(lambda: win.api.conversation.id == kept, timeout=10_000)
    assert shown_texts(win) == [HELLO, reply.choices[0].message.content]


def test_the_switch_left_on_serves_from_the_start_until_the_window_closes(  # type: ignore[no-untyped-def]
        qtbot, tiny_config: AppConfig, tmp_path: Path) -> None:
    tiny_config.server.enabled = True
    win = open_window(qtbot, tiny_config, tmp_path)
    panel = win.server_panel
    url = base_url(panel)
    qtbot.waitUntil(lambda: panel.control.running, timeout=10_000)
    assert panel.switch.isChecked() and panel.status.text() == f"Listening on {url}"
    ask(qtbot, url)
    win.close()  # stops the server before the models
    with pytest.raises(openai.APIConnectionError):
        ask(qtbot, url)


def test_a_new_key_is_shown_once_and_then_required_until_forgotten(  # type: ignore[no-untyped-def]
        qtbot, win: MainWindow, ring: MemoryKeyring) -> None:
    panel = win.server_panel
    url = base_url(panel)
    flip(qtbot, panel)
    panel.new_key_button.click()
    qtbot.waitUntil(lambda: panel.key_dialog is not None, timeout=10_000)
    key = panel.key_dialog.key_field.text()  # type: ignore[union-attr]
    assert key.startswith("zeta-") and ring.secrets[(KEYRING_SERVICE, KEYRING_NAME)] == key
    # The running server starts again with it.
    qtbot.waitUntil(lambda: panel.status.text() == f"Listening on {url} · clients must send "
                    "the key", timeout=10_000)
    assert panel.key_label.text().startswith("Key set") and panel.forget_key_button.isEnabled()
    with pytest.raises(openai.AuthenticationError):
        ask(qtbot, url)
    ask(qtbot, url, key=key)

    panel.forget_key_button.click()
    qtbot.waitUntil(lambda: panel.status.text() == f"Listening on {url}"
                    and panel.key_label.text().startswith("No key"), timeout=10_000)
    assert ring.secrets == {}
    ask(qtbot, url)

    keyring.set_keyring(NoKeyring())  # a desktop with no keyring: it says what to do instead
    panel.new_key_button.click()
    qtbot.waitUntil(lambda: not panel.key_problem.isHidden(), timeout=10_000)
    assert KEY_ENV in panel.key_problem.text() and colour(panel.key_problem) == PROBLEM_COLOUR
    assert panel.status.text() == f"Listening on {url}"  # still serving, without a key
