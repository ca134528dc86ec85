"""What kind of task a prompt is: simple, code, reasoning or embedding.

Explicit commands (/embed, /similar) decide by rule, and so do rules that are
near certain (a fence and a stack trace, several maths words in a short
prompt). Every other prompt goes to a linear model trained offline on a
labelled corpus (`learned.py`), whose features include the hand-written rules
(`rules.py`), so they still show as evidence. When the embedding role runs the
model the embedding index was built with (the demo's all-MiniLM-L6-v2), the
prompt's nearest labelled prompts vote too, blended with the text model.
Every result says which evidence it used.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np

from zeta_desktop.core.routing.follow_up import SURE_ALONE, blend, is_follow_up
from zeta_desktop.core.routing.learned import (
    EmbeddingIndex,
    TextModel,
    TextModelError,
    as_probabilities,
    embedding_text,
    load_embedding_index,
    load_text_model,
)
from zeta_desktop.core.routing.rules import (
    CHAT_KINDS,
    EMBED_COMMANDS,
    RULES,
    Classification,
    TaskKind,
    classify_by_rules,
    count_hits,
    explicit_command,
)

# The rules' names are part of this module's face: callers ask the classifier.
__all__ = [
    "CHAT_KINDS",
    "EMBED_COMMANDS",
    "RULES",
    "Classification",
    "EmbeddingVote",
    "TaskClassifier",
    "TaskKind",
    "classify_by_rules",
    "count_hits",
    "explicit_command",
    "shipped_embedding_index",
    "shipped_text_model",
]

log = logging.getLogger(__name__)


RECENT_CONTEXTS = 16  # prompts' kinds kept for the follow-ups after them


Embedder = Callable[[Sequence[str]], list[list[float]]]


class EmbeddingVote:
    """The embedding index's vote on a prompt: its nearest labelled prompts,
    in the embedding role's space (only for the model the index was built with)."""

    def __init__(self, index: EmbeddingIndex, embed: Embedder):
        self.index = index
        self._embed = embed

    def vector(self, prompt: str) -> np.ndarray:
        return np.asarray(self._embed([embedding_text(prompt)])[0], dtype=np.float64)


class _Shipped(enum.Enum):
    """TaskClassifier(text_model=...)'s default: the model in resources/ (an
    enum, so `is _SHIPPED` narrows the argument to a model or None)."""

    MODEL = enum.auto()


_SHIPPED: Final = _Shipped.MODEL


@functools.cache
def shipped_text_model() -> TextModel | None:
    """The trained model from resources/, loaded once; None (rules only) if unreadable."""
    try:
        return load_text_model()
    except TextModelError as exc:
        log.error("%s; classifying by rules only", exc)
        return None


@functools.cache
def shipped_embedding_index() -> EmbeddingIndex | None:
    """The embedding index from resources/, loaded once; None (text only) if unreadable."""
    try:
        return load_embedding_index()
    except TextModelError as exc:
        log.error("%s; classifying by text only", exc)
        return None


def _classification(probabilities: dict[str, float], evidence: tuple[str, ...]) -> Classification:
    """The most likely kind, with every kind's probability rounded for display."""
    kind = max(probabilities, key=probabilities.__getitem__)
    return Classification(TaskKind(kind), probabilities[kind], evidence,
                          {k: round(p, 4) for k, p in probabilities.items()})


