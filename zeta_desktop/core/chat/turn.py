"""A turn: one prompt's job state, from routing to its end.

Job state only: where the prompt went and how it is going. The words live
in the conversation model; what each part of the runner does with a turn
lives in that part (dispatch, grounding, retries, the watchdog).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from zeta_desktop.core.documents.grounding import Source
from zeta_desktop.core.documents.index_db import StoredChunk
from zeta_desktop.core.engines.base import ChatMessage
from zeta_desktop.core.fleet.worker import ChatJob, ChatStats
from zeta_desktop.core.routing.classifier import Classification
from zeta_desktop.core.routing.router import Decision


class TurnStatus(enum.StrEnum):
    ROUTING = "routing"
    QUEUED = "queued"
    STREAMING = "streaming"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (TurnStatus.ROUTING, TurnStatus.QUEUED, TurnStatus.STREAMING)


@dataclass(frozen=True)
class AnswerOptions:
    """A client's own settings for one answer (the OpenAI API's fields);
    None or empty: the role's settings."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    raw: bool = False  # a raw completion: the prompt's text as given, no chat template


@dataclass(eq=False)
class Turn:
    # What was asked, and where its answer goes.
    turn_id: int
    prompt: str
    history: Callable[[], list[ChatMessage]]  # what the model sees, built when submitted
    forced_role: str | None = None
    learned_from: bool = False  # the user's choice of role was taught to the router
    conversation_id: str = ""
    answer_id: str = ""  # the answer message in the conversation model
    saved: Future[Any] | None = None  # the prompt's write to disk
    created_at: float = 0.0  # monotonic, when it was queued
    # Who asked: "" for the window, else an API client ("api: curl/8.5"). A
    # client's prompt is text only: no commands, no documents, nothing learned.
    client: str = ""
    options: AnswerOptions = field(default_factory=AnswerOptions)
    # Where the router sent it, and how this attempt goes.
    role: str = ""
    reason: str = ""
    classification: Classification | None = None
    decision: Decision | None = None
    status: TurnStatus = TurnStatus.ROUTING
    answer: str = ""  # this attempt's text (a retry starts it over)
    error: str = ""
    stats: ChatStats | None = None
    job: ChatJob | None = field(default=None, repr=False)
    cancelled: bool = False
    job_started_at: float | None = None  # monotonic, when the worker took this attempt
    last_token_at: float | None = None
    # The attempts that failed: (endpoint, why), and what each had said.
    attempts: list[tuple[str, str]] = field(default_factory=list)
    partials: dict[int, str] = field(default_factory=dict)  # attempt index -> its partial answer
    transient_waits: int = 0  # times a busy server made it wait or move
    round_start: int = 0  # attempts before this round of retries (a recovery wait starts one)
    # Asked against document collections: the passages found (once, before
    # the first attempt), those the chosen model was given, and what happened.
    collections: tuple[str, ...] = ()
    passages: list[StoredChunk] | None = None
    sources: list[Source] = field(default_factory=list)
    grounding_note: str = ""
    too_long: bool = False  # failed: no model's context holds the prompt

    @property
    def from_client(self) -> bool:
        return bool(self.client)

    @property
    def retried(self) -> bool:
        return bool(self.attempts)

    def tried(self, since_round: bool = False) -> frozenset[str]:
        """The endpoints that failed it (in this round of retries only, if asked)."""
        attempts = self.attempts[self.round_start:] if since_round else self.attempts
        return frozenset(endpoint for endpoint, _ in attempts)

    def back_to_routing(self) -> None:
        """A new attempt starts over: no answer, no job (call under the ledger's lock)."""
        self.answer, self.job, self.status = "", None, TurnStatus.ROUTING
        self.job_started_at = self.last_token_at = None
