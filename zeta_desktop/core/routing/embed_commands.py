"""The chat's embedding commands: `/embed TEXT`, `/similar TEXT A | TEXT B`
(their cosine) and `/similar TEXT` (past messages close in meaning)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from zeta_desktop.core.routing.classifier import explicit_command


@dataclass(frozen=True)
class EmbedCommand:
    command: str  # "/embed" or "/similar"
    texts: tuple[str, ...]

    @property
    def searches_history(self) -> bool:
        return self.command == "/similar" and len(self.texts) == 1


class CommandUsageError(ValueError):
    pass


def parse(prompt: str) -> EmbedCommand:
    command = explicit_command(prompt) or "/embed"
    text = prompt.lstrip()[len(command):].strip()
    texts = tuple(t.strip() for t in text.split("|")) if command == "/similar" else (text,)
    if not all(texts) or (command == "/similar" and len(texts) > 2):
        usage = "/embed TEXT" if command == "/embed" else "/similar TEXT, or /similar A | B"
        raise CommandUsageError(f"usage: {usage}")
    return EmbedCommand(command, texts)


def cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm or 1.0)


def answer(command: EmbedCommand, vectors: list[list[float]]) -> str:
    if command.command == "/similar":
        a, b = vectors
        return f"cosine similarity {cosine(a, b):.4f} ({len(a)}-dimensional embeddings)"
    vector = vectors[0]
    head = ", ".join(f"{x:.4f}" for x in vector[:8])
    return f"{len(vector)}-dimensional embedding (normalised): [{head}, …]"


def history_answer(text: str, hits: list[Any]) -> str:
    """`/similar TEXT`'s answer: the closest past messages, each a link that
    opens it in its conversation (the app's own `zeta-message:` links)."""
    if not hits:
        return (f"No past message is close in meaning to “{text}” yet (messages get their "
                "vectors in the background once the embedding model is loaded).")
    lines = [f"Past messages closest in meaning to “{text}”:", ""]
    for hit in hits[:10]:
        title = hit.conversation_title.replace("[", "(").replace("]", ")")
        snippet = hit.snippet.replace("[", "(").replace("]", ")")
        lines.append(f"- [{title}](zeta-message:{hit.conversation_id}/{hit.message_id}) "
                     f"({hit.score:.2f}): {snippet}")
    return "\n".join(lines)
