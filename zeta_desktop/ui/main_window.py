"""The main window: chat on the left; models, live load and the router on the right.

It lays out the widgets and hands each part to its controller; it reaches the
core only through the door it is given (core/chat/api.py), which `ui/app.py`
composes.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop import APP_NAME
from zeta_desktop.core.chat.api import ChatApi
from zeta_desktop.ui.bridge import EventBridge
from zeta_desktop.ui.chat.chat_controller import ChatController
from zeta_desktop.ui.chat.chat_pane import ChatPane
from zeta_desktop.ui.chat.message_view import MessageView
from zeta_desktop.ui.documents.documents_controller import DocumentsController
from zeta_desktop.ui.gc_timer import GuiThreadCollector
from zeta_desktop.ui.history.history_controller import HistoryController
from zeta_desktop.ui.history.sidebar import Sidebar
from zeta_desktop.ui.models.models_controller import ModelsController
from zeta_desktop.ui.models.role_panel import RolePanel
from zeta_desktop.ui.paint_turns import PaintTurns
from zeta_desktop.ui.router.load_plots import LoadPlots
from zeta_desktop.ui.router.router_log import RouterLog
from zeta_desktop.ui.router.router_panel import RouterPanel
from zeta_desktop.ui.server.server_panel import ServerPanel
from zeta_desktop.ui.tasks import TaskManager

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, api: ChatApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 800)
        self.api = api
        self.tasks = TaskManager()
        self._shut_down = False
        # Garbage is collected on the GUI thread only (see gc_timer).
        self._collector = GuiThreadCollector(self)

        # The chat and the plots take turns to repaint (see paint_turns).
        paint_turns = PaintTurns()
        self.chat = ChatPane(paint_turns)
        # Every endpoint gets a card and a curve (a role's replicas each one).
        self.roles_panel = RolePanel(api.endpoints())
        self.plots = LoadPlots(api.telemetry, api.endpoints(), paint_turns)
        self.router_panel = RouterPanel(api)
        self.router_log = RouterLog(api)
        self.server_panel = ServerPanel(api, self.tasks)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.router_panel, "Router")
        self.tabs.addTab(self.router_log, "Router log")
        self.tabs.addTab(self.server_panel, "Server")
        self.sidebar = Sidebar()
        self.banner = _banner()
        self.alerts, self.alert_label = self._alert_bar()
        self._lay_out()

        self.history = HistoryController(
            api, self.sidebar, self.chat, self.tasks, self.add_alert, self)
        self.documents = DocumentsController(api, self.chat, self.history, self.tasks, self)
        self.models = ModelsController(
            api, self.roles_panel, self.banner, self.tasks, self.chat.add_notice,
            self.statusBar().showMessage, self.chat.set_chat_roles, self)
        self.turns = ChatController(
            api, self.chat, self.sidebar, self.history, self.models.on_role_state,
            self.add_alert, self.router_log.add_line, self)
        self.router_panel.sig_save_problem.connect(self.chat.add_notice)
        self.server_panel.sig_save_problem.connect(self.chat.add_notice)
        self.turns.sig_turn_ended.connect(self.history.on_turn_ended)
        # The one subscriber: every event, queued onto the GUI thread.
        self.bridge = EventBridge(self)
        self.bridge.deliver_to(self.turns.on_event)
        api.subscribe(self.bridge)
        self._build_menu()

        self.models.refresh_labels()
        self.chat.input.setFocus()
        for problem in api.setting_problems():
            self.add_alert(problem)
        self.history.restore()

    def _lay_out(self) -> None:
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.roles_panel)
        side.addWidget(self.plots)
        side.addWidget(self.tabs)
        side.setSizes([150, 250, 390])
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

    def _alert_bar(self) -> tuple[QWidget, QLabel]:
        """Problems that outlive any one conversation (settings, the history
        file): shown until dismissed, not in a chat that switching clears."""
        alerts = QWidget()
        row = QHBoxLayout(alerts)
        row.setContentsMargins(6, 4, 6, 4)
        label = QLabel()
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.dismiss_alerts)
        row.addWidget(label, 1)
        row.addWidget(dismiss)
        alerts.setStyleSheet("background: #fee2e2; color: #7f1d1d; border-radius: 4px;")
        alerts.hide()
        return alerts, label

    def _build_menu(self) -> None:
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

    # -- start and stop -------------------------------------------------------

    def start_models(self) -> None:
        """Load every role in its own thread; start the GUI-thread refresh timers."""
        from zeta_desktop.ui.chat.highlight import warm_up

        self.api.start()
        self.tasks.run_in_background(warm_up)  # code blocks highlight without a first hitch
        self.plots.start()
        self.router_panel.start()
        self.router_log.start()
        self.models.start()

    def start_serving(self) -> None:
        """The Server switch as it was left: the local server starts when the
        settings say so (after the models start; the self-test never serves)."""
        self.server_panel.start()

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        # First: no client's request arrives while the rest stops, and none
        # is cut off by the models stopping under it.
        self.server_panel.stop()
        self.plots.stop()
        self.router_panel.stop()  # saves a slider change still waiting
        self.router_log.stop()
        self.models.stop()
        self.history.stop()
        self.documents.stop()
        self.api.stop_models()
        self.tasks.shutdown()
        # After the models and the background work: their last words are saved first.
        self.api.close_history()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self.hide()
        self.shutdown()
        super().closeEvent(event)

    # -- alerts ---------------------------------------------------------------

    def add_alert(self, text: str) -> None:
        lines = [line for line in self.alert_label.text().split("\n") if line]
        self.alert_label.setText("\n".join([*lines, text]))
        self.alerts.show()

    @Slot()
    def dismiss_alerts(self) -> None:
        self.alert_label.clear()
        self.alerts.hide()

    def answer_view(self, turn_id: int) -> MessageView | None:
        """The view of a turn's answer, if its conversation is shown."""
        return self.chat.answer_view(self.api.turn(turn_id).answer_id)


def _banner() -> QLabel:
    """The demo mode's note over the chat."""
    banner = QLabel()
    banner.setWordWrap(True)
    banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    banner.setStyleSheet("background: #fef3c7; color: #78350f; padding: 6px; border-radius: 4px;")
    return banner
