"""Which llama-server slot holds which conversation, so a follow-up goes back to it.

llama-server keeps one prompt per slot in its KV cache. A request sent with
`id_slot` runs on that slot; a follow-up sent to the slot that read its
conversation reads only the new turn. The engine picks the slot itself for
every request (the OpenAI-compatible stream does not say which slot served
it): the free slot whose held prompt shares the most with the request, else
the one used longest ago, so that a new conversation evicts the oldest.

"Free" counts this client's own requests only; other clients of the same
server are not seen (the router's load signals cover those).

Thread-safe: the remote engine streams one request per worker thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from zeta_desktop.core.engines.base import ChatMessage


@dataclass(frozen=True, slots=True)
class _Held:
    keys: tuple[int, ...]  # one per message: hash of role and text
    chars: tuple[int, ...]


_NOTHING = _Held((), ())


def _held_of(messages: Sequence[ChatMessage]) -> _Held:
    return _Held(tuple(hash((m.get("role", ""), m.get("content") or "")) for m in messages),
                 tuple(len(m.get("content") or "") + 1 for m in messages))


def _first_turn(messages: Sequence[ChatMessage]) -> int:
    """How many messages a match must cover to be this conversation, not just
    the same system prompt: up to and including the first non-system one."""
    for index, message in enumerate(messages):
        if message.get("role") != "system":
            return index + 1
    return len(messages)


def _shared_chars(held: _Held, request: _Held, needed: int) -> int:
    run = 0
    while run < len(held.keys) and run < len(request.keys) and held.keys[run] == request.keys[run]:
        run += 1
    return sum(request.chars[:run]) if run >= needed else 0


class SlotPins:
    """One record per slot: the prompt it holds and when it was last used."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._held: dict[int, _Held] = {}
        self._used: dict[int, int] = {}  # slot -> tick of its last request
        self._busy: set[int] = set()
        self._ticks = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def slots(self) -> int:
        return self._slots

    def resize(self, slots: int) -> None:
        with self._lock:
            self._slots = slots
            for slot in [s for s in self._held if s >= slots]:
                del self._held[slot]

    def take(self, messages: Sequence[ChatMessage]) -> int | None:
        """The slot this request should run on (now marked busy), or None when
        every slot is busy with this client's own requests."""
        request = _held_of(messages)
        needed = _first_turn(messages)
        with self._lock:
            free = [s for s in range(self._slots) if s not in self._busy]
            if not free:
                return None
            # Most shared text first; among equals, the one used longest ago.
            slot = max(free, key=lambda s: (
                _shared_chars(self._held.get(s, _NOTHING), request, needed),
                -self._used.get(s, 0)))
            self._busy.add(slot)
            self._used[slot] = next(self._ticks)
            return slot

    def release(self, slot: int, held: Sequence[ChatMessage] | None) -> None:
        """The request on `slot` ended; its cache now holds `held` (None: unknown)."""
        with self._lock:
            self._busy.discard(slot)
            if held is None or slot >= self._slots:
                self._held.pop(slot, None)
            else:
                self._held[slot] = _held_of(held)

    def holder_of(self, messages: Sequence[ChatMessage]) -> int | None:
        """The slot holding this conversation, if one does (busy or not)."""
        request = _held_of(messages)
        needed = _first_turn(messages)
        with self._lock:
            scored = [(_shared_chars(h, request, needed), s) for s, h in self._held.items()]
        best = max(scored, default=(0, None))
        return best[1] if best[0] else None
