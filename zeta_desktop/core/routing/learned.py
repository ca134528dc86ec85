"""Task-kind models trained offline (`training/train_classifier.py`), numpy only.

- The text model: hashed word uni- and bigrams, hashed character 3-5-grams
  inside words, and the hit counts of the hand-written rules in
  `rules.RULES` (so the rules still count as evidence), into a
  multinomial logistic regression. Under a millisecond per prompt.
- The embedding index: the demo embedder's (all-MiniLM-L6-v2) vectors of the
  labelled training prompts. A prompt's nearest neighbours vote, weighted by
  similarity; their vote is blended with the text model's logits. It is used
  only when the embedding role runs the model the index was built with (the
  probe sentences must embed to the stored vectors).

Every scale and temperature was fitted on prompts from sources left out of
the fit (leave-sources-out folds), so a probability is meant as the chance of
being right on a source never seen.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from zeta_desktop.core.resources import resource_path
from zeta_desktop.core.routing.rules import RULES, count_hits

MODEL_DIR = "classifier"
WEIGHTS_FILE = "text-model.npy"
META_FILE = "text-model.json"
INDEX_FILE = "embedding-index.npz"
INDEX_META_FILE = "embedding-index.json"
INDEX_TEXTS_FILE = "embedding-index-texts.jsonl.gz"  # what each index row embedded
EMBED_CHARS = 512  # what of a prompt is embedded: its start and end say what it is
PROBE_MATCH = 0.995  # cosine each probe sentence must reach for the index to apply
FEATURE_VERSION = 2
HASH_BITS = 17
DIMENSIONS = 1 << HASH_BITS
MAX_FEATURE_CHARS = 1500  # the start and end of a long prompt say what it is
RULE_SCALE = 2.0  # rule hits weigh more than any one n-gram: they carry across sources

Float64Array = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
Int64Array = npt.NDArray[np.int64]

_TOKEN = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")


def _hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & (DIMENSIONS - 1)


def _clipped(prompt: str, limit: int = MAX_FEATURE_CHARS) -> str:
    if len(prompt) <= limit:
        return prompt
    half = limit // 2
    return prompt[:half] + "\n" + prompt[-half:]


def embedding_text(prompt: str) -> str:
    """The part of a prompt the embedder sees (bounded, so a long paste costs
    tens of milliseconds, not seconds)."""
    return _clipped(prompt, EMBED_CHARS)


def rule_hits(prompt: str) -> dict[str, int]:
    counts = {rule.label: count_hits(rule, prompt) for rule in RULES}
    return {label: count for label, count in counts.items() if count}


def features(prompt: str) -> tuple[Int64Array, Float64Array]:
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
    # The line count says "pasted code or data"; the length is left out, as a
    # long story is no more reasoning than a short one.
    add(f"lines:{min(prompt.count(chr(10)), 8)}")
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
    weights: npt.NDArray[np.floating[Any]]  # DIMENSIONS x classes (float16 as shipped)
    bias: Float64Array
    temperature: float
    rules_certain: float | None = None  # rules at least this sure decide alone

    def logits(self, prompt: str) -> Float64Array:
        indices, values = features(prompt)
        rows = self.weights[indices].astype(np.float64)
        return values @ rows + self.bias

    def probabilities(self, prompt: str) -> dict[str, float]:
        return as_probabilities(self.classes, self.logits(prompt) / self.temperature)

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


def softmax(z: Float64Array) -> Float64Array:
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    totals: Float64Array = z.sum(axis=-1, keepdims=True)
    return z / totals


def as_probabilities(classes: tuple[str, ...], z: Float64Array) -> dict[str, float]:
    return {kind: float(p) for kind, p in zip(classes, softmax(z), strict=True)}


def neighbour_log_votes(
    similarities: Float64Array, labels: Int64Array, weights: Float64Array, k: int,
    temperature: float, n_classes: int,
) -> Float64Array:
    """Log of each class's share of the k nearest neighbours' vote (rows: queries).

    A neighbour votes exp(similarity / temperature) times its sample weight,
    so one very close labelled prompt outweighs many loose ones. Shared by
    the app and the training script, so both score the same way.
    """
    k = min(k, similarities.shape[1])
    top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(similarities, top, axis=1)
    strength = weights[top] * np.exp((near - near.max(axis=1, keepdims=True)) / temperature)
    votes: Float64Array = np.stack([np.where(labels[top] == c, strength, 0.0).sum(axis=1)
                                    for c in range(n_classes)], axis=1)
    totals: Float64Array = votes.sum(axis=1, keepdims=True)
    return np.log(np.clip(votes / totals, VOTE_FLOOR, None))


VOTE_FLOOR = 1e-4  # a class no neighbour voted for is unlikely, not impossible


@dataclass(frozen=True)
class EmbeddingIndex:
    """The labelled training prompts as unit vectors in the demo embedder's space."""

    classes: tuple[str, ...]
    vectors: Float32Array  # n x dims, unit length
    labels: Int64Array  # n, class index
    weights: Float64Array  # n, sample weight (each source counts the same)
    k: int
    temperature: float
    model_name: str
    probe_texts: tuple[str, ...]
    probe_vectors: Float64Array
    # The blend: softmax(text_scale * text logits + vote_scale * log vote share)
    text_scale: float
    vote_scale: float

    def log_votes(self, vector: npt.NDArray[np.floating[Any]]) -> Float64Array:
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        similarities = (self.vectors @ unit.astype(np.float32))[None, :].astype(np.float64)
        votes = neighbour_log_votes(similarities, self.labels, self.weights, self.k,
                                    self.temperature, len(self.classes))
        only_query: Float64Array = votes[0]
        return only_query

    def nearest(self, vector: npt.NDArray[np.floating[Any]]) -> tuple[str, float]:
        """The closest labelled prompt's kind and its similarity (for the evidence)."""
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        similarities = self.vectors @ unit.astype(np.float32)
        best = int(similarities.argmax())
        return self.classes[int(self.labels[best])], float(similarities[best])

    def matches(self, probe_vectors: list[list[float]]) -> float:
        """The lowest cosine between the stored probe vectors and these: the
        embedder is the index's model when every probe reaches PROBE_MATCH."""
        given = np.asarray(probe_vectors, dtype=np.float64)
        if given.shape != self.probe_vectors.shape:
            return 0.0
        given /= np.clip(np.linalg.norm(given, axis=1, keepdims=True), 1e-12, None)
        return float((given * self.probe_vectors).sum(axis=1).min())


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
    gate = meta.get("rules_certain")
    return TextModel(
        tuple(meta["classes"]), weights[:-1], weights[-1].astype(np.float64),
        float(meta["temperature"]), None if gate is None else float(gate),
    )


