"""An OpenAI-compatible server as an engine: llama-server, vLLM, Ollama, SGLang.

Thread-safe (httpx's client is): a remote replica's worker runs one thread
per server slot, each with its own stream. `httpx` is imported lazily.

llama-server gets its own fields (once the probe says it is one, see
learn_server): `cache_prompt` (its default in recent versions, sent so
an older one keeps the prefix too) and, where it reports several slots,
`id_slot`, so that a follow-up runs on the slot that read its conversation
(see slot_pins). vLLM, SGLang and Ollama get neither. A server that refuses
one drops it, with one log line.

Stop and the timeouts act at once: each stream's socket is shut down from
the thread that stops it, which wakes a read blocked on a server that has
gone silent. A flag checked between tokens would wait for a token that
never comes.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from zeta_desktop.core.engines.base import (
    CancelEvent,
    ChatMessage,
    EngineError,
    PromptTooLongError,
    TransientEngineError,
)
from zeta_desktop.core.engines.endpoint import LLAMA_SERVER, EndpointSpec
from zeta_desktop.core.engines.slot_pins import SlotPins
from zeta_desktop.core.engines.sse import read_events

log = logging.getLogger(__name__)

# How servers word "the prompt does not fit": OpenAI and vLLM, llama-server,
# llama-cpp-python, Ollama.
_TOO_LONG_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "exceeds the available context size",
    "exceed_context_size",
    "exceed context window",
    "context window",
    "too many tokens",
)
_GUARD_TICK_S = 0.05
# How a server words "no such slot" (a fork's "Invalid slot ID", an
# unknown-field validation error naming it).
_SLOT_REFUSALS = ("id_slot", "slot id", "invalid slot", "slot unavailable")


def server_message(body: bytes | str, limit: int = 300) -> str:
    """The human part of an error body: OpenAI's error.message, FastAPI's detail, or text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:limit] or "(no message)"
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message") or error.get("msg") or json.dumps(error)
        if isinstance(error, list):  # FastAPI validation errors
            error = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e)
                              for e in error)
        if error:
            return str(error)[:limit]
    return text[:limit]


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _too_long(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _TOO_LONG_MARKERS)


class _Deadlines:
    """One thread that aborts the streams whose time ran out (first token, idle)."""

    def __init__(self) -> None:
        self._watched: dict[int, tuple[float, str, Callable[[str], None]]] = {}
        self._lock = threading.Lock()
        self._ids = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, why: str, abort: Callable[[str], None]) -> int:
        with self._lock:
            self._ids += 1
            self._watched[self._ids] = (time.monotonic() + seconds, why, abort)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="zeta-remote-deadlines",
                                                daemon=True)
                self._thread.start()
            return self._ids

    def extend(self, handle: int, seconds: float, why: str) -> None:
        with self._lock:
            entry = self._watched.get(handle)
            if entry is not None:
                self._watched[handle] = (time.monotonic() + seconds, why, entry[2])

    def forget(self, handle: int) -> None:
        with self._lock:
            self._watched.pop(handle, None)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(_GUARD_TICK_S):
            now = time.monotonic()
            with self._lock:
                due = [(h, why, abort) for h, (at, why, abort) in self._watched.items()
                       if at <= now]
                for handle, _, _ in due:
                    del self._watched[handle]
            for _, why, abort in due:
                abort(why)


class _Stream:
    """One request's connection, so another thread can cut it."""

    def __init__(self) -> None:
        self.socket: socket.socket | None = None
        self.aborted = ""  # why it was cut, once it was
        self._lock = threading.Lock()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        # httpcore's trace hook hands over the new connection's stream.
        if name == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            with self._lock:
                self.socket = sock
                cut = bool(self.aborted)
            if cut:
                self._shutdown()

    def abort(self, why: str) -> None:
        with self._lock:
            if self.aborted:
                return
            self.aborted = why
        self._shutdown()

    def _shutdown(self) -> None:
        # shutdown, not close: close leaves a recv() blocked in another thread.
        with self._lock:
            sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


