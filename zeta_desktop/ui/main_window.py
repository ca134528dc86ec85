"""The main window: chat on the left; models, live load and the router on the right."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop import APP_NAME
from zeta_desktop.core.chat.session import ChatSession, EngineLoader, default_history_path
from zeta_desktop.core.config import LoadedConfig, save_or_say
from zeta_desktop.core.fleet.worker import ChatStats
from zeta_desktop.core.routing.router import Decision, explain
from zeta_desktop.core.settings import AppConfig, RoleConfig
from zeta_desktop.core.store.history import HistoryStore
from zeta_desktop.ui.bridge import SessionBridge
from zeta_desktop.ui.chat.chat_pane import ChatPane
from zeta_desktop.ui.chat.message_view import MessageView
from zeta_desktop.ui.documents.documents_controller import DocumentsController
from zeta_desktop.ui.gc_timer import GuiThreadCollector
from zeta_desktop.ui.history.history_controller import HistoryController, sources_line
from zeta_desktop.ui.history.sidebar import Sidebar
from zeta_desktop.ui.models.role_panel import RolePanel
from zeta_desktop.ui.paint_turns import PaintTurns
from zeta_desktop.ui.router.load_plots import LoadPlots
from zeta_desktop.ui.router.router_panel import RouterPanel
from zeta_desktop.ui.tasks import TaskManager

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
        store: HistoryStore | None = None,
        keep_history: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 800)
        self._loaded = loaded  # what is saved; run_config may carry one-run overrides
        self.bridge = SessionBridge(self)
        self.tasks = TaskManager()
        # Read and written on its own thread. keep_history=False: nothing is
        # saved (a benchmark's baseline).
        self.store = store
        if store is None and keep_history:
            self.store = HistoryStore(
                default_history_path(),
                on_problem=lambda text: self.tasks.run_on_main(lambda: self.add_alert(text)),
            )
        self.session = ChatSession(
            run_config, engine_loader, listener=self.bridge, store=self.store
        )
        self._shut_down = False
        # Garbage is collected on the GUI thread only (see gc_timer).
        self._collector = GuiThreadCollector(self)
        self._adjustments_shown = 0
        self.decision_dialog: QDialog | None = None
        self.model_picker: QDialog | None = None
        self.role_settings: QDialog | None = None

        # The chat and the plots take turns to repaint (see paint_turns).
        paint_turns = PaintTurns()
        self.chat = ChatPane(paint_turns)
        # Built from the config's open table of roles; the plots draw every
        # endpoint (a role's replicas each get a curve).
        self.roles_panel = RolePanel(list(self.session.fleet.endpoints))
        self.plots = LoadPlots(self.session.telemetry, list(self.session.fleet.endpoints),
                               paint_turns)
        self.router_panel = RouterPanel(self.session)
        self.router_log = QPlainTextEdit()
        self.router_log.setReadOnly(True)
        self.router_log.setPlaceholderText(
            "The router's adjustments and failovers appear here as they happen."
        )
        self.tabs = QTabWidget()
        self.tabs.addTab(self.router_panel, "Router")
        self.tabs.addTab(self.router_log, "Router log")

        # Problems that outlive any one conversation (settings, the history
        # file): shown until dismissed, not in a chat that switching clears.
        self.alerts = QWidget()
        alert_row = QHBoxLayout(self.alerts)
        alert_row.setContentsMargins(6, 4, 6, 4)
        self.alert_label = QLabel()
        self.alert_label.setWordWrap(True)
        self.alert_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.dismiss_alerts)
        alert_row.addWidget(self.alert_label, 1)
        alert_row.addWidget(dismiss)
        self.alerts.setStyleSheet("background: #fee2e2; color: #7f1d1d; border-radius: 4px;")
        self.alerts.hide()
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
        self.sidebar = Sidebar()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.chat)
        splitter.addWidget(side)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 2)
        splitter.setSizes([220, 600, 460])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.banner)
        layout.addWidget(self.alerts)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.history = HistoryController(
            self.session, self.sidebar, self.chat, self.tasks, self.add_alert, self
        )
        self.documents = DocumentsController(
            self.session, self.chat, self.history, self.tasks, self)
        self.bridge.sig_role_state.connect(self.roles_panel.on_role_state)
        self.bridge.sig_turn_routed.connect(self._on_turn_routed)
        self.bridge.sig_turn_retried.connect(self._on_turn_retried)
        self.bridge.sig_turn_started.connect(self._on_turn_started)
        self.bridge.sig_turn_token.connect(self._on_turn_token)
        self.bridge.sig_turn_finished.connect(self._on_turn_finished)
        self.bridge.sig_turn_failed.connect(self._on_turn_failed)
        self.chat.sig_send.connect(self._on_send)
        self.chat.sig_send_edit.connect(self._on_send_edit)
        self.chat.sig_stop.connect(self._on_stop)
        self.chat.sig_show_decision.connect(self.show_decision)
        self.roles_panel.sig_choose_model.connect(self._on_choose_model)
        self.roles_panel.sig_settings.connect(self._on_role_settings)
        self.router_panel.sig_settings_changed.connect(self._on_router_settings_changed)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_router_settings)
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_REFRESH_MS)
        self._stats_timer.timeout.connect(self._refresh_stats)

        file_menu = self.menuBar().addMenu("&File")
        new_action = QAction("&New chat", self)
        new_action.setShortcut(QKeySequence.StandardKey.New)
        new_action.triggered.connect(self.history.new_chat)
        file_menu.addAction(new_action)
        file_menu.addSeparator()
        file_menu.addAction("Export as &Markdown…", lambda: self.history.ask_export(False))
        file_menu.addAction("Export as &JSON…", lambda: self.history.ask_export(True))
        file_menu.addAction("&Import JSON…", self.history.ask_import)
        file_menu.addSeparator()
        file_menu.addAction("&Documents…", self.documents.show_window)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        self.new_chat_action = new_action

        self._refresh_model_labels()
        self.chat.input.setFocus()
        for problem in loaded.problems:
            self.add_alert(f"Settings: {problem}")
        for warning in self.session.endpoint_warnings():
            self.add_alert(f"Security: {warning}")
        self.history.restore()

    # -- start and stop -------------------------------------------------------

    def start_models(self) -> None:
        """Load every role in its own thread; start the GUI-thread refresh timers."""
        from zeta_desktop.ui.chat.highlight import warm_up

        self.session.start()
        self.tasks.run_in_background(warm_up)  # code blocks highlight without a first hitch
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
        self.tasks.shutdown()
        # After the models: their last words (a stopped answer) are written first.
        if self.store is not None:
            self.store.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self.hide()
        self.shutdown()
        super().closeEvent(event)

    # -- labels ---------------------------------------------------------------

    def add_alert(self, text: str) -> None:
        lines = [line for line in self.alert_label.text().split("\n") if line]
        self.alert_label.setText("\n".join([*lines, text]))
        self.alerts.show()

    @Slot()
    def dismiss_alerts(self) -> None:
        self.alert_label.clear()
        self.alerts.hide()

    def _refresh_model_labels(self) -> None:
        parts = []
        demo_roles = []
        for name, runtime in self.session.roles.items():
            for replica in runtime.replicas:
                if replica.endpoint is not None and replica.key in self.roles_panel.cards:
                    self.roles_panel.cards[replica.key].set_model(
                        replica.endpoint.label, replica.endpoint.base_url)
                    parts.append(f"{replica.key}: {replica.endpoint.label}")
            card = self.roles_panel.cards.get(name)
            if card is None or not runtime.config.uses_local_model:
                continue
            if runtime.source is None:
                card.set_model("no model file", "")
                parts.append(f"{name}: none")
                continue
            card.set_model(runtime.source.display_name, str(runtime.source.path))
            parts.append(f"{name}: {runtime.source.path.name}")
            if runtime.source.is_demo:
                demo_roles.append(name)
        self.statusBar().showMessage("   ·   ".join(parts))
        self.chat.set_chat_roles([r for r in self.session.roles if self.session.can_chat(r)])
        if demo_roles:
            chat_demo = [r for r in demo_roles if self.session.roles[r].source.can_chat]
            said = []
            if chat_demo:
                said.append(f"{', '.join(chat_demo)} {'use' if len(chat_demo) > 1 else 'uses'} "
                             "the small SmolLM2-135M demo model")
            embed_demo = [r for r in demo_roles if r not in chat_demo]
            if embed_demo:
                said.append(f"{', '.join(embed_demo)} {'use' if len(embed_demo) > 1 else 'uses'} "
                            "all-MiniLM-L6-v2, which embeds and never chats")
            self.banner.setText(
                f"Demo mode: {'; '.join(said)}. Point a role at your own GGUF file with its "
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
                plan = self.session.fleet.plans.get(role)
                if plan is not None:
                    worker = self.session.fleet.worker(role)
                    card.set_memory(plan.estimate.total_bytes, plan.message,
                                    worker.allocated_bytes)
        new, self._adjustments_shown = self.session.router.adjustments_since(
            self._adjustments_shown
        )
        for adjustment in new:
            self._log(f"adjusted {adjustment.line()}")

    def _log(self, line: str) -> None:
        self.router_log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")

    # -- slots ----------------------------------------------------------------

    # -- turns: the session speaks of turns, the chat of the messages shown ---------

    def answer_view(self, turn_id: int) -> MessageView | None:
        """The view of a turn's answer, if its conversation is shown."""
        return self.chat.answer_view(self.session.turn(turn_id).answer_id)

    def _shown_answer(self, turn_id: int) -> str | None:
        """The answer's message id if its conversation is the one shown, else None."""
        try:
            turn = self.session.turn(turn_id)
        except KeyError:  # not one of this session's turns
            return None
        if turn.conversation_id != self.session.conversation.id:
            return None
        return turn.answer_id

    @Slot(str)
    def _on_send(self, prompt: str) -> None:
        conversation = self.session.conversation
        turn_id = self.session.send(prompt, role=self.chat.target_role())
        *_earlier, question, answer = conversation.path(self.session.turn(turn_id).answer_id)
        self.history.add_message_view(conversation, question)
        view = self.chat.add_pending_answer(answer.id)
        self.history.set_actions(conversation, answer, view)
        self.history.conversation_changed()
        self.sidebar.set_busy(self.session.busy_conversations())

    @Slot(str, str)
    def _on_send_edit(self, message_id: str, text: str) -> None:
        self.history.send_edit(message_id, text, self.chat.target_role())
        self.sidebar.set_busy(self.session.busy_conversations())

    @Slot()
    def _on_stop(self) -> None:
        self.session.stop()

    @Slot(int, object)
    def _on_turn_routed(self, turn_id: int, decision: Decision) -> None:
        key = self._shown_answer(turn_id)
        if key is not None:
            self.chat.on_turn_routed(key, decision)

    @Slot(int, str, str)
    def _on_turn_started(self, turn_id: int, role: str, reason: str) -> None:
        key = self._shown_answer(turn_id)
        if key is not None:
            self.chat.on_turn_started(key, role, reason)

    @Slot(int, str)
    def _on_turn_token(self, turn_id: int, _text: str) -> None:
        key = self._shown_answer(turn_id)
        if key is not None:
            message = self.session.conversation.get(key)
            if message is not None:
                # The model's text so far: right also for tokens queued before
                # this conversation was shown again.
                self.chat.on_answer_text(key, message.content)

    @Slot(int, str)
    def _on_turn_failed(self, turn_id: int, message: str) -> None:
        key = self._shown_answer(turn_id)
        self.sidebar.set_busy(self.session.busy_conversations())
        if key is None:
            return
        self._sync_text(key)
        self.chat.on_turn_failed(key, message)
        self._refresh_actions(key)
        # Nothing typed is lost: a prompt that got no answer goes back in the box.
        turn = self.session.turn(turn_id)
        if not turn.answer and not self.chat.input.toPlainText().strip():
            self.chat.input.setPlainText(turn.prompt)

    @Slot(int, str, str)
    def _on_turn_retried(self, turn_id: int, failed_role: str, message: str) -> None:
        key = self._shown_answer(turn_id)
        if key is not None:
            self.chat.on_turn_retried(key, failed_role, message)
        self._log(f"failover: turn {turn_id} failed on {failed_role} ({message}); retrying")

    @Slot(int, bool, object)
    def _on_turn_finished(self, turn_id: int, stopped: bool, stats: ChatStats) -> None:
        log.info("turn %d finished (stopped=%s): %s", turn_id, stopped, stats)
        key = self._shown_answer(turn_id)
        if key is not None:
            self._sync_text(key)
            self.chat.on_turn_finished(key, stopped, stats)
            self._refresh_actions(key)
            self._show_sources(key)
        self.sidebar.set_busy(self.session.busy_conversations())

    def _show_sources(self, key: str) -> None:
        message = self.session.conversation.get(key)
        view = self.chat.answer_view(key)
        line = sources_line(message.meta) if message is not None else ""
        if view is not None and line:
            view.set_footer(f"{view.footer.text()}\n{line}")

    def _sync_text(self, key: str) -> None:
        message = self.session.conversation.get(key)
        view = self.chat.answer_view(key)
        if message is not None and view is not None:
            view.set_text_so_far(message.content)
            if message.meta.sources:  # asked against documents: [n] open the passages
                view.set_citations(len(message.meta.sources))

    def _refresh_actions(self, key: str) -> None:
        conversation = self.session.conversation
        message = conversation.get(key)
        view = self.chat.answer_view(key)
        if message is not None and view is not None:
            self.history.set_actions(conversation, message, view)

    @Slot(object)
    def show_decision(self, key: object) -> None:
        """A small window with the full routing decision of one answer (old ones too)."""
        if isinstance(key, int):  # a turn id
            key = self.session.turn(key).answer_id
        turn = self.session.turn_for_message(str(key))
        message = self.session.conversation.get(str(key))
        if turn is not None and turn.decision is not None:
            text = explain(turn.decision, turn.attempts)
        elif message is not None and message.meta.decision_text:
            text = message.meta.decision_text
        else:
            text = "not routed yet"
        dialog = QDialog(self)
        dialog.setWindowTitle("Routing decision")
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
        self._save_config(saved)

    def _save_config(self, config: AppConfig) -> None:
        problem = save_or_say(config, self._loaded.path)
        if problem:
            self.chat.add_notice(problem)

    @Slot(str)
    def _on_choose_model(self, role: str) -> None:
        """The model picker: what discovery finds, the role's best fit selected."""
        from zeta_desktop.ui.models.model_picker import ModelPicker

        config = self.session.config.roles[role]
        picker = ModelPicker(
            role, wants_embedding=config.can_embed and not config.can_chat,
            n_ctx=config.n_ctx, n_gpu_layers=config.n_gpu_layers, tasks=self.tasks,
            folders=self._loaded.config.model_folders, on_folder_added=self._remember_folder,
            parent=self,
        )
        picker.sig_chosen.connect(lambda chosen_role, path: self.set_role_model(chosen_role, path))
        picker.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.model_picker = picker
        picker.show()
        picker.start_scan()

    @Slot(str)
    def _on_role_settings(self, role: str) -> None:
        from zeta_desktop.ui.models.role_settings import RoleSettingsDialog

        dialog = RoleSettingsDialog(role, self.session.config.roles[role], parent=self)
        dialog.sig_apply.connect(self.apply_role_settings)
        dialog.sig_pick_model.connect(self._on_choose_model)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.role_settings = dialog
        dialog.show()

    def apply_role_settings(self, role: str, config: RoleConfig) -> None:
        """Reload the role with these settings beside the old model, which keeps
        answering until the new one is ready; saved once it is."""
        self.chat.add_notice(f"Reloading {role} with its new settings; it keeps answering "
                             "meanwhile.", "#4b5563")

        def done(why: str) -> None:
            if why:
                self.chat.add_notice(f"Kept {role} as it was: {why}")
                return
            saved = self._loaded.config
            saved.roles[role] = copy.deepcopy(config)
            self._save_config(saved)
            self._refresh_model_labels()
            self.chat.add_notice(f"{role} reloaded with its new settings.", "#15803d")

        self.tasks.run_in_background(
            lambda: self.session.replace_role_hot(role, config), done,
            lambda exc: self.chat.add_notice(f"Could not reload {role}: {exc}"),
        )

    def _remember_folder(self, folder: str) -> None:
        saved = self._loaded.config
        if folder not in saved.model_folders:
            saved.model_folders.append(folder)
            self._save_config(saved)

    def set_role_model(self, role: str, path: str) -> None:
        """Load another file for a role and remember it in the config file.

        The old worker may still be loading (a join of minutes): the swap runs
        in the background and the window keeps answering.
        """
        saved = self._loaded.config
        saved.roles[role].model_path = path
        self._save_config(saved)
        role_config = self.session.config.roles[role]
        role_config.model_path = path
        if role in self.roles_panel.cards:
            self.roles_panel.cards[role].set_model(Path(path).name, path)
        self.tasks.run_in_background(
            lambda: self.session.replace_role(role, role_config),
            lambda _r: self._refresh_model_labels(),
            lambda exc: self.chat.add_notice(f"Could not switch {role} to {path}: {exc}"),
        )
