"""One request's turn, heard on the server's event loop.

The session publishes a turn's events on its worker and dispatcher threads;
`TurnStream.feed` hands each to the loop with `call_soon_threadsafe`, where
the request's handler reads them in order. The turn's routing (kind, role,
reason) is kept as it comes, for the response's headers and `zeta` field.
"""

from __future__ import annotations

import asyncio
import contextlib
import unicodedata
from dataclasses import dataclass, field

from zeta_desktop.core.chat.api import (
    AnswerText,
    TurnEnded,
    TurnEvent,
    TurnRetried,
    TurnRouted,
    TurnStarted,
)


@dataclass
class Routing:
    role: str = ""
    endpoint: str = ""  # the replica that answered (`coder`, `coder#2`)
    kind: str = ""
    reason: str = ""
    policy: str = ""
    retries: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"x-zeta-role": _header(self.role), "x-zeta-kind": _header(self.kind),
                "x-zeta-reason": _header(self.reason)}

    def as_field(self) -> dict[str, object]:
        return {"role": self.role, "endpoint": self.endpoint, "kind": self.kind,
                "reason": self.reason, "policy": self.policy, "retries": list(self.retries)}


def _header(text: str) -> str:
    """HTTP header values are Latin-1 on one line: the reason's arrows and
    dashes as ASCII, anything else dropped."""
    text = text.replace("→", "->").replace("—", "-").replace("–", "-").replace("≥", ">=")
    text = unicodedata.normalize("NFKD", " ".join(text.split()))
    return text.encode("ascii", "ignore").decode("ascii")[:512]


class TurnStream:
    """Created on the loop; `feed` is called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: asyncio.Queue[TurnEvent] = asyncio.Queue()
        self.routing = Routing()
        self.turn_id = 0

    def feed(self, event: TurnEvent) -> None:
        if self._loop.is_closed():  # the server stopped; its handler stopped the turn
            return
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)

    async def next(self) -> TurnEvent:
        """The turn's next event, with its routing noted."""
        return self._noted(await self._events.get())

    def ready(self) -> TurnEvent | None:
        """The next event if one is already waiting (noted), else None."""
        try:
            return self._noted(self._events.get_nowait())
        except asyncio.QueueEmpty:
            return None

    def _noted(self, event: TurnEvent) -> TurnEvent:
        routing = self.routing
        match event:
            case TurnRouted(decision=decision):
                routing.role, routing.kind = decision.role, decision.kind.value
                routing.endpoint = decision.target
                routing.reason, routing.policy = decision.reason, decision.policy
            case TurnStarted(role=endpoint):
                routing.endpoint = endpoint
            case TurnRetried(failed_role=failed, message=message):
                routing.retries.append(f"{failed}: {message}")
        return event

    async def first_text_or_end(self) -> AnswerText | TurnEnded:
        """Wait for the answer's first words, or its end (a failure before any)."""
        while True:
            event = await self.next()
            if isinstance(event, AnswerText | TurnEnded):
                return event