class TaskClassifier:
    """Commands by rule; near-certain rules alone; otherwise the trained text
    model (the rules are among its features), blended with the embedding
    index's vote when the embedding role runs the index's model."""

    def __init__(
        self,
        embedding_vote: EmbeddingVote | None = None,
        text_model: TextModel | _Shipped | None = _SHIPPED,
    ):
        self.text_model: TextModel | None = (
            shipped_text_model() if text_model is _SHIPPED else text_model
        )
        # The last few prompts' kinds: a follow-up's earlier turn is usually
        # among them, so it is not classified (or embedded) a second time.
        self._recent: OrderedDict[tuple[str, bool], Classification] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._embedding_vote = embedding_vote

    @property
    def embedding_vote(self) -> EmbeddingVote | None:
        return self._embedding_vote

    @embedding_vote.setter
    def embedding_vote(self, vote: EmbeddingVote | None) -> None:
        with self._recent_lock:  # kinds read with another embedder no longer hold
            self._embedding_vote = vote
            self._recent.clear()

    def _by_text(self, prompt: str) -> tuple[Classification, np.ndarray | None]:
        by_rules = classify_by_rules(prompt)
        if self.text_model is None or by_rules.kind is TaskKind.EMBEDDING:
            return by_rules, None
        model = self.text_model
        if model.rules_certain is not None and by_rules.confidence >= model.rules_certain:
            return by_rules, None
        logits = model.logits(prompt)
        probabilities = as_probabilities(model.classes, logits / model.temperature)
        kind = max(probabilities, key=probabilities.__getitem__)
        words = model.top_features(prompt, kind)
        said = f"text model: {kind} {probabilities[kind]:.0%}"
        if words:
            said += f" (words: {', '.join(words)})"
        result = _classification(probabilities, (*by_rules.evidence, said))
        return result, logits

    def classify(self, prompt: str, use_embedding: bool = True,
                 context: Classification | str | None = None) -> Classification:
        """The prompt's kind. `context` is the user's turn before it, as that
        turn was classified (or its text): a short follow-up ("now in Rust",
        "why?") is read with it."""
        alone = self._remembered(prompt, use_embedding)
        if (not context or alone.kind is TaskKind.EMBEDDING or alone.confidence >= SURE_ALONE
                or not is_follow_up(prompt)):
            return alone
        before = (context if isinstance(context, Classification)
                  else self._remembered(context, use_embedding))
        if before.kind is TaskKind.EMBEDDING:
            return alone
        probabilities = blend(alone.scores, before.scores)
        kind = max(probabilities, key=probabilities.__getitem__)
        said = (f"follow-up: read with the turn before ({before.kind.value}): "
                f"{kind} {probabilities[kind]:.0%}")
        return _classification(probabilities, (*alone.evidence, said))

    def _remembered(self, prompt: str, use_embedding: bool) -> Classification:
        """The prompt read alone, from the last few if it is among them."""
        key = (prompt, use_embedding)
        with self._recent_lock:
            vote = self._embedding_vote
            found = self._recent.get(key)
            if found is not None:
                self._recent.move_to_end(key)
                return found
        found, lasting = self._classify_alone(prompt, vote if use_embedding else None)
        with self._recent_lock:
            # Not kept if the embedder failed, or was replaced while it read.
            if lasting and self._embedding_vote is vote:
                self._recent[key] = found
                while len(self._recent) > RECENT_CONTEXTS:
                    self._recent.popitem(last=False)
        return found

    def _classify_alone(self, prompt: str,
                        vote: EmbeddingVote | None) -> tuple[Classification, bool]:
        """The prompt's kind without context, and whether it may be kept."""
        by_text, logits = self._by_text(prompt)
        if vote is None or logits is None or self.text_model is None:
            return by_text, True
        try:
            vector = vote.vector(prompt)
        except Exception as exc:  # the embedder failing must not stop routing
            return Classification(
                by_text.kind,
                by_text.confidence,
                (*by_text.evidence, f"embedding vote unavailable ({exc})"),
                by_text.scores,
            ), False
        index = vote.index
        mixed = index.text_scale * logits + index.vote_scale * index.log_votes(vector)
        probabilities = as_probabilities(index.classes, mixed)
        kind = max(probabilities, key=probabilities.__getitem__)
        nearest_kind, similarity = index.nearest(vector)
        return _classification(probabilities, (
            *by_text.evidence,
            f"nearest labelled prompts: {nearest_kind} (similarity {similarity:.2f}); "
            f"with the text model: {kind} {probabilities[kind]:.0%}",
        )), True
