"""The OpenAI-compatible routes, over the door of a running session.

`model` is `auto` (the router picks, as for a typed prompt), a role's name
(that role, on its least busy replica) or a role's model. Each response
names the decision in headers (`x-zeta-role`, `x-zeta-kind`,
`x-zeta-reason`) and in a `zeta` field of its body or final chunk.

A streamed response starts once the first words exist: its headers carry
the routing, and a prompt that fails before any word (too long for every
model, no model free) still gets its status code. A client that goes away
stops its answer.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from openai.types import CreateEmbeddingResponse, Embedding, Model
from openai.types.create_embedding_response import Usage as EmbeddingUsage
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from zeta_desktop.core.chat.api import (
    AnswerOptions,
    ChatApi,
    ChatMessage,
    EngineError,
    NoRoleAvailableError,
    ServedModel,
    TurnEnded,
    estimate_prompt_tokens,
)
from zeta_desktop.core.settings import ServerConfig
from zeta_desktop.server.metrics import CONTENT_TYPE, ServerCounters, render
from zeta_desktop.server.replies import ChatReply, Reply, TextReply
from zeta_desktop.server.schemas import (
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    SamplingFields,
    error_body,
)
from zeta_desktop.server.streams import TurnStream

T = TypeVar("T")

EMBED_TIMEOUT_S = 300.0
# The 4-characters-a-token estimate is rarely off by half: a prompt this far
# over every model's context is refused before it queues. Closer ones are
# counted by the model itself, and refused with its numbers.
CLEARLY_TOO_LONG = 2.0


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.code, self.param, self.headers = code, param, headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.message, self.kind, self.code, self.param),
                            status_code=self.status, headers=self.headers)


def client_name(request: Request, user: str | None) -> str:
    """Who asked, for the router log and the history: the request's `user`,
    else its User-Agent's first word (`OpenAI/Python`)."""
    agent = request.headers.get("user-agent", "").split(" ", 1)[0][:64]
    return f"api: {user or agent or 'client'}"


def _messages(body: ChatRequest) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for index, message in enumerate(body.messages):
        if message.role == "tool":
            raise ApiError(400, "tool messages are not served here", param=f"messages.{index}")
        try:
            text = message.text()
        except ValueError as exc:
            raise ApiError(400, str(exc), param=f"messages.{index}.content") from exc
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": text})
    if messages[-1]["role"] != "user":
        raise ApiError(400, "the last message must be the user's", param="messages")
    return messages