class RemoteEngine:
    """One endpoint. No request is made until the first job (see server_probe)."""

    counts_tokens = False

    def __init__(self, spec: EndpointSpec, transport: Any = None) -> None:
        import httpx

        self.spec = spec
        self._httpx = httpx
        read_backstop = max(spec.first_token_timeout_s, spec.idle_timeout_s) + 5.0
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_backstop, connect=spec.connect_timeout_s),
            verify=spec.verify_tls,
            # A fresh connection per request: its socket is then known (see
            # _Stream), so Stop can cut even a request still waiting for headers.
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
            follow_redirects=False,
        )
        self._n_ctx = spec.n_ctx
        self._deadlines = _Deadlines()
        self.last_prompt_tokens = 0
        # Prompt tokens the server read from its cache for the last answer
        # (llama-server's timings.cache_n, OpenAI's prompt_tokens_details).
        self.last_cached_tokens = 0
        self.server_kind = ""  # endpoint.LLAMA_SERVER, VLLM, SGLANG; "": not known
        self._cache_prompt = False
        self._pins: SlotPins | None = None
        self._refused: set[str] = set()  # llama-server fields this server refused
        self._fields_lock = threading.Lock()

    # -- what the server told the probe ------------------------------------------

    @property
    def n_ctx(self) -> int:
        """The server's context size if known, else 0 (the server fits the prompt)."""
        return self._n_ctx

    def learn_context(self, n_ctx: int) -> None:
        if not self.spec.n_ctx and n_ctx > 0:
            self._n_ctx = n_ctx

    def learn_server(self, kind: str, slots: int | None = None) -> None:
        """Which server this is and the slots it reports (llama-server's
        /props total_slots), from the probe. Only a slot count the server
        gave is used: llama-server defers a task sent to a slot it does not
        have for ever."""
        with self._fields_lock:  # the health thread calls this at every probe
            self.server_kind = kind
            llama = kind == LLAMA_SERVER
            self._cache_prompt = llama and "cache_prompt" not in self._refused
            wanted = (slots if llama and slots is not None and slots >= 2
                      and "id_slot" not in self._refused else 0)
            if not wanted:
                self._pins = None
            elif self._pins is None:
                self._pins = SlotPins(wanted)
            elif self._pins.slots != wanted:
                self._pins.resize(wanted)

    @property
    def pinned_slots(self) -> int:
        """How many slots the engine spreads conversations over (0: it sends no id_slot)."""
        pins = self._pins
        return pins.slots if pins is not None else 0

    def count_tokens(self, text: str) -> int:
        raise EngineError(f"{self.spec.label}: the client cannot count this server's tokens")

    # -- requests ---------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = self.spec.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _url(self, path: str) -> str:
        return f"{self.spec.base_url}/{path}"

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        cancel: threading.Event,
        sampling: Mapping[str, float] | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Iterator[str]:
        messages = list(messages)
        body = self._body({"messages": messages}, max_tokens, temperature, sampling,
                          stop, seed)
        yield from self._stream_with_fields("chat/completions", body, cancel,
                                            self._chat_event, messages)

    def stream_completion(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        cancel: threading.Event,
        sampling: Mapping[str, float] | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Iterator[str]:
        """Raw text on, no chat template: the server's /completions."""
        body = self._body({"prompt": prompt}, max_tokens, temperature, sampling, stop, seed)
        yield from self._stream_with_fields("completions", body, cancel,
                                            self._completion_event, None)

    def _body(self, asked: dict[str, Any], max_tokens: int, temperature: float,
              sampling: Mapping[str, float] | None, stop: Sequence[str],
              seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.spec.model, **asked, "max_tokens": max_tokens,
                                "temperature": temperature, "stream": True}
        # top_p is OpenAI's; top_k, min_p and repeat_penalty are llama-server's
        # names (vLLM takes top_k and min_p too). Sent only when the user set them.
        body.update({k: (int(v) if k == "top_k" else v) for k, v in (sampling or {}).items()})
        if stop:
            body["stop"] = list(stop)
        if seed is not None:
            body["seed"] = seed
        return body

    def _stream_with_fields(self, path: str, body: dict[str, Any], cancel: threading.Event,
                            parse: Callable[[str], tuple[str, bool]],
                            messages: list[ChatMessage] | None) -> Iterator[str]:
        """_stream with llama-server's fields where it is one: `cache_prompt`,
        and for a chat `id_slot` (raw completions are not pinned: their
        prompt is one text, not turns to match)."""
        pins = self._pins if messages is not None else None
        if not self._cache_prompt and pins is None:
            yield from self._stream(path, body, cancel, parse)
            return
        slot = pins.take(messages) if pins is not None and messages is not None else None
        sent = dict(body)
        if self._cache_prompt:
            sent["cache_prompt"] = True
        if slot is not None:
            sent["id_slot"] = slot
        held: list[ChatMessage] | None = messages  # stopped: it read the prompt at least
        answer: list[str] = []
        try:
            try:
                for piece in self._stream(path, sent, cancel, parse):
                    answer.append(piece)
                    yield piece
            except EngineError as exc:
                if answer or not self._drop_refused(exc, sent):
                    raise
                held = None
                yield from self._stream(path, body, cancel, parse)  # as any server gets it
                return
            if messages is not None and not cancel.is_set():
                held = [*messages, {"role": "assistant", "content": "".join(answer)}]
        except Exception:
            held = None  # what the slot holds after a failure is not known
            raise
        finally:
            if slot is not None and pins is not None:
                pins.release(slot, held)

    def _drop_refused(self, exc: EngineError, sent: dict[str, Any]) -> bool:
        """Whether `exc` is the server refusing a llama-server field; if so,
        that field is not sent again."""
        if type(exc) is not EngineError:  # too long, busy: not about the fields
            return False
        said = str(exc).lower()
        dropped = []
        with self._fields_lock:
            if "id_slot" in sent and any(w in said for w in _SLOT_REFUSALS):
                self._pins = None
                dropped.append("id_slot")
            if "cache_prompt" in sent and "cache_prompt" in said:
                self._cache_prompt = False
                dropped.append("cache_prompt")
            self._refused.update(dropped)
        if dropped:
            log.warning("%s refused %s; sending it no more (%s)", self.spec.label,
                        " and ".join(dropped), exc)
        return bool(dropped)

    def _stream(self, path: str, body: dict[str, Any], cancel: threading.Event,
                parse: Callable[[str], tuple[str, bool]]) -> Iterator[str]:
        spec = self.spec
        stream = _Stream()
        remove_hook = cancel.on_set(lambda: stream.abort("stopped")) if isinstance(
            cancel, CancelEvent) else (lambda: None)
        guard = self._deadlines.watch(
            spec.first_token_timeout_s,
            f"no first token within {spec.first_token_timeout_s:g} s",
            stream.abort,
        )
        request = self._client.build_request(
            "POST", self._url(path), json=body, headers=self._headers(),
            extensions={"trace": stream.trace},
        )
        finished = streamed = False
        try:
            response = self._client.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    response.read()
                    raise self.http_error(response.status_code, response.content,
                                          response.headers.get("retry-after"))
                for event in read_events(response.iter_lines()):
                    if cancel.is_set():
                        return
                    piece, finished = parse(event.data)
                    streamed = True
                    self._deadlines.extend(
                        guard, spec.idle_timeout_s,
                        f"no token for {spec.idle_timeout_s:g} s",
                    )
                    if piece:
                        yield piece
            finally:
                response.close()
        except self._httpx.HTTPError as exc:
            if cancel.is_set():
                return
            raise self.network_error(exc, stream.aborted) from exc
        finally:
            self._deadlines.forget(guard)
            remove_hook()
        if not finished and not cancel.is_set():
            if not streamed:
                # llama-cpp-python's server, for one, answers 200 and then ends
                # the stream when it rejects a prompt.
                raise EngineError(
                    f"{spec.label}: the server closed the stream without an answer; it may "
                    "have rejected the prompt (too long for its context?); its log says why"
                )
            raise EngineError(
                f"{spec.label}: the stream ended before the answer did (no finish_reason); "
                "the server may have stopped"
            )

    def _chat_event(self, data: str) -> tuple[str, bool]:
        """One chat chunk -> (its text, whether the answer finished)."""
        choice = self._choice(data)
        delta = choice.get("delta") or {}
        return self._text_of(delta.get("content")), choice.get("finish_reason") is not None

    def _completion_event(self, data: str) -> tuple[str, bool]:
        """One raw completion chunk -> (its text, whether the answer finished)."""
        choice = self._choice(data)
        return self._text_of(choice.get("text")), choice.get("finish_reason") is not None

    def _text_of(self, text: object) -> str:
        if text is None:
            return ""
        if not isinstance(text, str):
            raise EngineError(f"{self.spec.label}: unexpected content {text!r:.120}")
        return text

    def _choice(self, data: str) -> dict[str, Any]:
        """A chunk's first choice ({} for one with none, as a usage chunk)."""
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise EngineError(
                f"{self.spec.label}: the server sent something that is not JSON: {data[:120]!r}"
            ) from exc
        if not isinstance(chunk, dict):
            raise EngineError(f"{self.spec.label}: unexpected chunk {data[:120]!r}")
        if "error" in chunk:  # an error in the middle of a stream
            message = server_message(data)
            if _too_long(message):
                raise PromptTooLongError(f"{self.spec.label} says: {message}")
            raise EngineError(f"{self.spec.label}: the server failed mid-answer: {message}")
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            self.last_prompt_tokens = usage["prompt_tokens"]
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
                self.last_cached_tokens = details["cached_tokens"]
        timings = chunk.get("timings")  # llama-server's, on its last chunk
        if isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
            self.last_cached_tokens = timings["cache_n"]
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return {}
        return choices[0]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        spec = self.spec
        try:
            response = self._client.post(
                self._url("embeddings"),
                json={"model": spec.model, "input": list(texts)},
                headers=self._headers(),
                timeout=self._httpx.Timeout(spec.first_token_timeout_s,
                                            connect=spec.connect_timeout_s),
            )
        except self._httpx.HTTPError as exc:
            raise self.network_error(exc, "") from exc
        if response.status_code >= 400:
            raise self.http_error(response.status_code, response.content,
                                  response.headers.get("retry-after"))
        try:
            rows = sorted(response.json()["data"], key=lambda row: row["index"])
            # A model with no pooling type gives one vector per token (so does
            # llama-cpp-python's server): their mean, as MEAN pooling would.
            vectors = np.asarray([np.asarray(row["embedding"], dtype=np.float64).reshape(
                -1, len(np.atleast_2d(row["embedding"])[0])).mean(axis=0) for row in rows])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise EngineError(f"{spec.label}: the embeddings answer is not as expected: "
                              f"{response.text[:120]!r}") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EngineError(f"{spec.label}: {len(vectors)} vectors for {len(texts)} texts")
        # Unit length, as the local engine gives them: cosine is then a dot product.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: list[list[float]] = (vectors / np.where(norms > 0, norms, 1.0)).tolist()
        return unit

    # -- errors -----------------------------------------------------------------

    def http_error(self, status: int, body: bytes, retry_after: str | None) -> EngineError:
        label = self.spec.label
        message = server_message(body)
        if status in (429, 503):
            wait = retry_after_s(retry_after)
            after = f"; retry after {wait:.0f} s" if wait is not None else ""
            what = "busy" if status == 429 else "unavailable"
            return TransientEngineError(f"{label} is {what} ({status}: {message}){after}", wait)
        if _too_long(message):
            return PromptTooLongError(f"{label} says the prompt is too long: {message}")
        if status in (401, 403):
            return EngineError(
                f"{label} refused the request ({status}: {message}); check its API key "
                "(keyring, or the environment variable the config names)"
            )
        if status == 404:
            return EngineError(
                f"{label}: not found (404: {message}); check that the URL ends in /v1 "
                "and the model name"
            )
        return EngineError(f"{label}: the server answered {status}: {message}")

    def network_error(self, exc: Exception, aborted: str) -> EngineError:
        label, httpx = self.spec.label, self._httpx
        if aborted:
            return EngineError(f"{label}: {aborted}")
        if isinstance(exc, httpx.ConnectTimeout):
            return EngineError(f"{label}: no connection within {self.spec.connect_timeout_s:g} s")
        if isinstance(exc, httpx.ConnectError):
            return EngineError(f"{label}: cannot connect ({exc})")
        if isinstance(exc, httpx.TimeoutException):
            return EngineError(f"{label}: the server did not answer in time ({exc})")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return EngineError(f"{label}: the connection broke mid-answer ({exc})")
        return EngineError(f"{label}: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._deadlines.close()
        self._client.close()
