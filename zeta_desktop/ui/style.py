"""Colours shared by the chat badges, the role cards and (later) the plots."""

ROLE_COLOURS = {
    "coder": "#3b82f6",
    "embedder": "#10b981",
    "reasoner": "#f59e0b",
}

STATE_COLOURS = {
    "loading": "#6b7280",
    "ready": "#16a34a",
    "busy": "#2563eb",
    "unavailable": "#dc2626",
    "stopped": "#6b7280",
}
