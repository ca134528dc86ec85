"""How the window marks what an API client sent: `API · OpenAI/Python`."""

from __future__ import annotations

API_COLOUR = "#7c3aed"  # what a client sent, beside what was typed


def client_mark(client: str) -> str:
    """The mark of a turn's sender (`api: OpenAI/Python`); '' for a typed prompt."""
    if not client:
        return ""
    name = client.removeprefix("api").removeprefix(":").strip()
    return f"API · {name}" if name else "API"
