"""Colours shared by the chat badges, the role cards and the plots."""

import zlib

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

ROLE_COLOURS = {
    "coder": "#3b82f6",
    "embedder": "#10b981",
    "reasoner": "#f59e0b",
}
# Roles the user named: a colour each, the same every run.
_MORE_COLOURS = ("#8b5cf6", "#ef4444", "#14b8a6", "#ec4899", "#84cc16", "#0ea5e9", "#f97316")


def role_colour(key: str) -> str:
    """A role's colour; its replicas (`reasoner#2`) share it."""
    role = key.split("#", 1)[0]
    if role in ROLE_COLOURS:
        return ROLE_COLOURS[role]
    return _MORE_COLOURS[zlib.crc32(role.encode()) % len(_MORE_COLOURS)]

STATE_COLOURS = {
    "loading": "#6b7280",
    "ready": "#16a34a",
    "busy": "#2563eb",
    "unavailable": "#dc2626",
    "stopped": "#6b7280",
    "unloaded": "#6b7280",
}


def set_text_colour(widget: QWidget, colour: str) -> None:
    """Colour a label's text through its palette.

    Not setStyleSheet: each call gives the widget its own style-sheet style
    and re-polishes it, several ms for what changes often (states, messages).
    """
    palette = widget.palette()
    palette.setColor(QPalette.ColorRole.WindowText, QColor(colour))
    widget.setPalette(palette)


def set_small_text(widget: QWidget, colour: str) -> None:
    """The app's small print (footers, stats, readings): 11 px, in `colour`."""
    font = widget.font()
    font.setPixelSize(11)
    widget.setFont(font)
    set_text_colour(widget, colour)
