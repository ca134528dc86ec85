"""Steering the router: policy, a slider per threshold, and a live route preview."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import ChatApi
from zeta_desktop.core.settings import POLICIES, THRESHOLD_SPECS, ThresholdSpec
from zeta_desktop.ui.server.client_mark import API_COLOUR, client_mark
from zeta_desktop.ui.style import role_colour

PREVIEW_ROWS = 20
SAVE_DELAY_MS = 400  # a dragged slider is saved once it rests


class RouterPanel(QWidget):
    sig_settings_changed = Signal()
    """A threshold or the policy changed (saved once the slider rests)."""
    sig_save_problem = Signal(str)
    """The settings could not be saved: why."""

    def __init__(self, api: ChatApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api = api
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save)
        self.sig_settings_changed.connect(self._save_timer.start)  # restarts while it moves

        self.policy_box = QComboBox()
        self.policy_box.addItems(list(POLICIES))
        self.policy_box.setCurrentText(api.policy)
        self.policy_box.setToolTip(
            "adaptive: preferred model unless it breaks a threshold · static: always the "
            "preferred model · least-busy · lowest-latency · round-robin"
        )
        self.policy_box.currentTextChanged.connect(self._on_policy_changed)
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.clicked.connect(self.reset_to_defaults)

        grid = QGridLayout()
        grid.setVerticalSpacing(2)
        grid.addWidget(QLabel("Policy"), 0, 0)
        policy_row = QHBoxLayout()
        policy_row.addWidget(self.policy_box, 1)
        policy_row.addWidget(self.reset_button)
        grid.addLayout(policy_row, 0, 1, 1, 2)
        self.sliders: dict[str, QSlider] = {}
        self.value_labels: dict[str, QLabel] = {}
        for row, spec in enumerate(THRESHOLD_SPECS, start=1):
            label = QLabel(spec.label)
            label.setToolTip(spec.tooltip)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, spec.to_slider(spec.high))
            slider.setToolTip(spec.tooltip)
            slider.setObjectName(spec.name)
            value = QLabel()
            value.setMinimumWidth(56)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.sliders[spec.name] = slider
            self.value_labels[spec.name] = value
            grid.addWidget(label, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
        self._sync_sliders()
        for spec in THRESHOLD_SPECS:
            self.sliders[spec.name].valueChanged.connect(
                lambda position, spec=spec: self._on_slider(spec, position)
            )

        self.preview = QTableWidget(0, 3)
        # What each cell shows now: asking Qt's items for it costs a call per property.
        self._cells: dict[tuple[int, int], tuple[str, str | None, str | None, bool]] = {}
        self.preview.setHorizontalHeaderLabels(["prompt", "now →", "why"])
        self.preview.verticalHeader().hide()
        self.preview.verticalHeader().setDefaultSectionSize(20)
        self.preview.setMinimumHeight(90)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.preview.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.preview.setToolTip(
            "Where your last prompts would go now, under these thresholds and the live load"
        )

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(grid)
        # How kinds are read: an own embedder's index shows its progress here.
        self.task_reading = QLabel()
        self.task_reading.setWordWrap(True)
        layout.addWidget(self.task_reading)
        layout.addWidget(QLabel("Route preview: where your last 20 prompts would go now"))
        layout.addWidget(self.preview, 1)

        # Live state changes the preview even when no slider moves.
        self.preview_timer = QTimer(self)
        self.preview_timer.setInterval(1000)
        self.preview_timer.timeout.connect(self._on_preview_timer)

    def start(self) -> None:
        self.preview_timer.start()
        self.refresh_preview()

    def stop(self) -> None:
        """Stop refreshing; a change still waiting to be saved is saved now."""
        self.preview_timer.stop()
        if self._save_timer.isActive():
            self._save_timer.stop()
            self.save()

    @Slot()
    def save(self) -> None:
        problem = self.api.save_router_settings()
        if problem:
            self.sig_save_problem.emit(problem)

    def _sync_sliders(self) -> None:
        thresholds = self.api.thresholds
        for spec in THRESHOLD_SPECS:
            value = getattr(thresholds, spec.name)
            slider = self.sliders[spec.name]
            slider.blockSignals(True)
            slider.setValue(spec.to_slider(value))
            slider.blockSignals(False)
            self.value_labels[spec.name].setText(spec.text(value))

    def _on_slider(self, spec: ThresholdSpec, position: int) -> None:
        value = spec.from_slider(position)
        self.api.update_thresholds(**{spec.name: value})
        self.value_labels[spec.name].setText(spec.text(value))
        self.refresh_preview()
        self.sig_settings_changed.emit()

    @Slot(str)
    def _on_policy_changed(self, policy: str) -> None:
        self.api.set_policy(policy)
        self.refresh_preview()
        self.sig_settings_changed.emit()

    @Slot()
    def reset_to_defaults(self) -> None:
        self.api.reset_router()  # thresholds, and what the user's role choices taught it
        self._sync_sliders()
        self.policy_box.setCurrentText("adaptive")  # emits when it changes
        self.refresh_preview()
        self.sig_settings_changed.emit()

    @Slot()
    def _on_preview_timer(self) -> None:
        if self.preview.isVisible():  # not while its tab is in the back
            self.refresh_preview()

    def _show_task_reading(self) -> None:
        text = self.api.task_reading()
        if text != self.task_reading.text():
            self.task_reading.setText(text)

    @Slot()
    def refresh_preview(self) -> None:
        self._show_task_reading()
        rows = self.api.route_preview(PREVIEW_ROWS)
        self.preview.setRowCount(len(rows))
        typed_colour = self.preview.palette().color(QPalette.ColorRole.Text).name()
        for row, entry in enumerate(rows):
            moved = bool(entry.sent_to and entry.role != entry.sent_to)
            # An API client's request is marked as one: no chat shows it.
            mark = client_mark(entry.client)
            cells = (
                # A tooltip reads rich text: a client's words are escaped, so
                # an <img src="file:..."> in a request shows as text.
                (f"{mark} · {entry.prompt}", API_COLOUR,
                 html.escape(f"sent by {entry.client.removeprefix('api: ')} through the "
                             f"local server: {entry.prompt}"), False)
                if mark else (entry.prompt, typed_colour, "", False),
                (f"{entry.role} ({entry.kind})", role_colour(entry.role),
                 f"went to {entry.sent_to} when sent" if moved else "", moved),
                (entry.why, None, entry.full_reason, False),
            )
            for col, (text, colour, tip, strong) in enumerate(cells):
                self._set_cell(row, col, text, colour, tip, strong)

    def _set_cell(
        self, row: int, col: int, text: str, colour: str | None, tip: str | None, bold: bool
    ) -> None:
        """Touch a cell only when it changes: the preview refreshes every second."""
        shown = (text, colour, tip, bold)
        item = self.preview.item(row, col)
        if item is not None and self._cells.get((row, col)) == shown:
            return
        self._cells[(row, col)] = shown
        if item is None:
            item = QTableWidgetItem()
            self.preview.setItem(row, col, item)
        item.setText(text)
        if colour is not None:
            item.setForeground(QColor(colour))
        if tip is not None:
            item.setToolTip(tip)
        font = item.font()
        font.setBold(bold)
        item.setFont(font)
