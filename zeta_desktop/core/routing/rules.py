"""The hand-written rules: near-certain signs of a task's kind.

They classify alone when the trained text model is missing, and the text model
(`learned.py`) counts their hits as features, so they still show as evidence.
This module sits below both, so neither imports the other.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field


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
class Rule:
    kind: TaskKind
    weight: float
    pattern: re.Pattern[str]
    label: str
    max_hits: int = 1  # a rule counts at most this many matches


def _rule(kind: TaskKind, weight: float, pattern: str, label: str, max_hits: int = 1) -> Rule:
    return Rule(kind, weight, re.compile(pattern, re.IGNORECASE | re.MULTILINE), label, max_hits)


_CODE, _REASON, _SIMPLE = TaskKind.CODE, TaskKind.REASONING, TaskKind.SIMPLE

RULES: tuple[Rule, ...] = (
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


def _softmax(scores: dict[TaskKind, float], temperature: float = 1.0) -> dict[TaskKind, float]:
    top = max(scores.values())
    exps = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


def count_hits(rule: Rule, prompt: str) -> int:
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
