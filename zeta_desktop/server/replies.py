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
        stats = ended.stats
        if stats is not None and self.max_tokens is not None and \
                stats.n_tokens >= self.max_tokens:
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
        over = False  # the turn ended (or was stopped here): nothing left to stop
        try:
            # The opening chunk goes out with the first words, in one write:
            # each ASGI message is a send of its own (0.35 ms on loopback here).
            opening = self.opening() or ""
            event: Any = first
            sent = False
            while True:
                if isinstance(event, AnswerText):
                    sent = True
                    yield opening + self.piece(event.piece)
                    opening = ""
                elif isinstance(event, TurnRetried) and sent:
                    # What was sent cannot be taken back; a new answer from
                    # another model would repeat it.
                    self.api.stop(self.stream.turn_id)
                    over = True
                    yield _error_event(f"the model failed mid-answer ({event.message}); "
                                       "the words so far are all there is")
                    break
                elif isinstance(event, TurnEnded):
                    over = True
                    if event.failed:
                        yield opening + _error_event(event.error)
                        break
                    yield opening + self.final(self.finish_reason(event), self.zeta(event))
                    if self.include_usage:
                        yield self.usage_chunk(self.usage(event))
                    break
                event = await self.stream.next()
            yield "data: [DONE]\n\n"
        finally:
            if not over:  # the client left mid-stream
                self.api.stop(self.stream.turn_id)


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
