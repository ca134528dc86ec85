"""A role's settings: its model, how it loads, how it samples, what it does.

Apply reloads that role in the background beside the old model, which keeps
answering until the new one is ready (or the user is told why not); the other
roles never stop.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from zeta_desktop.core.settings import AUTO_GPU_LAYERS, SAMPLING_LIMITS, RoleConfig

UNSET = "model default"
SAMPLING_LABELS = {"top_p": "Top-p", "top_k": "Top-k", "min_p": "Min-p",
                   "repeat_penalty": "Repeat penalty"}


class RoleSettingsDialog(QDialog):
    sig_apply = Signal(str, object)
    """(role, RoleConfig): apply these settings to the role."""

    sig_pick_model = Signal(str)
    """The user wants the model picker for this role."""

    def __init__(self, role: str, config: RoleConfig, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self._config = copy.deepcopy(config)
        self.setWindowTitle(f"{role}: settings")
        form = QFormLayout(self)

        self.model_path = QLineEdit(config.model_path)
        self.model_path.setPlaceholderText("the demo model" if not config.replicas else
                                           "none: served by its servers")
        pick = QPushButton("Choose…")
        pick.clicked.connect(lambda: self.sig_pick_model.emit(self.role))
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(pick)
        form.addRow("Model file", row)
        if config.replicas:
            servers = ", ".join(r.url + (f"#{r.model}" if r.model else "") for r in config.replicas)
            form.addRow("Servers", QLabel(servers))

        self.n_ctx = self._spin(128, 1_048_576, config.n_ctx)
        form.addRow("Context (n_ctx)", self.n_ctx)
        self.gpu_layers = self._spin(AUTO_GPU_LAYERS, 1000, config.n_gpu_layers)
        self.gpu_layers.setSpecialValueText("auto (as many as fit)")
        self.gpu_layers.setToolTip("-1: every layer; 0: CPU only; auto: as many as fit")
        form.addRow("GPU layers", self.gpu_layers)
        self.n_threads = self._spin(0, 256, config.n_threads)
        self.n_threads.setSpecialValueText("auto (half the cores)")
        form.addRow("Threads", self.n_threads)
        self.temperature = self._double(0.0, 2.0, config.temperature, 0.05)
        form.addRow("Temperature", self.temperature)
        self.sampling: dict[str, QDoubleSpinBox] = {}
        for key, (low, high) in SAMPLING_LIMITS.items():
            # One step below the range means unset: the model's own default.
            step = 1.0 if key == "top_k" else 0.05
            box = self._double(low - step, high, config.sampling.get(key, low - step), step)
            box.setSpecialValueText(UNSET)
            self.sampling[key] = box
            form.addRow(SAMPLING_LABELS[key], box)
        self.max_tokens = self._spin(1, 1_000_000, config.max_tokens)
        form.addRow("Max tokens per answer", self.max_tokens)
        self.system_prompt = QPlainTextEdit(config.system_prompt)
        self.system_prompt.setPlaceholderText("empty: the app's default system prompt")
        self.system_prompt.setFixedHeight(70)
        form.addRow("Default system prompt", self.system_prompt)
        self.can_chat = QCheckBox("chats")
        self.can_chat.setChecked(config.can_chat)
        self.can_embed = QCheckBox("embeds")
        self.can_embed.setChecked(config.can_embed)
        does = QHBoxLayout()
        does.addWidget(self.can_chat)
        does.addWidget(self.can_embed)
        does.addStretch(1)
        form.addRow("This role", does)
        self.idle_unload = self._double(0.0, 1440.0, config.idle_unload_min, 1.0)
        self.idle_unload.setSpecialValueText("never")
        self.idle_unload.setSuffix(" min")
        form.addRow("Unload when idle for", self.idle_unload)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #dc2626;")
        self.problem.setWordWrap(True)
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = buttons.addButton("Apply and reload",
                                             QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self._apply)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @staticmethod
    def _spin(low: int, high: int, value: int) -> QSpinBox:
        box = QSpinBox()
        box.setRange(low, high)
        box.setValue(value)
        return box

    @staticmethod
    def _double(low: float, high: float, value: float, step: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setValue(value)
        return box

    def settings(self) -> RoleConfig:
        """The role's config as the dialog now says it."""
        config = copy.deepcopy(self._config)
        config.model_path = self.model_path.text().strip()
        config.n_ctx = self.n_ctx.value()
        config.n_gpu_layers = self.gpu_layers.value()
        config.n_threads = self.n_threads.value()
        config.temperature = self.temperature.value()
        config.sampling = {key: (float(round(box.value())) if key == "top_k" else box.value())
                           for key, box in self.sampling.items()
                           if box.value() > box.minimum()}
        config.max_tokens = self.max_tokens.value()
        config.system_prompt = self.system_prompt.toPlainText().strip()
        config.can_chat = self.can_chat.isChecked()
        config.can_embed = self.can_embed.isChecked()
        config.idle_unload_min = self.idle_unload.value()
        return config

    @Slot()
    def _apply(self) -> None:
        config = self.settings()
        if not config.can_chat and not config.can_embed:
            self.problem.setText("A role must chat, embed, or both.")
            return
        self.sig_apply.emit(self.role, config)
        self.accept()
