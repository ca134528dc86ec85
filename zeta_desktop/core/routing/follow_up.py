"""A follow-up is read with the turn before it.

"now in Rust", "shorter please" or "why?" say little of their own kind: they
carry on the task the user asked for a turn ago. Such a prompt's kind is the
earlier prompt's kind, weighed against its own words; a short prompt that is
a new question ("What is the capital of Peru?") is read alone.
"""

from __future__ import annotations

import re

# Words that point back at the last answer, or ask to redo it another way.
_POINTS_BACK = re.compile(
    r"^\s*(now|and|also|but|then|so|ok(ay)?|again|instead|why|how come|what about|"
    r"same|make it|do it|do that|try|redo|shorter|longer|simpler|more|less|continue|"
    r"go on|keep going|explain|elaborate|expand|in (a |an )?\w+( please)?\s*[.!?]*\s*$)\b"
    r"|\b(it|this|that|these|those|them|above|previous|again|instead|one more|another)\b",
    re.IGNORECASE,
)
FOLLOW_UP_WORDS = 12  # longer than this, a prompt says what it wants on its own
OWN_WEIGHT = 0.35  # how much a follow-up's own words count against the turn before


def is_follow_up(prompt: str) -> bool:
    words = prompt.split()
    return 0 < len(words) <= FOLLOW_UP_WORDS and bool(_POINTS_BACK.search(prompt))


def blend(own: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """The follow-up's probabilities, mostly the earlier turn's."""
    kinds = set(own) | set(before)
    return {
        kind: OWN_WEIGHT * own.get(kind, 0.0) + (1.0 - OWN_WEIGHT) * before.get(kind, 0.0)
        for kind in kinds
    }
