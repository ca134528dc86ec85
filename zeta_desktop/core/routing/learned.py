"""A linear text classifier for task kinds, trained offline (`training/train_classifier.py`).

Features are hashed word uni- and bigrams, hashed character 3-5-grams inside
words, and the hit counts of the hand-written rules in `classifier.RULES`, so the
rules still count as evidence. The model is a multinomial logistic regression
whose logits are divided by a temperature fitted on prompts from sources it
was not trained on: its probability is meant as the chance of being right.
Only numpy at run time; a few milliseconds per prompt on a laptop core.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeta_desktop.core.resources import resource_path

MODEL_DIR = "classifier"
WEIGHTS_FILE = "text-model.npy"
META_FILE = "text-model.json"
FEATURE_VERSION = 1
HASH_BITS = 17
DIMENSIONS = 1 << HASH_BITS
MAX_FEATURE_CHARS = 1500  # the start and end of a long prompt say what it is
RULE_SCALE = 2.0  # rule hits weigh more than any one n-gram: they carry across sources

_TOKEN = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")


def _hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & (DIMENSIONS - 1)


def _clipped(prompt: str) -> str:
    if len(prompt) <= MAX_FEATURE_CHARS:
        return prompt
    half = MAX_FEATURE_CHARS // 2
    return prompt[:half] + "\n" + prompt[-half:]


def rule_hits(prompt: str) -> dict[str, int]:
    from zeta_desktop.core.routing.classifier import RULES, count_hits

    counts = {rule.label: count_hits(rule, prompt) for rule in RULES}
    return {label: count for label, count in counts.items() if count}


def features(prompt: str) -> tuple[np.ndarray, np.ndarray]:
    """Sparse feature vector: (indices, values), L2-normalised text part plus rule counts."""
    text = _clipped(prompt).lower()
    tokens = _TOKEN.findall(text)
    counts: dict[int, float] = {}

    def add(key: str) -> None:
        index = _hash(key)
        counts[index] = counts.get(index, 0.0) + 1.0

    previous = "<s>"
    for token in tokens:
        add("w:" + token)
        add("b:" + previous + " " + token)
        previous = token
        if len(token) > 2 and token.isalpha():
            padded = f"<{token}>"
            for n in (3, 4, 5):
                for i in range(len(padded) - n + 1):
                    add("c:" + padded[i : i + n])
    lines = prompt.count("\n")
    add(f"lines:{min(lines, 8)}")
    add(f"len:{min(int(math.log2(len(prompt) + 1)), 12)}")
    if not counts:
        add("empty")
    indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    values = np.log1p(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
    values /= float(np.sqrt(np.dot(values, values)))
    rule_index, rule_value = [], []
    for label, count in rule_hits(prompt).items():
        rule_index.append(_hash("rule:" + label))
        rule_value.append(RULE_SCALE * count)
    if rule_index:
        indices = np.concatenate([indices, np.asarray(rule_index, dtype=np.int64)])
        values = np.concatenate([values, np.asarray(rule_value, dtype=np.float64)])
    return indices, values


@dataclass(frozen=True)
class TextModel:
    classes: tuple[str, ...]
    weights: np.ndarray  # DIMENSIONS x classes
    bias: np.ndarray
    temperature: float

    def logits(self, prompt: str) -> np.ndarray:
        indices, values = features(prompt)
        rows = self.weights[indices].astype(np.float64)
        return values @ rows + self.bias

    def probabilities(self, prompt: str) -> dict[str, float]:
        z = self.logits(prompt) / self.temperature
        z = np.exp(z - z.max())
        z /= z.sum()
        return {kind: float(p) for kind, p in zip(self.classes, z, strict=True)}

    def top_features(self, prompt: str, kind: str, count: int = 3) -> list[str]:
        """The prompt's words that pushed hardest toward `kind` (for the decision text)."""
        column = self.classes.index(kind)
        others = [i for i in range(len(self.classes)) if i != column]
        scored: dict[str, float] = {}
        for token in set(_TOKEN.findall(_clipped(prompt).lower())):
            if len(token) < 3:
                continue
            row = self.weights[_hash("w:" + token)].astype(np.float64)
            scored[token] = float(row[column] - row[others].max())
        ranked = sorted(scored.items(), key=lambda item: (-item[1], item[0]))
        return [token for token, margin in ranked[:count] if margin > 0]


class TextModelError(Exception):
    """The shipped model file is missing or unreadable."""


def load_text_model(directory: Path | None = None) -> TextModel:
    directory = directory or resource_path(MODEL_DIR)
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        weights = np.load(directory / WEIGHTS_FILE, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TextModelError(f"cannot read the task classifier in {directory}: {exc}") from exc
    if meta.get("feature_version") != FEATURE_VERSION or weights.shape != (
        DIMENSIONS + 1,
        len(meta.get("classes", ())),
    ):
        raise TextModelError(f"{directory}: task classifier was built for other features")
    return TextModel(
        tuple(meta["classes"]), weights[:-1], weights[-1].astype(np.float64),
        float(meta["temperature"]),
    )
