"""The Server tab: the window's switch for the local OpenAI-compatible server.

As LM Studio's Local Server page: a switch with the address, the port, the
API key, whether requests are kept in the history, and what the server is
doing. Requests show in the plots, the route preview and the router log;
the chat shown is left alone.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import ChatApi
from zeta_desktop.core.settings import SERVER_LIMITS, ServerConfig
from zeta_desktop.server.keys import KEY_ENV, forget_server_key, new_server_key, server_key
from zeta_desktop.ui.server.key_dialog import NewKeyDialog
from zeta_desktop.ui.server.server_control import ServerControl
from zeta_desktop.ui.style import set_small_text, set_text_colour
from zeta_desktop.ui.tasks import TaskManager

if TYPE_CHECKING:
    from zeta_desktop.server.runner import Listening

OK_COLOUR, PROBLEM_COLOUR, QUIET_COLOUR = "#15803d", "#dc2626", "#6b7280"
# Where the key comes from: none, the OS keyring, or the environment.
NO_KEY, KEYRING_KEY, ENV_KEY = "", "keyring", "env"
KEY_TEXT = {
    NO_KEY: "No key — loopback only: any program on this machine may call it",
    KEYRING_KEY: "Key set — clients send it as their API key",
    ENV_KEY: f"Key set by {KEY_ENV} — clients send it as their API key",
}


def base_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def key_source() -> str:
    """On a task thread: the keyring may take a moment (D-Bus)."""
    if os.environ.get(KEY_ENV, "").strip():
        return ENV_KEY
    return KEYRING_KEY if server_key() else NO_KEY


class ServerPanel(QWidget):
    sig_save_problem = Signal(str)
    """The server's settings could not be saved: why."""

    def __init__(self, api: ChatApi, tasks: TaskManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api = api
        self.tasks = tasks
        # The running server reads this object (keep_history, per request).
        self.settings: ServerConfig = copy.deepcopy(api.config.server)
        self.control = ServerControl(api, tasks, self)
        self.control.sig_listening.connect(self._on_listening)
        self.control.sig_failed.connect(self._on_failed)
        self.control.sig_stopped.connect(self._on_stopped)
        self._key: str | None = None  # NO_KEY, KEYRING_KEY or ENV_KEY once read
        self._restart = False  # the key changed while serving: start again once stopped
        self._port_unsaved = False
        self.key_dialog: NewKeyDialog | None = None  # the last one shown (tests look at it)

        self.switch = QCheckBox()
        bold = self.switch.font()
        bold.setWeight(QFont.Weight.DemiBold)
        self.switch.setFont(bold)
        self.switch.setToolTip("Run Zeta's OpenAI-compatible server inside the app: "
                               "model \"auto\" is routed like a typed prompt")
        self.switch.clicked.connect(self._on_switch_clicked)  # the user's clicks only

        low, high = SERVER_LIMITS["port"]
        self.port_spin = QSpinBox()
        self.port_spin.setRange(low, high)
        self.port_spin.setValue(self.settings.port)
        self.port_spin.setToolTip("The port it listens on; change it while the server is off")
        self.port_spin.valueChanged.connect(self._on_port_changed)
        self.port_spin.editingFinished.connect(self._save_port)

        self.keep_box = QCheckBox("Keep requests in the history")
        self.keep_box.setChecked(self.settings.keep_history)
        self.keep_box.setToolTip("Save each request as a conversation titled "
                                 "“api: <client>: <prompt>”")
        if api.history is None:
            self.keep_box.setEnabled(False)
            self.keep_box.setToolTip("This run keeps no history")
        self.keep_box.toggled.connect(self._on_keep_toggled)

        self.key_label = QLabel("Reading the keyring…")
        self.key_label.setWordWrap(True)
        self.key_problem = QLabel()
        self.key_problem.setWordWrap(True)
        self.key_problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        set_text_colour(self.key_problem, PROBLEM_COLOUR)
        self.key_problem.hide()
        self.new_key_button = QPushButton("New key")
        self.new_key_button.setToolTip("Make a key that clients must send; it is shown once")
        self.new_key_button.clicked.connect(self.new_key)
        self.forget_key_button = QPushButton("Forget key")
        self.forget_key_button.setToolTip("Remove the key from the OS keyring")
        self.forget_key_button.clicked.connect(self.forget_key)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        hint = QLabel("Point an OpenAI client at this address: model “auto” lets the router "
                      "choose, a role's name (coder, reasoner…) picks it. "
                      "GET /metrics has Prometheus counters.")
        hint.setWordWrap(True)
        set_small_text(hint, QUIET_COLOUR)

        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        grid.addWidget(QLabel("Port"), 0, 0)
        port_row = QHBoxLayout()
        port_row.addWidget(self.port_spin)
        port_row.addStretch(1)
        grid.addLayout(port_row, 0, 1)
        grid.addWidget(QLabel("Key"), 1, 0, Qt.AlignmentFlag.AlignTop)
        key_box = QVBoxLayout()
        key_box.addWidget(self.key_label)
        key_box.addWidget(self.key_problem)
        key_buttons = QHBoxLayout()
        key_buttons.addWidget(self.new_key_button)
        key_buttons.addWidget(self.forget_key_button)
        key_buttons.addStretch(1)
        key_box.addLayout(key_buttons)
        grid.addLayout(key_box, 1, 1)
        grid.addWidget(self.keep_box, 2, 0, 1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.switch)
        layout.addWidget(self.status)
        layout.addLayout(grid)
        layout.addWidget(hint)
        layout.addStretch(1)
        self._show_status("Off", QUIET_COLOUR)
        self._sync()

    # -- what the window calls ----------------------------------------------------------

    def start(self) -> None:
        """The switch as it was left: on when the settings say so."""
        self.read_key()
        if self.settings.enabled and not self.control.running:
            self.switch.setChecked(True)
            self._start()

    def stop(self) -> None:
        """The window closes: a port still being typed is saved, the server stopped (blocks)."""
        self._save_port()
        self.control.close_now()

    # -- the switch ---------------------------------------------------------------------

    @Slot(bool)
    def _on_switch_clicked(self, checked: bool) -> None:
        if checked:
            self._start()  # saved as on once it listens: a port in use leaves it off
        else:
            self.settings.enabled = False
            self._save()
            self._restart = False
            self.control.stop()
            self._show_status("Stopping…", QUIET_COLOUR)
            self._sync()

    def _start(self) -> None:
        if self.control.start(self.settings):
            self._show_status("Starting…", QUIET_COLOUR)
        self._sync()

    @Slot(object)
    def _on_listening(self, listening: Listening) -> None:
        self.switch.setChecked(True)
        self._show_status(f"Listening on {listening.base_url}"
                          + (" · clients must send the key" if listening.needs_key else ""),
                          OK_COLOUR)
        if not self.settings.enabled:  # the user switched it on: on at the next start too
            self.settings.enabled = True
            self._save()
        self._sync()

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.switch.setChecked(False)
        self._show_status(text, PROBLEM_COLOUR)
        self._sync()

    @Slot()
    def _on_stopped(self) -> None:
        if self._restart:
            self._restart = False
            self._start()
            return
        self.switch.setChecked(False)
        self._show_status("Off", QUIET_COLOUR)
        self._sync()

    # -- settings -----------------------------------------------------------------------

    @Slot(int)
    def _on_port_changed(self, port: int) -> None:
        self.settings.port = port
        self._port_unsaved = True
        self._sync()

    @Slot()
    def _save_port(self) -> None:
        if self._port_unsaved:
            self._save()

    @Slot(bool)
    def _on_keep_toggled(self, keep: bool) -> None:
        self.settings.keep_history = keep  # a running server reads it with the next request
        self._save()

    def _save(self) -> None:
        self._port_unsaved = False
        problem = self.api.save_server_settings(self.settings)
        if problem:
            self.sig_save_problem.emit(problem)

    # -- the key ------------------------------------------------------------------------

    def read_key(self) -> None:
        self.tasks.run_in_background(key_source, self._show_key)

    def _show_key(self, source: str) -> None:
        self._key = source
        self.key_label.setText(KEY_TEXT[source])
        self.key_problem.hide()
        self._sync()

    @Slot()
    def new_key(self) -> None:
        self.tasks.run_in_background(new_server_key, self._on_new_key, self._on_key_failed)

    def _on_new_key(self, key: str) -> None:
        self.key_dialog = NewKeyDialog(key, self)
        self.key_dialog.show()
        self._key_changed()

    @Slot()
    def forget_key(self) -> None:
        self.tasks.run_in_background(forget_server_key, lambda _none: self._key_changed(),
                                     self._on_key_failed)

    def _on_key_failed(self, exc: BaseException) -> None:
        self.key_problem.setText(str(exc))  # KeyStoreError says what to do instead
        self.key_problem.show()

    def _key_changed(self) -> None:
        """Read it again (the environment's outranks the keyring's); a running
        server starts again with it."""
        self.read_key()
        if self.control.running:
            self._restart = True
            self.control.stop()
            self._show_status("Starting again with the new key…", QUIET_COLOUR)
        self._sync()

    # -- what is shown ------------------------------------------------------------------

    def _show_status(self, text: str, colour: str) -> None:
        self.status.setText(text)
        set_text_colour(self.status, colour)

    def _sync(self) -> None:
        """Which controls apply now: the port is changed while off, nothing while
        the server is starting or stopping."""
        busy, running = self.control.busy, self.control.running
        self.switch.setText(f"Serve on {base_url(self.settings.host, self.settings.port)}")
        self.switch.setEnabled(not busy)
        self.port_spin.setEnabled(not busy and not running)
        known = self._key is not None
        self.new_key_button.setEnabled(known and not busy)
        self.forget_key_button.setEnabled(self._key == KEYRING_KEY and not busy)
