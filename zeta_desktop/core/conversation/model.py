"""Conversations as trees of messages.

Every message names its parent, so an edited prompt or a regenerated answer
is a sibling of the one it replaces, not an overwrite: the old branch stays
and the user pages between them (◀ 2/2 ▶). What the window shows is the path
from the root to the conversation's current leaf.

Worker threads append to a streaming answer while the GUI thread reads it, so
structural changes (adding a message, choosing a branch) take the tree's lock;
a message's `content` is replaced whole (one reference assignment).
"""

from __future__ import annotations

import enum
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
TITLE_CHARS = 60


class MessageStatus(enum.StrEnum):
    DONE = "done"  # a prompt, or an answer that ended on its own
    PENDING = "pending"  # an answer routed or queued, no token yet
    STREAMING = "streaming"
    STOPPED = "stopped"  # the user pressed Stop; what came is kept
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the app ended (crash, kill) before the answer did

    @property
    def unfinished(self) -> bool:
        return self in (MessageStatus.PENDING, MessageStatus.STREAMING)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class AnswerMeta:
    """What is kept with an answer: who served it, why, and how fast."""

    role: str = ""
    model_file: str = ""
    kind: str = ""
    reason: str = ""
    runner_up: str = ""
    policy: str = ""
    decision_text: str = ""  # the whole decision, as the badge shows it
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    answer_tokens: int | None = None  # every generated token, thinking included
    thinking_tokens: int | None = None
    thinking_s: float | None = None  # from the start to the end of the thinking
    error: str = ""
    retries: list[str] = field(default_factory=list)  # "role: why it failed"
    # Asked against documents: the passages the model was given, as
    # grounding.Source dicts (a citation [n] opens number n), and how it went.
    sources: list[dict[str, Any]] = field(default_factory=list)
    grounding: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", [])}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AnswerMeta:
        if not isinstance(data, dict):
            return cls()
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(eq=False)
class Message:
    id: str
    conversation_id: str
    parent_id: str | None
    author: str  # "user" or "assistant"
    content: str
    status: MessageStatus = MessageStatus.DONE
    created_at: float = field(default_factory=time.time)
    meta: AnswerMeta = field(default_factory=AnswerMeta)

    @property
    def is_answer(self) -> bool:
        return self.author == "assistant"


@dataclass
class ConversationInfo:
    """A conversation as the sidebar lists it."""

    id: str
    title: str
    created_at: float
    updated_at: float
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    leaf_id: str | None = None  # the tip of the branch shown


def title_from(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


class Conversation:
    """One conversation's messages, as a tree, with the branch being shown."""

    def __init__(self, info: ConversationInfo, messages: Iterable[Message] = ()) -> None:
        self.info = info
        # The document collections its prompts are asked against (ids).
        self.collections: tuple[str, ...] = ()
        self._lock = threading.RLock()
        self._messages: dict[str, Message] = {}
        self._children: dict[str | None, list[str]] = {}
        for message in sorted(messages, key=lambda m: m.created_at):
            self._insert(message)
        if info.leaf_id not in self._messages:
            info.leaf_id = self._latest_leaf(None)

    @classmethod
    def new(cls, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> Conversation:
        now = time.time()
        return cls(ConversationInfo(new_id(), "New chat", now, now, system_prompt))

    @property
    def id(self) -> str:
        return self.info.id

    def _insert(self, message: Message) -> None:
        self._messages[message.id] = message
        self._children.setdefault(message.parent_id, []).append(message.id)

    def _latest_leaf(self, start: str | None) -> str | None:
        node = start
        while self._children.get(node):
            node = self._children[node][-1]
        return node

    def __len__(self) -> int:
        return len(self._messages)

    def get(self, message_id: str) -> Message | None:
        return self._messages.get(message_id)

    def all_messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages.values())

    def add(self, parent_id: str | None, author: str, content: str,
            status: MessageStatus = MessageStatus.DONE) -> Message:
        """A new message under `parent_id`; it becomes the branch shown."""
        with self._lock:
            if parent_id is not None and parent_id not in self._messages:
                raise KeyError(f"no message {parent_id} in conversation {self.id}")
            message = Message(new_id(), self.id, parent_id, author, content, status)
            # Created after every sibling even if the clock steps back.
            siblings = self._children.get(parent_id, [])
            if siblings:
                newest = self._messages[siblings[-1]].created_at
                message.created_at = max(message.created_at, newest + 1e-6)
            self._insert(message)
            self.info.leaf_id = message.id
            self.info.updated_at = message.created_at
            if author == "user" and parent_id is None and self.info.title == "New chat":
                self.info.title = title_from(content)
            return message

    def path(self, leaf_id: str | None = None) -> list[Message]:
        """Root to `leaf_id` (default: the branch shown)."""
        with self._lock:
            node = self.info.leaf_id if leaf_id is None else leaf_id
            path = []
            while node is not None:
                message = self._messages[node]
                path.append(message)
                node = message.parent_id
            return path[::-1]

    def visible(self) -> list[Message]:
        return self.path()

    def siblings(self, message_id: str) -> list[str]:
        """Ids of the message and its alternatives (same parent), oldest first."""
        with self._lock:
            return list(self._children.get(self._messages[message_id].parent_id, []))

    def select(self, message_id: str) -> None:
        """Show the branch through `message_id`, down to its newest leaf."""
        with self._lock:
            if message_id not in self._messages:
                raise KeyError(message_id)
            self.info.leaf_id = self._latest_leaf(message_id)

    def history_for(self, answer_id: str) -> list[dict[str, str]]:
        """The chat messages a model sees for the answer `answer_id`: system, then the path.

        Only finished chat exchanges count as history: a failed or empty
        answer, or the output of an /embed command, would teach the model
        nothing.
        """
        path = self.path(answer_id)[:-1]
        messages = [{"role": "system", "content": self.info.system_prompt}]
        for message in path:
            if message.is_answer and (
                message.status not in (MessageStatus.DONE, MessageStatus.STOPPED)
                or not message.content
                or message.meta.kind == "embedding"  # a command's output, not a reply
            ):
                # Drop the prompt this answer replied to, too: no orphan turns.
                if messages and messages[-1]["role"] == "user" and len(messages) > 1:
                    messages.pop()
                continue
            messages.append({"role": message.author, "content": message.content})
        # Two prompts in a row (an answer dropped above): keep the newest.
        deduped: list[dict[str, str]] = []
        for item in messages:
            if deduped and item["role"] == "user" and deduped[-1]["role"] == "user":
                deduped[-1] = item
            else:
                deduped.append(item)
        return deduped