def load_embedding_index(directory: Path | None = None) -> EmbeddingIndex:
    directory = directory or resource_path(MODEL_DIR)
    try:
        meta = json.loads((directory / INDEX_META_FILE).read_text(encoding="utf-8"))
        with np.load(directory / INDEX_FILE, allow_pickle=False) as data:
            quantised, labels, weights = data["vectors"], data["labels"], data["weights"]
        classes = tuple(meta["classes"])
        probe_vectors = np.asarray(meta["probe_vectors"], dtype=np.float64)
        blend = meta["blend"]
        index = EmbeddingIndex(
            classes,
            _unit_rows(quantised.astype(np.float32) / float(meta["quantisation_scale"])),
            labels.astype(np.int64),
            weights.astype(np.float64),
            int(meta["k"]),
            float(meta["vote_temperature"]),
            str(meta["model_name"]),
            tuple(meta["probe_texts"]),
            probe_vectors,
            float(blend["text_scale"]),
            float(blend["vote_scale"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TextModelError(f"cannot read the embedding index in {directory}: {exc}") from exc
    if not (len(index.vectors) == len(index.labels) == len(index.weights)):
        raise TextModelError(f"{directory}: the embedding index's arrays differ in length")
    return index


def pack_index_texts(texts: list[str]) -> bytes:
    """The index rows' texts, one JSON string a line, gzipped with no date
    (the same texts give the same bytes)."""
    lines = "".join(json.dumps(text, ensure_ascii=False) + "\n" for text in texts)
    return gzip.compress(lines.encode("utf-8"), compresslevel=9, mtime=0)


def load_index_texts(rows: int, directory: Path | None = None) -> list[str]:
    """What each of the shipped index's `rows` rows embedded."""
    path = (directory or resource_path(MODEL_DIR)) / INDEX_TEXTS_FILE
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            texts = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError, EOFError) as exc:
        raise TextModelError(f"cannot read the embedding index's prompts in {path}: {exc}"
                             ) from exc
    if len(texts) != rows or not all(isinstance(t, str) for t in texts):
        raise TextModelError(f"{path}: {len(texts)} prompts for an index of {rows} rows")
    return texts


def _unit_rows(matrix: Float32Array) -> Float32Array:
    norms: Float32Array = np.linalg.norm(matrix, axis=1, keepdims=True)
    nonzero = np.clip(norms, 1e-12, None)
    return matrix / nonzero
