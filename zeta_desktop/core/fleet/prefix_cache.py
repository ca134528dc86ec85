"""What each endpoint's prompt cache holds, so a follow-up can go where it is read.

llama.cpp keeps the last prompt it read (and the answer it wrote) in its KV
cache; a next prompt that starts the same is read only from where it differs.
A server with several slots keeps one such prompt per slot. The worker keeps
a record of those prompts, message by message: for a local model what its
own thread fed the engine (exact: it is the only one that does), for a
server what was sent there (approximate: other clients share it). The router
asks, for a new request, how much of it each endpoint holds, and prices the
rest as reading.

A local model that keeps saved KV states (engines/kv_store.py) also holds
the conversations it left, as many as its store still has: the record then
counts that many earlier prompts as held too (the store evicts the least
recently used first, as the record drops its oldest).

Sizes are in the router's estimate (estimate_prompt_tokens: about four
characters a token), the unit its reading speed is measured in.

Thread-safe: every change publishes a new immutable tuple; readers take one.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from zeta_desktop.core.engines.base import ChatMessage

# A record also keeps a few prompts past its slots: a job withdrawn before it
# ran (stopped, rejected) leaves the cache as the one before it left it.
SPARE_ENTRIES = 4
MAX_SAVED_ENTRIES = 64  # prompts kept for saved states, whatever the store says
TEMPLATE_ESTIMATE_TOKENS = 4  # per message, as estimate_prompt_tokens counts it


@dataclass(frozen=True, slots=True)
class PromptKeys:
    """A prompt's messages as a record compares them: one key (role and
    text) and one length in characters each."""

    keys: tuple[int, ...]
    chars: tuple[int, ...]
    system: bool  # the first message is the system prompt

    @classmethod
    def of(cls, messages: Sequence[ChatMessage]) -> PromptKeys:
        return cls(
            tuple(hash((m.get("role", ""), m.get("content") or "")) for m in messages),
            tuple(len(m.get("content") or "") for m in messages),
            bool(messages) and messages[0].get("role") == "system",
        )

    def tokens(self, start: int = 0, end: int | None = None) -> int:
        """estimate_prompt_tokens of messages[start:end]."""
        chars = self.chars[start:end]
        return sum(chars) // 4 + TEMPLATE_ESTIMATE_TOKENS * len(chars)


NO_PROMPT = PromptKeys((), (), False)


@dataclass(frozen=True, slots=True)
class PromptReading:
    """How one endpoint would read a request: the part its cache holds, the
    prompt as it would read it (turns its fit drops are not read), and how
    fast it reads (seconds per estimated token; None: not measured yet)."""

    held_tokens: int
    prompt_tokens: int
    s_per_token: float | None = None

    @property
    def unread_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.held_tokens)


def held_part(held: PromptKeys, request: PromptKeys) -> tuple[int, int]:
    """(tokens of `request` that a cache holding `held` has, `request`'s size
    as read there). The held prompt may have lost old turns to its context
    fit: it then matches the request from its first kept turn on, and those
    dropped turns are not read (a step fit drops them again)."""
    total = request.tokens()
    if not held.keys or not request.keys:
        return 0, total
    head = 1 if held.system else 0
    if head and request.keys[0] != held.keys[0]:
        return 0, total  # another system prompt: the cache differs from the first token
    if head == len(held.keys):
        return request.tokens(0, head), total
    best = (request.tokens(0, head), total)
    for start in range(head, len(request.keys)):
        run = _run(held, request, head, start)
        if not run:
            continue
        if start > head and head + run < len(held.keys):
            # A match further on that does not run to the held prompt's end
            # is a coincidence (a short "why?" in two chats), not a fit's drop.
            continue
        held_tokens = request.tokens(0, head) + request.tokens(start, start + run)
        if held_tokens > best[0]:
            best = (held_tokens, total - request.tokens(head, start))
    return best


def _run(held: PromptKeys, request: PromptKeys, head: int, start: int) -> int:
    """How many messages from held[head] on equal those from request[start] on."""
    run = 0
    while (head + run < len(held.keys) and start + run < len(request.keys)
           and held.keys[head + run] == request.keys[start + run]):
        run += 1
    return run


@dataclass(frozen=True, slots=True)
class _Entry:
    ticket: int
    prompt: PromptKeys
    exact_tokens: int  # a local model's cache length in its own tokens; 0: not known


class PrefixRecord:
    """The prompts one endpoint's cache holds, newest first: one per slot.

    `expect` at submit (once the job runs, its prompt is what the cache
    holds), `hold` when it ends (its prompt as fitted, with the answer),
    `withdraw` when it never ran. A later job's expectation stays in front
    of an earlier job that ends after it was queued.
    """

    def __init__(self, slots: int = 1) -> None:
        self._slots = max(1, slots)
        self._saved = 0  # earlier prompts the engine keeps as saved states
        self._entries: tuple[_Entry, ...] = ()
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()

    def set_slots(self, slots: int) -> None:
        self._slots = max(1, slots)

    def set_saved(self, states: int) -> None:
        """The engine keeps `states` saved KV states of prompts it left."""
        self._saved = max(0, min(states, MAX_SAVED_ENTRIES))

    @property
    def _kept(self) -> int:
        saved_room = MAX_SAVED_ENTRIES if self._saved else 0
        return self._slots + SPARE_ENTRIES + saved_room

    def expect(self, prompt: PromptKeys) -> int:
        """A job was queued with `prompt`; returns its ticket."""
        with self._lock:
            ticket = next(self._tickets)
            entry = _Entry(ticket, prompt, 0)
            self._entries = (entry, *self._entries)[: self._kept]
            return ticket

    def hold(self, ticket: int, prompt: PromptKeys, exact_tokens: int = 0) -> None:
        """The job with `ticket` ended: the cache holds `prompt`."""
        with self._lock:
            self._entries = tuple(
                _Entry(ticket, prompt, exact_tokens) if e.ticket == ticket else e
                for e in self._entries)

    def withdraw(self, ticket: int) -> None:
        """The job with `ticket` never ran: the cache is as the one before left it."""
        with self._lock:
            self._entries = tuple(e for e in self._entries if e.ticket != ticket)

    def forget(self) -> None:
        """The cache was emptied (the model unloaded)."""
        with self._lock:
            self._entries = ()

    @property
    def exact_tokens(self) -> int:
        """A local model's cache length in its own tokens, once a job ended (0: unknown)."""
        entries = self._entries
        return entries[0].exact_tokens if entries else 0

    def held(self, request: PromptKeys) -> tuple[int, int]:
        """(held tokens, the request's size as read here): the best of the
        prompts the slots hold, and the saved states."""
        entries = self._entries[: self._slots + self._saved]
        best = (0, request.tokens())
        for entry in entries:
            part = held_part(entry.prompt, request)
            if part[0] > best[0]:
                best = part
        return best
