"""A follow-up is read with the turn before it.

"now in Rust", "shorter please" or "why?" say little of their own kind: they
carry on the task the user asked for a turn ago. Such a prompt's kind is the
earlier prompt's kind, weighed against its own words; a short prompt that is
a new question ("What is the capital of Peru?") is read alone.
"""

from __future__ import annotations

import re

# A prompt that opens by carrying on ("now in Rust", "shorter please"), or a
# very short one that points back ("why?", "explain that"). A pronoun or a
# "why" inside an ordinary question ("Why is the sky blue?") does not count.
_CARRIES_ON = re.compile(
    r"^\s*(now|and|also|but|then|ok(ay)?|instead|what about|same|make it|do it|do that|"
    r"redo|shorter|longer|simpler|continue|go on|keep going|"
    r"in (a |an )?\w+( please)?\s*[.!?]*\s*$)\b",
    re.IGNORECASE,
)
_POINTS_BACK = re.compile(
    r"\b(why|how come|explain|elaborate|more|again|it|this|that|these|those|them|"
    r"another|one more)\b",
    re.IGNORECASE,
)
FOLLOW_UP_WORDS = 12  # longer than this, a prompt says what it wants on its own
SHORT_WORDS = 3  # this short, a word that points back makes it a follow-up
OWN_WEIGHT = 0.35  # how much a follow-up's own words count against the turn before
SURE_ALONE = 0.8  # a follow-up this sure of its own kind is read alone


def is_follow_up(prompt: str) -> bool:
    words = prompt.split()
    if not 0 < len(words) <= FOLLOW_UP_WORDS:
        return False
    return bool(_CARRIES_ON.search(prompt)) or (
        len(words) <= SHORT_WORDS and bool(_POINTS_BACK.search(prompt)))


def blend(own: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """The follow-up's probabilities, mostly the earlier turn's."""
    kinds = set(own) | set(before)
    return {
        kind: OWN_WEIGHT * own.get(kind, 0.0) + (1.0 - OWN_WEIGHT) * before.get(kind, 0.0)
        for kind in kinds
    }
