"""Every request passes here first: the Host check, the API key, the body's size.

Pure ASGI, ahead of the framework, so a request refused here costs no
parsing. A web page the user visits can reach 127.0.0.1 through DNS
rebinding (its own name resolving to loopback); its requests then carry that
name in `Host`, which is refused. A key, when set, is compared in constant
time. The body is read here up to the limit and handed on whole.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/health",)  # answered without the key (a load balancer's probe)
KNOWN_PATHS = frozenset({"/health", "/metrics", "/v1/models", "/v1/chat/completions",
                         "/v1/completions", "/v1/embeddings"})
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The `Host` values a request may carry; None: any (a wildcard bind,
    where the key is required instead)."""
    if host in WILDCARD_HOSTS:
        return None
    names = {host}
    try:
        if ipaddress.ip_address(host).is_loopback:
            names |= {"127.0.0.1", "localhost", "::1"}
    except ValueError:
        if host == "localhost":
            names |= {"127.0.0.1", "::1"}
    hosts = set()
    for name in names:
        shown = f"[{name}]" if ":" in name else name
        hosts |= {shown.lower(), f"{shown}:{port}".lower()}
    return frozenset(hosts)


class Guard:
    def __init__(self, app: ASGIApp, *, hosts: frozenset[str] | None, key: str | None,
                 max_body_bytes: int, counters: ResponseCounter | None = None,
                 origins: frozenset[str] = frozenset()) -> None:
        self._app = app
        self._counters = counters
        self._origins = origins
        self._hosts = hosts
        self._key = key.encode() if key else None
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; a websocket is never served
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await self._app(scope, receive, send)
            return
        if self._counters is not None:
            send = _counted(send, scope["path"], self._counters)
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        host = headers.get("host", b"").decode("latin-1").lower()
        if self._hosts is not None and host not in self._hosts:
            await _refuse(send, 403, f"Host {host or '(none)'!r} is not this server's address; "
                          "requests through another name are refused (DNS rebinding)",
                          "permission_error", "host_not_allowed")
            return
        # A page the user visits can post to 127.0.0.1 directly (no rebinding
        # needed; a body with no Content-Type needs no CORS preflight). Browsers
        # name the page's origin: only the origins the user allowed get in.
        origin = headers.get("origin", b"").decode("latin-1")
        cross_site = headers.get("sec-fetch-site", b"") == b"cross-site"
        if (origin and origin not in self._origins) or (cross_site and not origin):
            await _refuse(send, 403, f"requests from web pages ({origin or 'cross-site'}) "
                          "are refused unless their origin is in the server's cors_origins",
                          "permission_error", "origin_not_allowed")
            return
        if scope["method"] == "POST" and not headers.get("content-type", b"").lower() \
                .startswith(b"application/json"):
            await _refuse(send, 415, "send the body as JSON (Content-Type: application/json)",
                          "invalid_request_error", "unsupported_media_type")
            return
        if self._key is not None and scope["path"] not in OPEN_PATHS and scope["method"] != \
                "OPTIONS" and not self._key_matches(headers):
            await _refuse(send, 401, "a valid API key is needed: send it as "
                          "'Authorization: Bearer KEY'", "authentication_error",
                          "invalid_api_key", [(b"www-authenticate", b"Bearer")])
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self._max_body):
            await _refuse(send, 413, f"the request body is over {self._max_body:,} bytes",
                          "invalid_request_error", "body_too_large")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self._max_body:
                await _refuse(send, 413, f"the request body is over {self._max_body:,} bytes",
                              "invalid_request_error", "body_too_large")
                return
            if not message.get("more_body", False):
                break
        await self._app(scope, _replay(bytes(body), receive), send)

    def _key_matches(self, headers: dict[str, bytes]) -> bool:
        assert self._key is not None
        given = headers.get("authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer":
            token = headers.get("x-api-key", b"")
        return hmac.compare_digest(token.strip(), self._key)


class ResponseCounter(Protocol):
    def response(self, path: str, status: int) -> None: ...


def _counted(send: Send, path: str, counters: ResponseCounter) -> Send:
    async def counted(message: Message) -> None:
        if message["type"] == "http.response.start":
            counters.response(path if path in KNOWN_PATHS else "other", message["status"])
        await send(message)

    return counted


def _replay(body: bytes, receive: Receive) -> Receive:
    """The whole body at the first call; then the client's own messages (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(send: Send, status: int, message: str, kind: str, code: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps({"error": {"message": message, "type": kind, "param": None,
                                    "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": payload})
