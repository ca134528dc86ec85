"""`--self-test`'s server check: serve on a free loopback port, ask once, stop.

The packaged app must carry the whole server stack (uvicorn, FastAPI, the
openai package's types); this proves it does, with a real request through
the session's router. The request goes out through the standard library, a
client apart from the server's own stack.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable

from zeta_desktop.core.chat.api import ChatApi
from zeta_desktop.core.settings import ServerConfig
from zeta_desktop.server.runner import ServerStartError, ZetaServer

PROMPT = "Say hello in five words."


def server_self_test(api: ChatApi, emit: Callable[[str], None], timeout: float = 120.0) -> int:
    """0 if a chat request through the server was answered, else 1."""
    try:
        server = ZetaServer(api, ServerConfig(port=0), key="")
        where = server.start()
    except ServerStartError as exc:
        emit(f"FAIL server: {exc}")
        return 1
    try:
        started = time.perf_counter()
        request = urllib.request.Request(
            f"{where.base_url}/chat/completions", method="POST",
            headers={"content-type": "application/json"},
            data=json.dumps({"model": "auto", "max_tokens": 8, "temperature": 0,
                             "messages": [{"role": "user", "content": PROMPT}]}).encode())
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
            role = response.headers.get("x-zeta-role", "")
        text = body["choices"][0]["message"]["content"]
        if not text:
            emit("FAIL server: the answer was empty")
            return 1
        emit(f"ok   server: {where.base_url} answered through {role} "
             f"in {time.perf_counter() - started:.2f} s "
             f"({body['usage']['completion_tokens']} tokens)")
        return 0
    except (OSError, ValueError, KeyError, IndexError) as exc:
        emit(f"FAIL server: {type(exc).__name__}: {exc}")
        return 1
    finally:
        server.stop()