class Routes:
    def __init__(self, api: ChatApi, settings: ServerConfig, counters: ServerCounters) -> None:
        self.api = api
        self.settings = settings
        self.counters = counters

    # -- models -----------------------------------------------------------------------

    def served(self, model_id: str, *, chat: bool) -> ServedModel:
        catalog = self.api.catalog()
        wanted = model_id.removeprefix("openai/").lower()  # LiteLLM's provider prefix
        for model in catalog:
            if wanted in (model.id.lower(), model.id.lower().removesuffix(".gguf")):
                if chat and not model.chats:
                    raise ApiError(400, f"{model.id!r} does not chat here; ask for 'auto' or "
                                   f"one of {', '.join(m.id for m in catalog if m.chats)}",
                                   param="model", code="model_cannot_chat")
                return model
        names = ", ".join(m.id for m in catalog)
        raise ApiError(404, f"no model {model_id!r} here; the models are: {names}",
                       param="model", code="model_not_found")

    def models(self) -> dict[str, Any]:
        created = int(time.time())
        data = []
        for model in self.api.catalog():
            listed = Model(id=model.id, created=created, object="model", owned_by="zeta")
            data.append({**listed.model_dump(exclude_none=True),
                         "zeta": {"role": model.role, "chats": model.chats,
                                  "embeds": model.embeds}})
        return {"object": "list", "data": data}

    # -- chat -------------------------------------------------------------------------

    def _check_room(self, messages: list[ChatMessage]) -> None:
        pending = self.api.client_turns_active()
        if pending >= self.settings.max_pending:
            raise ApiError(503, f"{pending} requests are already waiting or answering (the "
                           f"limit is {self.settings.max_pending}); try again shortly",
                           kind="server_error", code="overloaded",
                           headers={"Retry-After": str(self._retry_after_s())})
        largest = self.api.largest_context()
        if largest is None:
            return
        # Older turns are dropped to fit; the system message and the last one are not.
        kept = [m for m in messages[:1] if m["role"] == "system"] + messages[-1:]
        estimate = estimate_prompt_tokens(kept)
        if estimate > CLEARLY_TOO_LONG * largest:
            raise ApiError(400, f"the prompt is about {estimate:,} tokens; the largest "
                           f"context here holds {largest:,}", param="messages",
                           code="context_length_exceeded")

    def _retry_after_s(self) -> int:
        """Seconds until about one request's worth of room: an answer's mean
        time, spread over the models answering."""
        models = self.api.telemetry.snapshot().models
        times = [s.service_s for s in models.values() if s.service_s]
        mean = sum(times) / len(times) if times else 5.0
        return max(1, math.ceil(mean / max(1, len(times))))

    def _options(self, body: SamplingFields, answer_tokens: int | None,
                 raw: bool = False) -> AnswerOptions:
        return AnswerOptions(max_tokens=answer_tokens, temperature=body.temperature,
                             top_p=body.top_p, stop=body.stops(), seed=body.seed, raw=raw)

    async def chat(self, request: Request, body: ChatRequest) -> Response:
        model = self.served(body.model, chat=True)
        messages = _messages(body)
        options = self._options(body, body.answer_tokens())
        return await self._answer(request, body, model, messages, options, ChatReply)

    async def completion(self, request: Request, body: CompletionRequest) -> Response:
        model = self.served(body.model, chat=True)
        if not body.prompt:
            raise ApiError(400, "the prompt is empty", param="prompt")
        messages: list[ChatMessage] = [{"role": "user", "content": body.prompt}]
        options = self._options(body, body.max_tokens, raw=True)
        return await self._answer(request, body, model, messages, options, TextReply)

    async def _answer(self, request: Request, body: SamplingFields, model: ServedModel,
                      messages: list[ChatMessage], options: AnswerOptions,
                      shape: type[Reply]) -> Response:
        self._check_room(messages)
        stream = TurnStream(asyncio.get_running_loop())
        stream.turn_id = self.api.ask(
            messages, stream.feed, role=model.role, options=options,
            client=client_name(request, body.user), keep=self.settings.keep_history)
        first = await self._or_stop(request, stream, stream.first_text_or_end())
        if first is None:
            return Response(status_code=499)  # the client left; nothing reads this
        if isinstance(first, TurnEnded) and (first.failed or first.stopped):
            raise self._failure(stream, first)
        reply = shape(body.model, options.max_tokens, stream, self.api,
                      include_usage=bool(body.stream_options and
                                         body.stream_options.include_usage))
        if body.stream:
            return StreamingResponse(reply.chunks(first), media_type="text/event-stream",
                                     headers={**stream.routing.headers(),
                                              "Cache-Control": "no-cache"})
        ended = first if isinstance(first, TurnEnded) else await self._or_stop(
            request, stream, _until_end(stream))
        if ended is None:
            return Response(status_code=499)
        if ended.failed:
            raise self._failure(stream, ended)
        return JSONResponse(reply.whole(ended), headers=stream.routing.headers())

    async def _or_stop(self, request: Request, stream: TurnStream,
                       waiting: Awaitable[T]) -> T | None:
        """`waiting`'s result; None, and the turn stopped, if the client leaves first."""
        task = asyncio.ensure_future(waiting)
        watch = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is stopping: so does the answer
            task.cancel()
            self.api.stop(stream.turn_id)
            raise
        finally:
            watch.cancel()
        if task in done:
            return task.result()
        task.cancel()
        self.api.stop(stream.turn_id)
        return None

    def _failure(self, stream: TurnStream, ended: TurnEnded) -> ApiError:
        headers = stream.routing.headers()
        if self.api.ended_too_long(stream.turn_id):
            return ApiError(400, ended.error, code="context_length_exceeded",
                            param="messages", headers=headers)
        if "chat template:" in ended.error:  # the model's template refused these messages
            return ApiError(400, ended.error, code="invalid_messages", param="messages",
                            headers=headers)
        if "commands such as" in ended.error:
            return ApiError(400, ended.error, code="command_not_served", headers=headers)
        if not stream.routing.role or "no model" in ended.error.lower():
            return ApiError(503, ended.error or "no model could take the prompt",
                            kind="server_error", code="no_model_available",
                            headers={**headers, "Retry-After": "5"})
        return ApiError(500, ended.error or "the answer was stopped", kind="server_error",
                        code="model_failed", headers=headers)

    # -- embeddings -------------------------------------------------------------------

    async def embeddings(self, body: EmbeddingRequest) -> dict[str, Any]:
        model = self.served(body.model, chat=False)
        role = model.role if model.role is not None else self.api.embed_role()
        if role is None or not any(m.role == role and m.embeds for m in self.api.catalog()):
            embedders = [m.id for m in self.api.catalog() if m.embeds and m.role]
            raise ApiError(400, f"{body.model!r} does not embed here; ask for 'auto' or "
                           f"{', '.join(embedders) or '(no role embeds)'}", param="model",
                           code="model_cannot_embed")
        texts = body.texts()
        if role != self.api.embed_role():
            raise ApiError(400, f"embeddings come from the embedding role "
                           f"({self.api.embed_role()}); ask for it or 'auto'", param="model")
        try:
            vectors = await asyncio.to_thread(self.api.embed, texts, EMBED_TIMEOUT_S)
            counts = await asyncio.to_thread(self.api.count_tokens, role, texts,
                                             EMBED_TIMEOUT_S)
        except NoRoleAvailableError as exc:
            raise ApiError(503, str(exc), kind="server_error", code="no_model_available",
                           headers={"Retry-After": "5"}) from exc
        except (EngineError, TimeoutError) as exc:
            raise ApiError(500, f"the embedder failed: {exc}", kind="server_error") from exc
        tokens = sum(counts)
        response = CreateEmbeddingResponse(
            data=[Embedding(embedding=v, index=i, object="embedding")
                  for i, v in enumerate(vectors)],
            model=body.model, object="list",
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))
        shaped = response.model_dump()
        if body.encoding_format == "base64":
            for item, vector in zip(shaped["data"], vectors, strict=True):
                item["embedding"] = base64.b64encode(
                    np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
        return {**shaped, "zeta": {"role": role}}

    # -- health and metrics -----------------------------------------------------------

    def health(self) -> JSONResponse:
        models = self.api.telemetry.snapshot().models
        states = {key: signals.state for key, signals in models.items()}
        ready = any(state in ("ready", "busy", "unloaded") for state in states.values())
        return JSONResponse({"status": "ok" if ready else "loading", "endpoints": states},
                            status_code=200 if ready else 503)

    def metrics(self) -> PlainTextResponse:
        return PlainTextResponse(
            render(self.api.telemetry, self.counters, self.api.client_turns_active()),
            media_type=CONTENT_TYPE)


async def _until_end(stream: TurnStream) -> TurnEnded:
    while True:
        event = await stream.next()
        if isinstance(event, TurnEnded):
            return event


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts, param = [], None
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())[1:])
        if error.get("type") == "json_invalid":
            return "the body is not valid JSON", None
        param = param or where or None
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request", param


def create_app(api: ChatApi, settings: ServerConfig, counters: ServerCounters) -> FastAPI:
    routes = Routes(api, settings, counters)
    app = FastAPI(title="Zeta Desktop", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return ApiError(400, message, param=param).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code)

    @app.get("/health")
    async def health() -> JSONResponse:
        return routes.health()

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return routes.metrics()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return routes.models()

    @app.post("/v1/chat/completions")
    async def chat(request: Request, body: ChatRequest) -> Response:
        return await routes.chat(request, body)

    @app.post("/v1/completions")
    async def completions(request: Request, body: CompletionRequest) -> Response:
        return await routes.completion(request, body)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        return await routes.embeddings(body)

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"],
                           expose_headers=["x-zeta-role", "x-zeta-kind", "x-zeta-reason"])
    return app
