"""What kind of task a prompt is: simple, code, reasoning or embedding.

Explicit commands (/embed, /similar) decide by rule, and so do rules that are
near certain (a fence and a stack trace, several maths words in a short
prompt). Every other prompt goes to a linear model trained offline on a
labelled corpus (`learned.py`), whose features include the hand-written rules
below, so they still show as evidence. When the embedding role runs the
model the embedding index was built with (the demo's all-MiniLM-L6-v2), the
prompt's nearest labelled prompts vote too, blended with the text model.
Every result says which evidence it used.
"""

from __future__ import annotations

import enum
import functools
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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

log = logging.getLogger(__name__)


class TaskKind(enum.StrEnum):  # str-based: cheap to hash on the routing hot path
    SIMPLE = "simple"
    CODE = "code"
    REASONING = "reasoning"
    EMBEDDING = "embedding"


CHAT_KINDS = (TaskKind.SIMPLE, TaskKind.CODE, TaskKind.REASONING)
EMBED_COMMANDS = ("/embed", "/similar")


@dataclass(frozen=True)
class Classification:
    kind: TaskKind
    confidence: float
    evidence: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)  # probability per kind


@dataclass(frozen=True)
class _Rule:
    kind: TaskKind
    weight: float
    pattern: re.Pattern[str]
    label: str
    max_hits: int = 1  # a rule counts at most this many matches


def _rule(kind: TaskKind, weight: float, pattern: str, label: str, max_hits: int = 1) -> _Rule:
    return _Rule(kind, weight, re.compile(pattern, re.IGNORECASE | re.MULTILINE), label, max_hits)


_CODE, _REASON, _SIMPLE = TaskKind.CODE, TaskKind.REASONING, TaskKind.SIMPLE

RULES: tuple[_Rule, ...] = (
    _rule(_CODE, 3.0, r"```", "code fence"),
    _rule(
        _CODE,
        3.0,
        r"Traceback \(most recent call last\)|^\s+at [\w.$]+\(.*:\d+\)|panicked at|"
        r"error\[E\d{4}\]|Segmentation fault|\b\w+(Error|Exception): |undefined reference to|"
        r"npm ERR!|cannot find symbol",
        "stack trace or compiler error",
    ),
    _rule(
        _CODE,
        1.2,
        r"^\s*(def|class|import|from \S+ import|#include|fn|func|function|const|let|var|"
        r"public|private|SELECT|INSERT|UPDATE|CREATE TABLE|package|using [\w.]+;|struct|impl|"
        r"for \w+ in|while .*:|if .*:$|print\()",
        "code keyword at line start",
        max_hits=3,
    ),
    _rule(
        _CODE,
        1.5,
        r"\b[\w-]+\.(py|js|jsx|ts|tsx|rs|go|java|kt|c|cc|cpp|h|hpp|cs|rb|php|sh|bash|sql|"
        r"ya?ml|toml|json|swift|scala|lua|r|ipynb|dockerfile|gradle|cmake)\b|\bMakefile\b|"
        r"\bDockerfile\b|\bCMakeLists\.txt\b",
        "file name",
    ),
    _rule(
        _CODE,
        1.4,
        r"\b(python|javascript|typescript|rust|golang|java|c\+\+|c#|kotlin|swift|ruby|php|bash|"
        r"shell script|sql|regex|regexp|html|css|react|django|flask|numpy|pandas|pytorch|"
        r"docker|kubernetes|git|api|json|yaml|compile[rs]?|debug|refactor|unit tests?|"
        r"function|method|variable|class|bug|stack ?trace|segfault|linter|async|endpoint|"
        r"script|code|snippet|implement|algorithm|recursion|array|pointer|library|framework|"
        r"loop|linked list|hash ?map|dictionary|list comprehension|goroutine|channel|thread|"
        r"mutex|query|database|schema|exception|null|string|integer|type hints?|interface|"
        r"compiler|runtime|dependency|package manager|pip|npm|cargo|build)\b|"
        r"\b(in|using|with) (C|Go|R|C\+\+)\b",
        "programming word",
        max_hits=3,
    ),
    _rule(
        _CODE,
        1.0,
        r"[{};]\s*$|=>|->|::|\w+\([^)]*\)\s*[:{]|!=|==|\+=|-=|&&|\|\||\w\[['\"\w]+\]|"
        r"\w+\(\)|= \[\]|= \{\}",
        "code syntax",
        max_hits=2,
    ),
    _rule(
        _REASON,
        1.6,
        r"\b(prove|proof|theorem|lemma|derive|derivation|integral|derivative|probability|"
        r"equation|solve for|calculate|compute the|how many|expected value|induction|"
        r"contradiction|logic puzzle|riddle|paradox|optimi[sz]e|estimate|statistically|"
        r"irrational|formula|sum of|square root|show that|expected|odds|catch up|"
        r"how much will|interest rate|annual return)\b",
        "maths or logic word",
        max_hits=3,
    ),
    _rule(
        _REASON,
        1.5,
        r"\b(why|explain why|step by step|reason(ing)? through|think through|trade-?offs?|"
        r"compare|pros and cons|implications?|analy[sz]e|evaluate|justify|what would happen|"
        r"should (i|we)|argue|critique|strategy|plan for|cause of|consequences)\b",
        "analysis word",
        max_hits=3,
    ),
    _rule(
        _REASON,
        1.0,
        r"\$\d|\d+(\.\d+)?\s*%|\d+\s*(km/h|mph|km|miles|years|months|hours|coins|people)\b",
        "quantities in a word problem",
        max_hits=2,
    ),
    _rule(
        _REASON,
        1.5,
        r"[∫∑√∞≤≥≠±π]|\b\d+\s*[\^*/]\s*\d+|\bx\^2\b|\bf\(x\)|\bO\(n",
        "maths notation",
        max_hits=2,
    ),
    _rule(
        _SIMPLE,
        1.2,
        r"^\s*(hi|hello|hey|thanks|thank you|good (morning|evening)|what is|what's|who is|"
        r"when (is|was|did)|where is|define|translate|summari[sz]e|rewrite|rephrase|"
        r"give me|list|name|tell me a joke|suggest)\b",
        "everyday request",
    ),
)

