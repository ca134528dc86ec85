"""The main window: chat on the left; models, live load and the router on the right."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop import APP_NAME
from zeta_desktop.core.chat.session import ChatSession, EngineLoader
from zeta_desktop.core.config import ROLE_NAMES, AppConfig, LoadedConfig, save_config
from zeta_desktop.core.fleet.worker import ChatStats
from zeta_desktop.core.routing.router import Decision, explain
from zeta_desktop.ui.bridge import SessionBridge
from zeta_desktop.ui.chat_pane import ChatPane
from zeta_desktop.ui.load_plots import LoadPlots
from zeta_desktop.ui.paint_turns import PaintTurns
from zeta_desktop.ui.role_panel import RolePanel
from zeta_desktop.ui.router_panel import RouterPanel

log = logging.getLogger(__name__)

SAVE_DELAY_MS = 400  # a dragged slider is saved once it rests
STATS_REFRESH_MS = 500


class MainWindow(QMainWindow):
    def __init__(
        self,
        loaded: LoadedConfig,
        run_config: AppConfig,
        engine_loader: EngineLoader,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 800)
        self._loaded = loaded  # what is saved; run_config may carry one-run overrides
        self.bridge = SessionBridge(self)
        self.session = ChatSession(run_config, engine_loader, listener=self.bridge)
        self._shut_down = False
        self._adjustments_shown = 0
        self.decision_dialog: QDialog | None = None

        # The chat and the plots take turns to repaint (see paint_turns).
        paint_turns = PaintTurns()
        self.chat = ChatPane(paint_turns)
        self.roles_panel = RolePanel(list(ROLE_NAMES))
        self.plots = LoadPlots(self.session.telemetry, list(ROLE_NAMES), paint_turns)
        self.router_panel = RouterPanel(self.session)
        self.router_log = QPlainTextEdit()
        self.router_log.setReadOnly(True)
        self.router_log.setPlaceholderText(
            "The router's adjustments and failovers appear here as they happen."
        )
        self.tabs = QTabWidget()
        self.tabs.addTab(self.router_panel, "Router")
        self.tabs.addTab(self.router_log, "Router log")

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet(
            "background: #fef3c7; color: #78350f; padding: 6px; border-radius: 4px;"
        )

        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.roles_panel)
        side.addWidget(self.plots)
        side.addWidget(self.tabs)
        side.setSizes([150, 250, 390])
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.chat)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([700, 560])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.bridge.sig_role_state.connect(self.roles_panel.on_role_state)
        self.bridge.sig_turn_routed.connect(self.chat.on_turn_routed)
        self.bridge.sig_turn_retried.connect(self.chat.on_turn_retried)
        self.bridge.sig_turn_retried.connect(self._on_turn_retried)
        self.bridge.sig_turn_started.connect(self.chat.on_turn_started)
        self.bridge.sig_turn_token.connect(self.chat.on_turn_token)
        self.bridge.sig_turn_finished.connect(self.chat.on_turn_finished)
        self.bridge.sig_turn_failed.connect(self.chat.on_turn_failed)
        self.bridge.sig_turn_failed.connect(self._on_turn_failed)
        self.bridge.sig_turn_finished.connect(self._on_turn_finished)
        self.chat.sig_send.connect(self._on_send)
        self.chat.sig_stop.connect(self._on_stop)
        self.chat.sig_show_decision.connect(self.show_decision)
        self.roles_panel.sig_choose_model.connect(self._on_choose_model)
        self.router_panel.sig_settings_changed.connect(self._on_router_settings_changed)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_router_settings)
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_REFRESH_MS)
        self._stats_timer.timeout.connect(self._refresh_stats)

        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        self._refresh_model_labels()
        self.chat.input.setFocus()
        for problem in loaded.problems:
            self.chat.add_notice(f"Settings: {problem}", "#b45309")

    # -- start and stop -------------------------------------------------------

    def start_models(self) -> None:
        """Load every role in its own thread; start the GUI-thread refresh timers."""
        self.session.start()
        self.plots.start()
        self.router_panel.start()
        self._stats_timer.start()

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self.plots.stop()
        self.router_panel.stop()
        self._stats_timer.stop()
        if self._save_timer.isActive():
            self._save_timer.stop()
            self.save_router_settings()
        self.session.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self.hide()
        self.shutdown()
        super().closeEvent(event)

    # -- labels ---------------------------------------------------------------

    def _refresh_model_labels(self) -> None:
        parts = []
        demo_roles = []
        for name, runtime in self.session.roles.items():
            card = self.roles_panel.cards[name]
            if runtime.source is None:
                card.set_model("no model file", "")
                parts.append(f"{name}: none")
                continue
            card.set_model(runtime.source.display_name, str(runtime.source.path))
            parts.append(f"{name}: {runtime.source.path.name}")
            if runtime.source.is_demo:
                demo_roles.append(name)
        self.statusBar().showMessage("   ·   ".join(parts))
        if demo_roles:
            roles = ", ".join(demo_roles)
            self.banner.setText(
                f"Demo mode: {roles} {'use' if len(demo_roles) > 1 else 'uses'} the small "
                "SmolLM2-135M demo model. Point a role at your own GGUF file with its "
                "“Choose GGUF…” button, run with --coder/--embedder/--reasoner PATH, "
                f"or set roles.<role>.model_path in {self._loaded.path}."
            )
            self.banner.show()
        else:
            self.banner.hide()

    @Slot()
    def _refresh_stats(self) -> None:
        telemetry = self.session.telemetry
        snapshot = telemetry.snapshot()
        for role, signals in snapshot.models.items():
            card = self.roles_panel.cards.get(role)
            if card is not None:
                card.set_stats(signals, telemetry.recent_tokens_per_s(role))
        new, self._adjustments_shown = self.session.router.adjustments_since(
            self._adjustments_shown
        )
        for adjustment in new:
            self._log(f"adjusted {adjustment.line()}")

    def _log(self, line: str) -> None:
        self.router_log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")

    # -- slots ----------------------------------------------------------------

    @Slot(str)
    def _on_send(self, prompt: str) -> None:
        self.chat.add_user_message(prompt)
        turn_id = self.session.send(prompt, role=self.chat.target_role())
        self.chat.add_pending_answer(turn_id)

    @Slot()
    def _on_stop(self) -> None:
        self.session.stop()

    @Slot(int, str)
    def _on_turn_failed(self, turn_id: int, message: str) -> None:
        if self.chat.answer_view(turn_id) is None:
            self.chat.add_notice(message)
        # Nothing typed is lost: a prompt that got no answer goes back in the box.
        turn = self.session.turn(turn_id)
        if not turn.answer and not self.chat.input.toPlainText().strip():
            self.chat.input.setPlainText(turn.prompt)

    @Slot(int, str, str)
    def _on_turn_retried(self, turn_id: int, failed_role: str, message: str) -> None:
        self._log(f"failover: turn {turn_id} failed on {failed_role} ({message}); retrying")

    @Slot(int, bool, object)
    def _on_turn_finished(self, turn_id: int, stopped: bool, stats: ChatStats) -> None:
        log.info("turn %d finished (stopped=%s): %s", turn_id, stopped, stats)

    @Slot(int)
    def show_decision(self, turn_id: int) -> None:
        """A small window with the full routing decision of one answer."""
        turn = self.session.turn(turn_id)
        decision: Decision | None = turn.decision
        text = explain(decision, turn.attempts) if decision else "not routed yet"
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Routing decision · turn {turn_id}")
        view = QPlainTextEdit(text)
        view.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        layout.addWidget(view)
        layout.addWidget(buttons)
        dialog.resize(640, 320)
        dialog.show()
        self.decision_dialog = dialog

    @Slot()
    def _on_router_settings_changed(self) -> None:
        self._save_timer.start()  # restarts while the slider moves

    @Slot()
    def save_router_settings(self) -> None:
        saved = self._loaded.config
        router = self.session.router
        thresholds = dataclasses.asdict(router.thresholds)
        saved.router = dataclasses.replace(saved.router, policy=router.policy, **thresholds)
        try:
            save_config(saved, self._loaded.path)
        except OSError as exc:
            self.chat.add_notice(f"Could not save settings to {self._loaded.path}: {exc}")

    @Slot(str)
    def _on_choose_model(self, role: str) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Choose a GGUF file for {role}", str(Path.home()), "GGUF models (*.gguf)"
        )
        if path:
            self.set_role_model(role, path)

    def set_role_model(self, role: str, path: str) -> None:
        """Load another file for a role now and remember it in the config file."""
        saved = self._loaded.config
        saved.roles[role].model_path = path
        try:
            save_config(saved, self._loaded.path)
        except OSError as exc:
            self.chat.add_notice(f"Could not save settings to {self._loaded.path}: {exc}")
        role_config = self.session.config.roles[role]
        role_config.model_path = path
        self.session.replace_role(role, role_config)
        self._refresh_model_labels()
