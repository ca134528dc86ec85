"""Export a conversation to Markdown or JSON, and import the JSON back.

The JSON keeps the whole tree (every branch, each answer's metadata) so an
import is the conversation as it was. An import gets fresh ids, so the same
file imported twice gives two conversations and never collides. A malformed
file raises `ConversationFormatError` with what is wrong and where, before
anything is written.
"""

from __future__ import annotations

import json
import time
from typing import Any

from zeta_desktop.core.conversation.model import (
    AnswerMeta,
    Conversation,
    ConversationInfo,
    Message,
    MessageStatus,
    new_id,
)
from zeta_desktop.core.engines.thinking import split_thinking

FORMAT = "zeta-desktop.conversation"
FORMAT_VERSION = 1
MAX_IMPORT_BYTES = 64 * 1024 * 1024


class ConversationFormatError(ValueError):
    """The file is not a conversation this app can import; the message says why."""


def to_markdown(conversation: Conversation) -> str:
    """The branch shown, as a readable Markdown document."""
    info = conversation.info
    lines = [f"# {info.title}", ""]
    if info.system_prompt:
        lines += [f"> System prompt: {info.system_prompt}", ""]
    for message in conversation.visible():
        if message.is_answer:
            meta = message.meta
            who = meta.role or "assistant"
            details = ", ".join(x for x in (meta.model_file, meta.kind) if x)
            heading = f"## {who}" + (f" ({details})" if details else "")
            if message.status is not MessageStatus.DONE:
                heading += f" · {message.status.value}"
        else:
            heading = "## You"
        lines += [heading, "", _readable(message), ""]
    return "\n".join(lines).rstrip() + "\n"


def _readable(message: Message) -> str:
    """An answer's thinking folds away in Markdown viewers; its answer follows."""
    thinking, answer = split_thinking(message.content) if message.is_answer else (None, "")
    if thinking is None:
        return message.content
    took = message.meta.thinking_s
    summary = f"Thought for {took:.0f} s" if took is not None and thinking.done else "Thinking"
    return f"<details><summary>{summary}</summary>\n\n{thinking.text}\n\n</details>\n\n{answer}"


def to_json(conversation: Conversation) -> dict[str, Any]:
    info = conversation.info
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": time.time(),
        "conversation": {
            "title": info.title,
            "created_at": info.created_at,
            "updated_at": info.updated_at,
            "system_prompt": info.system_prompt,
            "leaf_id": info.leaf_id,
        },
        "messages": [
            {
                "id": m.id,
                "parent_id": m.parent_id,
                "author": m.author,
                "content": m.content,
                "status": m.status.value,
                "created_at": m.created_at,
                "meta": m.meta.to_dict(),
            }
            for m in sorted(conversation.all_messages(), key=lambda m: m.created_at)
        ],
    }


def dumps(conversation: Conversation) -> str:
    return json.dumps(to_json(conversation), ensure_ascii=False, indent=1)


def _need(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConversationFormatError(f"{where} must be {names}, not {type(value).__name__}")
    return value


def from_json_text(text: str) -> Conversation:
    if len(text) > MAX_IMPORT_BYTES:
        raise ConversationFormatError(f"the file is larger than {MAX_IMPORT_BYTES >> 20} MiB")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConversationFormatError(f"not valid JSON: {exc}") from exc
    return from_json(data)


def from_json(data: Any) -> Conversation:
    """A new conversation (fresh ids) from an export; raises ConversationFormatError."""
    _need(data, dict, "the file")
    if data.get("format") != FORMAT:
        raise ConversationFormatError(
            f"not a Zeta Desktop conversation (format is {data.get('format')!r})"
        )
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConversationFormatError(
            f"version {version!r} is not one this app reads (up to {FORMAT_VERSION})"
        )
    head = _need(data.get("conversation"), dict, "conversation")
    raw_messages = _need(data.get("messages"), list, "messages")
    now = time.time()
    conversation_id = new_id()
    ids: dict[str, str] = {}
    messages: list[Message] = []
    for index, raw in enumerate(raw_messages):
        where = f"messages[{index}]"
        _need(raw, dict, where)
        old_id = _need(raw.get("id"), str, f"{where}.id")
        if old_id in ids:
            raise ConversationFormatError(f"{where}.id {old_id!r} appears twice")
        parent = raw.get("parent_id")
        if parent is not None:
            _need(parent, str, f"{where}.parent_id")
            if parent not in ids:
                raise ConversationFormatError(
                    f"{where}.parent_id {parent!r} names no earlier message"
                )
        author = raw.get("author")
        if author not in ("user", "assistant"):
            raise ConversationFormatError(f"{where}.author must be 'user' or 'assistant'")
        content = _need(raw.get("content"), str, f"{where}.content")
        try:
            status = MessageStatus(raw.get("status", "done"))
        except ValueError as exc:
            raise ConversationFormatError(f"{where}.status {raw.get('status')!r} is unknown") \
                from exc
        if status.unfinished:  # it cannot still be streaming in this app
            status = MessageStatus.INTERRUPTED
        created = raw.get("created_at", now)
        _need(created, (int, float), f"{where}.created_at")
        meta = raw.get("meta", {})
        _need(meta, dict, f"{where}.meta")
        try:
            answer_meta = AnswerMeta.from_dict(meta)
        except TypeError as exc:
            raise ConversationFormatError(f"{where}.meta: {exc}") from exc
        ids[old_id] = new_id()
        messages.append(Message(
            ids[old_id], conversation_id, ids[parent] if parent else None, author, content,
            status, float(created), answer_meta,
        ))
    title = head.get("title") or "Imported chat"
    _need(title, str, "conversation.title")
    system_prompt = head.get("system_prompt", "")
    _need(system_prompt, str, "conversation.system_prompt")
    leaf = head.get("leaf_id")
    created_at = head.get("created_at", now)
    _need(created_at, (int, float), "conversation.created_at")
    info = ConversationInfo(
        conversation_id, title, float(created_at), now, system_prompt,
        ids.get(leaf) if isinstance(leaf, str) else None,
    )
    return Conversation(info, messages)