SHORT_PROMPT_CHARS = 80
RECENT_CONTEXTS = 16  # prompts' kinds kept for the follow-ups after them


def _softmax(scores: dict[TaskKind, float], temperature: float = 1.0) -> dict[TaskKind, float]:
    top = max(scores.values())
    exps = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


def count_hits(rule: _Rule, prompt: str) -> int:
    """Matches of one rule, up to its `max_hits`."""
    hits = 0
    for _match in rule.pattern.finditer(prompt):
        hits += 1
        if hits >= rule.max_hits:
            break
    return hits


def explicit_command(prompt: str) -> str | None:
    stripped = prompt.lstrip()
    for command in EMBED_COMMANDS:
        if stripped == command or stripped.startswith(command + " "):
            return command
    return None


def classify_by_rules(prompt: str) -> Classification:
    command = explicit_command(prompt)
    if command is not None:
        return Classification(
            TaskKind.EMBEDDING, 1.0, (f"command {command}",), {TaskKind.EMBEDDING.value: 1.0}
        )
    scores = {kind: 0.0 for kind in CHAT_KINDS}
    scores[TaskKind.SIMPLE] = 0.8  # the prior: most prompts are everyday ones
    evidence: list[str] = []
    for rule in RULES:
        hits = count_hits(rule, prompt)
        if hits:
            scores[rule.kind] += rule.weight * hits
            evidence.append(f"{rule.label}{f' x{hits}' if hits > 1 else ''} (+{rule.kind.value})")
    # Length says nothing of the kind (a long story is simple), except that a
    # very short ask is most often everyday chat.
    if len(prompt) < SHORT_PROMPT_CHARS:
        scores[TaskKind.SIMPLE] += 0.5
        evidence.append("short prompt (+simple)")
    probabilities = _softmax(scores)
    kind = max(probabilities, key=probabilities.__getitem__)
    return Classification(
        kind,
        probabilities[kind],
        tuple(evidence) or ("no rule matched",),
        {k.value: round(p, 4) for k, p in probabilities.items()},
    )


Embedder = Callable[[Sequence[str]], list[list[float]]]


class EmbeddingVote:
    """The embedding index's vote on a prompt: its nearest labelled prompts,
    in the embedding role's space (only for the model the index was built with)."""

    def __init__(self, index: EmbeddingIndex, embed: Embedder):
        self.index = index
        self._embed = embed

    def vector(self, prompt: str) -> np.ndarray:
        return np.asarray(self._embed([embedding_text(prompt)])[0], dtype=np.float64)


_SHIPPED = object()  # TaskClassifier(text_model=...) default: the model in resources/


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
        text_model: TextModel | object | None = _SHIPPED,
    ):
        self.text_model: TextModel | None = (
            shipped_text_model() if text_model is _SHIPPED else text_model  # type: ignore[assignment]
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
