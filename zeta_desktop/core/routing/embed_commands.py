"""The chat's embedding commands: `/embed TEXT` and `/similar TEXT A | TEXT B`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zeta_desktop.core.routing.classifier import explicit_command


@dataclass(frozen=True)
class EmbedCommand:
    command: str  # "/embed" or "/similar"
    texts: tuple[str, ...]


class CommandUsageError(ValueError):
    pass


def parse(prompt: str) -> EmbedCommand:
    command = explicit_command(prompt) or "/embed"
    text = prompt.lstrip()[len(command):].strip()
    texts = tuple(t.strip() for t in text.split("|")) if command == "/similar" else (text,)
    if not all(texts) or (command == "/similar" and len(texts) != 2):
        usage = "/embed TEXT" if command == "/embed" else "/similar TEXT A | TEXT B"
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
