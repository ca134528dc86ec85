"""A card per role: its model file, its state and why, and a way to change the file."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from zeta_desktop.core.chat.api import ModelSignals, mib
from zeta_desktop.ui.chat.live_text import LiveText
from zeta_desktop.ui.style import STATE_COLOURS, role_colour, set_small_text, set_text_colour

ROLE_BLURBS = {
    "coder": "code · ~7B",
    "embedder": "embeddings, simple chat · ~4B",
    "reasoner": "reasoning · ~14B",
}


STATE_TEXT = {"unloaded": "unloaded (idle)"}


class RoleCard(QFrame):
    sig_choose_model = Signal(str)
    """The user wants to pick another GGUF file for this role."""

    sig_settings = Signal(str)
    """The user wants this role's settings."""

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        colour = role_colour(role)
        self.setObjectName("roleCard")
        self.setStyleSheet(
            f"QFrame#roleCard {{ border: 1px solid palette(mid); border-top: 3px solid {colour};"
            " border-radius: 4px; }"
        )
        title = QLabel(role)
        title.setStyleSheet(f"color: {colour}; font-weight: 600;")
        title.setToolTip(f"{role}: {ROLE_BLURBS.get(role, '')}")
        # State and stats change while models stream: LiveText repaints only itself.
        self.state_label = LiveText("cooling down", Qt.AlignmentFlag.AlignRight)
        self.state_label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        bold = self.state_label.font()
        bold.setWeight(QFont.Weight.DemiBold)
        self.state_label.setFont(bold)
        self._model_text = ""
        # (estimate, allocated bytes, placement, note) shown
        self._memory: tuple[int, int, str, str] | None = None
        self.model_label = QLabel("")
        self.model_label.setTextFormat(Qt.TextFormat.PlainText)
        self.model_label.setStyleSheet("color: #374151;")
        self.detail_label = QLabel("")
        self.detail_label.setTextFormat(Qt.TextFormat.PlainText)
        # One line: the card keeps its height when a server goes down (the
        # column does not grow); the whole reason is in the tooltip.
        self.detail_label.setWordWrap(False)
        self.detail_label.setMinimumWidth(1)
        self.detail_label.setStyleSheet("color: #dc2626;")
        self.detail_label.hide()
        self.stats_label = LiveText("queue 10+1 · TTFT 10.00 s · 100 tok/s · 100% ok")
        set_small_text(self.stats_label, "#4b5563")
        # Shown once the model has thought: its last answer's tokens, thinking apart.
        self.thinking_label = LiveText("last answer: 99999 thinking + 99999 answer tokens")
        set_small_text(self.thinking_label, "#4b5563")
        self.thinking_label.hide()
        self.choose_button = QPushButton("Choose GGUF…")
        self.choose_button.setStyleSheet("padding: 1px 6px; font-size: 11px;")
        self.choose_button.setToolTip(f"Point the {role} role at a GGUF file on this machine")
        # A replica's card (reasoner#2) changes its role's own model file.
        self.choose_button.clicked.connect(
            lambda: self.sig_choose_model.emit(self.role.split("#", 1)[0]))

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(title)
        top.addWidget(self.model_label, 1)
        top.addWidget(self.state_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 3, 8, 3)
        layout.setSpacing(1)
        layout.addLayout(top)
        layout.addWidget(self.detail_label)
        layout.addWidget(self.thinking_label)
        self.settings_button = QPushButton("Settings…")
        self.settings_button.setStyleSheet("padding: 1px 6px; font-size: 11px;")
        self.settings_button.setToolTip(f"The {role} role's context, GPU layers, sampling, "
                                        "system prompt and idle unload")
        self.settings_button.clicked.connect(
            lambda: self.sig_settings.emit(self.role.split("#", 1)[0]))
        bottom = QHBoxLayout()
        bottom.addWidget(self.stats_label, 1)
        bottom.addWidget(self.settings_button)
        bottom.addWidget(self.choose_button)
        layout.addLayout(bottom)
        self.set_state("loading", "")

    @property
    def state(self) -> str:
        return self._state

    def set_model(self, text: str, tooltip: str) -> None:
        self._model_text, self._memory = text, None
        self.model_label.setText(text)
        self.model_label.setToolTip(tooltip)

    def set_memory(self, estimate_bytes: int, note: str = "", taken_bytes: int = 0,
                   placement: str = "") -> None:
        """The model's memory estimate beside its name (weights, KV cache,
        compute), where its layers run (`placement`: "CPU", "CUDA 25/25
        layers"), and once loaded what llama.cpp said it allocated."""
        if self._memory == (estimate_bytes, taken_bytes, placement, note):
            return  # called by the stats timer: only a change repaints
        self._memory = (estimate_bytes, taken_bytes, placement, note)
        if taken_bytes:
            note = (f"llama.cpp allocated {mib(taken_bytes)} "
                    f"(estimate / allocated {estimate_bytes / taken_bytes:.2f})"
                    + (f"\n{note}" if note else ""))
        where = f" · {placement}" if placement else ""
        self.model_label.setText(f"{self._model_text} · ~{mib(estimate_bytes)}{where}")
        tooltip = self.model_label.toolTip().split("\n")[0]
        extra = f"\nmemory estimate before loading: {mib(estimate_bytes)}"
        self.model_label.setToolTip(tooltip + extra + (f"\n{note}" if note else ""))

    def set_stats(self, signals: ModelSignals, live_tokens_per_s: float | None = None) -> None:
        """The compact live row: queue, last TTFT, tokens/s, success rate.

        While the model answers, tokens/s is its speed now (the last seconds of
        samples); otherwise the average over its finished answers.
        """
        parts = [f"queue {signals.queue_depth}+{signals.in_flight}"]
        ttft = signals.newest_ttft_s
        parts.append(f"TTFT {ttft:.2f} s" if ttft is not None else "TTFT –")
        speed = signals.tokens_per_s
        if signals.in_flight and live_tokens_per_s:
            speed = live_tokens_per_s
        parts.append(f"{speed:.0f} tok/s" if speed is not None else "– tok/s")
        parts.append(f"{signals.success_rate:.0%} ok")
        if signals.last_thinking_tokens:  # a thinking model: its last answer's split
            answer = signals.last_tokens - signals.last_thinking_tokens
            self.thinking_label.setText(
                f"last answer: {signals.last_thinking_tokens} thinking + {answer} answer tokens")
            if self.thinking_label.isHidden():
                self.thinking_label.show()
        self.stats_label.setText(" · ".join(parts))  # LiveText: an unchanged text is a no-op
        cooling = signals.cooling_down and self._state in ("ready", "busy")
        shown = "cooling down" if cooling else STATE_TEXT.get(self._state, self._state)
        if self.state_label.text() != shown:
            self.state_label.setText(shown)
            colour = STATE_COLOURS.get("unavailable" if cooling else self._state, "#6b7280")
            set_text_colour(self.state_label, colour)

    def set_state(self, state: str, detail: str) -> None:
        self._state = state
        colour = STATE_COLOURS.get(state, "#6b7280")
        self.state_label.setText(STATE_TEXT.get(state, state))
        set_text_colour(self.state_label, colour)
        if state == "unavailable" and detail:
            self.detail_label.setText(detail)
            self.detail_label.setToolTip(detail)
            self.detail_label.show()
        else:
            self.detail_label.hide()


class RolePanel(QWidget):
    """The column beside the chat (the live plots join it in a later release)."""

    sig_choose_model = Signal(str)
    """Forwarded from a role card: the role whose model file to change."""

    sig_settings = Signal(str)
    """Forwarded from a role card: the role whose settings to show."""

    def __init__(self, roles: list[str], parent: QWidget | None = None) -> None:
        """`roles`: every endpoint's key, so each replica has its own card."""
        super().__init__(parent)
        self.cards: dict[str, RoleCard] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        for role in roles:
            card = RoleCard(role)
            card.sig_choose_model.connect(self.sig_choose_model)
            card.sig_settings.connect(self.sig_settings)
            self.cards[role] = card
            layout.addWidget(card)

    @Slot(str, str, str)
    def on_role_state(self, role: str, state: str, detail: str) -> None:
        card = self.cards.get(role)
        if card is not None:
            card.set_state(state, detail)
