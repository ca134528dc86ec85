"""A role the user chose: the turn goes there, and the router learns from it.

An override (a role picked for a prompt, a regenerate on a role) teaches the
router when it would have picked another role, once per turn; the moves the
app makes itself (retries, failing over) teach nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from zeta_desktop.core.chat.turn import Turn
from zeta_desktop.core.engines.base import NoRoleAvailableError
from zeta_desktop.core.routing.classifier import Classification
from zeta_desktop.core.routing.router import Decision, ZetaDynamicRouter


class OverrideLearner:
    def __init__(self, router: ZetaDynamicRouter,
                 on_learned: Callable[[], None] | None = None) -> None:
        self._router = router
        self._on_learned = on_learned  # the router learned from a choice: save it

    def decide(self, turn: Turn, role: str, endpoint: str, classification: Classification,
               exclude: frozenset[str]) -> Decision:
        """The turn goes to the role the user chose, on `endpoint` (one of its replicas)."""
        if not turn.attempts and not turn.learned_from and not turn.from_client:
            # A client naming a model says nothing of what the user prefers.
            self._learn(turn, classification, role, exclude)
        kind = classification.kind
        return Decision(
            role=role,
            kind=kind,
            policy="override",
            reason=f"{kind.value} -> {role}: "
                   + ("named by the request" if turn.from_client else "chosen by you"),
            runner_up=None,
            spilled=False,
            preferred=role,
            classification=classification,
            endpoint=endpoint,
        )

    def _learn(self, turn: Turn, classification: Classification, role: str,
               exclude: frozenset[str]) -> None:
        turn.learned_from = True
        try:
            routed = self._router.route(classification.kind, exclude=exclude, commit=False).role
        except NoRoleAvailableError:
            return
        if self._router.learn_choice(classification.kind, role, routed) and self._on_learned:
            self._on_learned()
