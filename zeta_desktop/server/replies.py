"""One answer in OpenAI's shapes: streamed chunks, or the whole response.

`ChatReply` for /v1/chat/completions, `TextReply` for /v1/completions; the
shapes are the `openai` package's models. The stream's final chunk carries
the routing decision in a `zeta` field, and, when asked for, a last chunk
the usage.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from openai.types import Completion, CompletionChoice, CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta

from zeta_desktop.core.chat.api import AnswerText, ChatApi, TurnEnded, TurnRetried
from zeta_desktop.server.schemas import error_body
from zeta_desktop.server.streams import TurnStream


class Reply:
    prefix = "cmpl"

    def __init__(self, model: str, max_tokens: int | None, stream: TurnStream, api: ChatApi,
                 include_usage: bool = False) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.stream = stream
        self.api = api
        self.include_usage = include_usage
        self.id = f"{self.prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self._sent_words = False  # words went out: a retry elsewhere cannot be shown
        self._over = False  # the turn ended (or was stopped here): nothing left to stop

    # -- what each shape writes --------------------------------------------------------

    def opening(self) -> str | None:
        return None

    def piece(self, text: str) -> str:
        raise NotImplementedError

    def final(self, finish: str, zeta: dict[str, Any]) -> str:
        raise NotImplementedError

    def usage_chunk(self, usage: CompletionUsage) -> str:
        raise NotImplementedError

    def whole(self, ended: TurnEnded) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------

    def finish_reason(self, ended: TurnEnded) -> str:
        """"length" when the answer ran to its budget (the client's max_tokens,
        the role's, or the room left in the context), else "stop"."""
        stats = ended.stats
        if stats is not None and (stats.hit_limit or (
                self.max_tokens is not None and stats.n_tokens >= self.max_tokens)):
            return "length"
        return "stop"

    def usage(self, ended: TurnEnded) -> CompletionUsage:
        stats = ended.stats
        prompt = (stats.prompt_tokens or stats.estimated_prompt_tokens) if stats else 0
        answer = stats.n_tokens if stats else 0
        return CompletionUsage(prompt_tokens=prompt, completion_tokens=answer,
                               total_tokens=prompt + answer)

    def zeta(self, ended: TurnEnded) -> dict[str, Any]:
        stats = ended.stats
        return {**self.stream.routing.as_field(),
                "ttft_s": round(stats.ttft_s, 4) if stats else None,
                "tokens_per_s": round(stats.tokens_per_s, 2) if stats else None}

    async def chunks(self, first: AnswerText | TurnEnded) -> AsyncIterator[str]:
        """The stream's SSE text. Each write is one send (0.35 ms on loopback
        here), so what is already waiting goes out together: the opening chunk
        with the first words, and, when the loop falls behind the models, every
        piece queued by then. Nothing waits for more."""
        try:
            parts = [self.opening() or ""]
            event: Any = first
            while True:
                if self._take(event, parts):
                    parts.append("data: [DONE]\n\n")
                    yield "".join(parts)
                    return
                event = self.stream.ready()
                if event is None:
                    if any(parts):
                        yield "".join(parts)
                    parts = []
                    event = await self.stream.next()
        finally:
            if not self._over:  # the client left mid-stream
                self.api.stop(self.stream.turn_id)

    def _take(self, event: Any, parts: list[str]) -> bool:
        """Add an event's SSE text to `parts`; True once the stream is over."""
        if isinstance(event, AnswerText):
            self._sent_words = True
            parts.append(self.piece(event.piece))
        elif isinstance(event, TurnRetried) and self._sent_words:
            # What was sent cannot be taken back; a new answer from another
            # model would repeat it.
            self.api.stop(self.stream.turn_id)
            self._over = True
            parts.append(_error_event(f"the model failed mid-answer ({event.message}); "
                                      "the words so far are all there is"))
        elif isinstance(event, TurnEnded):
            self._over = True
            if event.failed:
                parts.append(_error_event(event.error))
            else:
                parts.append(self.final(self.finish_reason(event), self.zeta(event)))
                if self.include_usage:
                    parts.append(self.usage_chunk(self.usage(event)))
        return self._over


class ChatReply(Reply):
    prefix = "chatcmpl"

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> str:
        chunk = ChatCompletionChunk(id=self.id, created=self.created, model=self.model,
                                    object="chat.completion.chunk", choices=choices, **extra)
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    def opening(self) -> str:
        return self._chunk([ChunkChoice(index=0, delta=ChoiceDelta(role="assistant",
                                                                   content=""))])

    def piece(self, text: str) -> str:
        return self._chunk([ChunkChoice(index=0, delta=ChoiceDelta(content=text))])

    def final(self, finish: str, zeta: dict[str, Any]) -> str:
        return self._chunk([ChunkChoice(index=0, delta=ChoiceDelta(),
                                        finish_reason=finish)],  # type: ignore[arg-type]
                           zeta=zeta)

    def usage_chunk(self, usage: CompletionUsage) -> str:
        return self._chunk([], usage=usage)

    def whole(self, ended: TurnEnded) -> dict[str, Any]:
        completion = ChatCompletion(
            id=self.id, created=self.created, model=self.model, object="chat.completion",
            choices=[Choice(index=0, finish_reason=self.finish_reason(ended),  # type: ignore[arg-type]
                            message=ChatCompletionMessage(role="assistant",
                                                          content=ended.answer))],
            usage=self.usage(ended))
        return {**completion.model_dump(exclude_none=True), "zeta": self.zeta(ended)}


class TextReply(Reply):
    def _chunk(self, choices: list[CompletionChoice], **extra: Any) -> str:
        chunk = Completion(id=self.id, created=self.created, model=self.model,
                           object="text_completion", choices=choices, **extra)
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    def piece(self, text: str) -> str:
        # Built unchecked: the package's type wants a finish_reason, which a
        # chunk mid-stream does not have yet (OpenAI sends null).
        return self._chunk([CompletionChoice.model_construct(index=0, text=text,
                                                             finish_reason=None)])

    def final(self, finish: str, zeta: dict[str, Any]) -> str:
        return self._chunk([CompletionChoice(index=0, text="",
                                             finish_reason=finish)],  # type: ignore[arg-type]
                           zeta=zeta)

    def usage_chunk(self, usage: CompletionUsage) -> str:
        return self._chunk([], usage=usage)

    def whole(self, ended: TurnEnded) -> dict[str, Any]:
        completion = Completion(
            id=self.id, created=self.created, model=self.model, object="text_completion",
            choices=[CompletionChoice(index=0, text=ended.answer,
                                      finish_reason=self.finish_reason(ended))],  # type: ignore[arg-type]
            usage=self.usage(ended))
        return {**completion.model_dump(exclude_none=True), "zeta": self.zeta(ended)}


def _error_event(message: str) -> str:
    return f"data: {json.dumps(error_body(message, 'server_error'))}\n\n"
