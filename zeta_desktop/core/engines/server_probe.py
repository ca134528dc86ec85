"""Is a server up, does it serve our model, and how loaded is it?

Read the way each server offers it:
- health: llama-server's `/health` (503 while it loads the model); where a
  server has none (llama-cpp-python, vLLM's is at the root too, Ollama has
  none), `/v1/models` answering counts as up;
- the model: `/v1/models` must list it, else every request would fail;
- slots and context: llama-server's `/props` (`total_slots`,
  `default_generation_settings.n_ctx`);
- load: Prometheus text at `/metrics` where offered: llama-server's
  `llamacpp:requests_processing` and `requests_deferred`, vLLM's
  `num_requests_running`, `num_requests_waiting` and `kv_cache_usage_perc`,
  SGLang's `num_running_reqs` and `num_queue_reqs`;
- prefix-cache hits, where `/metrics` has them: vLLM's counters
  `prefix_cache_hits` / `prefix_cache_queries` (tokens; `gpu_` in early V1),
  read as the rate since the last probe, or older vLLM's gauge
  `gpu_prefix_cache_hit_rate`; SGLang's gauge `cache_hit_rate`;
- which server it is: `/v1/models`' `owned_by` ("llamacpp", "vllm",
  "sglang"), else llama-server's `/props` or the metrics' prefix. The
  engine sends llama-server's own fields (`cache_prompt`, `id_slot`) to
  llama-server only.

`resolve_endpoint` asks `/v1/models` once for a URL typed without its
`#model`: a server that serves one model is taken at its word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Unpack

from zeta_desktop.core.engines.endpoint import (
    LLAMA_SERVER,
    SGLANG,
    VLLM,
    EndpointError,
    EndpointSettings,
    EndpointSpec,
    split_endpoint,
)
from zeta_desktop.core.engines.remote import server_message

_METRIC_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([-+0-9.eEnaNInf]+)")
_RUNNING = ("llamacpp:requests_processing", "vllm:num_requests_running",
            "sglang:num_running_reqs")
_WAITING = ("llamacpp:requests_deferred", "vllm:num_requests_waiting", "sglang:num_queue_reqs")
_KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
# (hits, queries) counters, newest vLLM names first; Prometheus adds _total.
_HIT_COUNTERS = (
    ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"),
    ("vllm:prefix_cache_hits", "vllm:prefix_cache_queries"),
    ("vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_queries_total"),
    ("vllm:gpu_prefix_cache_hits", "vllm:gpu_prefix_cache_queries"),
)
_HIT_RATE_GAUGES = ("vllm:gpu_prefix_cache_hit_rate", "sglang:cache_hit_rate")

_OWNED_BY = {"llamacpp": LLAMA_SERVER, "vllm": VLLM, "sglang": SGLANG}
_METRIC_PREFIX = {"llamacpp:": LLAMA_SERVER, "vllm:": VLLM, "sglang:": SGLANG}


@dataclass(frozen=True)
class ServerLoad:
    running: int
    waiting: int
    kv_cache_pct: float | None = None
    # Share of prompt tokens the server read from its prefix cache, 0..1;
    # None where /metrics does not say.
    prefix_cache_hit_rate: float | None = None
    # The cumulative (hits, queries) behind it, where it counts them.
    prefix_cache_counts: tuple[float, float] | None = None


@dataclass(frozen=True)
class ProbeResult:
    up: bool
    detail: str  # why it is down, or what it serves
    slots: int | None = None
    n_ctx: int | None = None
    load: ServerLoad | None = None
    kind: str = ""  # LLAMA_SERVER, VLLM, SGLANG, or "" when not known


def _totals(text: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC_LINE.match(line)
        if match is None:
            continue
        name, value = match.group(1), match.group(3)
        try:
            totals[name] = totals.get(name, 0.0) + float(value)  # summed over labels
        except ValueError:
            continue
    return totals


def _hit_counts(totals: dict[str, float]) -> tuple[float, float] | None:
    for hits, queries in _HIT_COUNTERS:
        if hits in totals and queries in totals:
            return totals[hits], totals[queries]
    return None


def _hit_rate(counts: tuple[float, float] | None, totals: dict[str, float],
              before: tuple[float, float] | None = None) -> float | None:
    """hits / queries since `before` (a counter reset or no new queries: since
    the start), else the server's own gauge."""
    if counts is not None:
        hits, queries = counts
        if before is not None and queries > before[1] and hits >= before[0]:
            hits, queries = hits - before[0], queries - before[1]
        return min(1.0, max(0.0, hits / queries)) if queries > 0 else None
    gauge = next((totals[n] for n in _HIT_RATE_GAUGES if n in totals), None)
    return None if gauge is None or gauge != gauge else min(1.0, max(0.0, gauge))  # NaN: none


def parse_metrics(text: str, before: tuple[float, float] | None = None) -> ServerLoad | None:
    """Running and waiting requests, KV use and prefix-cache hits from
    Prometheus text; None if it has neither running nor waiting. `before`:
    the hit counters of the previous reading, for the rate since then."""
    totals = _totals(text)
    running = next((totals[n] for n in _RUNNING if n in totals), None)
    waiting = next((totals[n] for n in _WAITING if n in totals), None)
    if running is None and waiting is None:
        return None
    kv = next((totals[n] for n in _KV_CACHE if n in totals), None)
    counts = _hit_counts(totals)
    return ServerLoad(int(running or 0), int(waiting or 0),
                      None if kv is None else 100.0 * kv,
                      _hit_rate(counts, totals, before), counts)


def metrics_kind(text: str) -> str:
    """The server that wrote this Prometheus text, by its metrics' prefix."""
    for line in text.splitlines():
        for prefix, kind in _METRIC_PREFIX.items():
            if line.startswith(prefix):
                return kind
    return ""


def _owned_by_kind(data: Any) -> str:
    rows = data.get("data") if isinstance(data, dict) else None
    for row in rows if isinstance(rows, list) else []:
        owner = row.get("owned_by") if isinstance(row, dict) else None
        if isinstance(owner, str) and owner.lower() in _OWNED_BY:
            return _OWNED_BY[owner.lower()]
    return ""


def _model_ids(data: Any) -> list[str]:
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        rows = data.get("models") if isinstance(data, dict) else None  # Ollama's /api/tags
    ids = []
    for row in rows or []:
        if isinstance(row, dict):
            ident = row.get("id") or row.get("name") or row.get("model")
            if isinstance(ident, str):
                ids.append(ident)
    return ids


class ServerProbe:
    """Asks one server; one instance per replica, called from the health thread."""

    def __init__(self, spec: EndpointSpec, timeout_s: float = 3.0, transport: Any = None):
        import httpx

        self.spec = spec
        self._httpx = httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, spec.connect_timeout_s)),
            verify=spec.verify_tls,
            transport=transport,
        )
        self._has_health: bool | None = None  # None: not asked yet
        self._has_metrics: bool | None = None
        self._props: tuple[int | None, int | None] | None = None
        self._is_llama_server = False  # /props answered as llama-server's does
        self._kind = ""
        self._hit_counts: tuple[float, float] | None = None  # at the last new queries
        self._last_rate: float | None = None

    def _get(self, url: str) -> Any:
        key = self.spec.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self._client.get(url, headers=headers)

    def check(self) -> ProbeResult:
        spec = self.spec
        root = spec.server_root
        try:
            if self._has_health is not False:
                health = self._get(f"{root}/health")
                if health.status_code == 404:
                    self._has_health = False
                elif health.status_code == 503:
                    return ProbeResult(False, f"{spec.label} is starting: "
                                              f"{server_message(health.content)}")
                elif health.status_code >= 400:
                    return ProbeResult(False, f"{spec.label}: /health answered "
                                              f"{health.status_code}")
                else:
                    self._has_health = True
            models = self._get(f"{spec.base_url}/models")
        except self._httpx.ConnectError as exc:
            return ProbeResult(False, f"{spec.label} is unreachable ({exc}); "
                                      "is the server running?")
        except self._httpx.TimeoutException:
            return ProbeResult(False, f"{spec.label} is unreachable: no answer within "
                                      f"{self._client.timeout.read:g} s")
        except self._httpx.HTTPError as exc:
            return ProbeResult(False, f"{spec.label} is unreachable: {exc or type(exc).__name__}")
        if models.status_code in (401, 403):
            return ProbeResult(False, f"{spec.label} refused the API key ({models.status_code})")
        if models.status_code >= 400:
            return ProbeResult(False, f"{spec.label}: /v1/models answered {models.status_code}: "
                                      f"{server_message(models.content)}")
        try:
            listing = models.json()
            ids = _model_ids(listing)
        except ValueError:
            return ProbeResult(False, f"{spec.label}: /v1/models is not JSON; is this an "
                                      "OpenAI-compatible server?")
        if ids and spec.model not in ids:
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            return ProbeResult(False, f"{spec.label}: the server has no model {spec.model!r} "
                                      f"(it serves: {shown})")
        slots, n_ctx = self._read_props(root)
        load = self._read_metrics(root)
        if not self._kind:
            self._kind = _owned_by_kind(listing) or (
                LLAMA_SERVER if self._is_llama_server else "")
        return ProbeResult(True, f"serves {spec.model}", slots, n_ctx, load, self._kind)

    def _read_props(self, root: str) -> tuple[int | None, int | None]:
        if self._props is None:
            slots = n_ctx = None
            try:
                props = self._get(f"{root}/props")
                if props.status_code == 200:
                    data = props.json()
                    slots = data.get("total_slots")
                    self._is_llama_server = (isinstance(slots, int)
                                             and "default_generation_settings" in data)
                    n_ctx = (data.get("default_generation_settings") or {}).get("n_ctx")
            except (self._httpx.HTTPError, ValueError, AttributeError):
                pass
            self._props = (slots if isinstance(slots, int) and slots > 0 else None,
                           n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None)
        return self._props

    def _read_metrics(self, root: str) -> ServerLoad | None:
        if self._has_metrics is False:
            return None
        try:
            response = self._get(f"{root}/metrics")
        except self._httpx.HTTPError:
            return None
        if response.status_code != 200:
            load = None
        else:
            load = parse_metrics(response.text, self._hit_counts)
            if load is not None and load.prefix_cache_counts is not None:
                # No new queries: keep the last rate's base, so the rate
                # stays that of the last traffic rather than falling to None.
                if (self._hit_counts is None
                        or load.prefix_cache_counts[1] != self._hit_counts[1]):
                    self._hit_counts = load.prefix_cache_counts
                elif self._last_rate is not None:
                    load = replace(load, prefix_cache_hit_rate=self._last_rate)
            if load is not None:
                self._last_rate = load.prefix_cache_hit_rate
            if load is not None and not self._kind:
                self._kind = metrics_kind(response.text)
        if self._has_metrics is None:
            self._has_metrics = load is not None
        return load

    def close(self) -> None:
        self._client.close()


MODELS_NAMED = 10  # a refusal lists this many of a server's models, then counts the rest
LOOKUP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ResolvedEndpoint:
    spec: EndpointSpec
    note: str  # what the server said, for the user; '' when the text named the model


def served_models(spec: EndpointSpec, timeout_s: float = LOOKUP_TIMEOUT_S,
                  transport: Any = None) -> list[str]:
    """The models the server at spec.base_url lists at /v1/models (its key
    sent as for any request). Raises EndpointError saying why it cannot tell:
    unreachable, no answer in time, the key refused, an error, or an answer
    that is not a list of models."""
    import httpx

    base = spec.base_url
    hint = f"name the model after a #, for example {base}#llama3"
    key = spec.api_key()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, spec.connect_timeout_s))
    try:
        with httpx.Client(timeout=timeout, verify=spec.verify_tls, transport=transport) as client:
            response = client.get(f"{base}/models", headers=headers)
    except httpx.ConnectError as exc:
        raise EndpointError(f"cannot ask {base} which model it serves: it is unreachable "
                            f"({exc}); is the server running? Or {hint}") from exc
    except httpx.TimeoutException as exc:
        waited = timeout.connect if isinstance(exc, httpx.ConnectTimeout) else timeout_s
        raise EndpointError(f"cannot ask {base} which model it serves: no answer within "
                            f"{waited:g} s; or {hint}") from exc
    except httpx.HTTPError as exc:
        raise EndpointError(f"cannot ask {base} which model it serves: "
                            f"{exc or type(exc).__name__}; or {hint}") from exc
    if response.status_code in (401, 403):
        raise EndpointError(f"{base} refused the API key ({response.status_code}) when asked "
                            f"which model it serves; store it with zeta-desktop --set-api-key "
                            f"{base}, or {hint}")
    if response.status_code >= 400:
        raise EndpointError(f"{base}/models answered {response.status_code}: "
                            f"{server_message(response.content)}; or {hint}")
    try:
        listing = response.json()
    except ValueError:
        listing = None
    rows = listing.get("data", listing.get("models")) if isinstance(listing, dict) else None
    if not isinstance(rows, list):
        raise EndpointError(f"{base}/models did not answer with a list of models "
                            f"({server_message(response.content, 80)}); is this an "
                            f"OpenAI-compatible server? Or {hint}")
    return list(dict.fromkeys(_model_ids(listing)))  # in its order, each once


def resolve_endpoint(text: str, *, timeout_s: float = LOOKUP_TIMEOUT_S, transport: Any = None,
                     **settings: Unpack[EndpointSettings]) -> ResolvedEndpoint:
    """An endpoint as the user typed it. With its `#model` it is only parsed
    (no network); without, the server is asked: the one model it serves is
    used, and the note says so. Blocks for up to `timeout_s`: never call it
    on a GUI thread. Raises EndpointError with what to do: several models
    (listed, up to MODELS_NAMED), none, or the server could not be asked."""
    base, model = split_endpoint(text)
    if model:
        return ResolvedEndpoint(EndpointSpec(base_url=base, model=model, **settings), "")
    models = served_models(EndpointSpec(base_url=base, model="", **settings), timeout_s,
                           transport)
    if not models:
        raise EndpointError(f"{base}/models lists no model; name the one to use after a #, "
                            f"for example {base}#llama3")
    if len(models) > 1:
        named = ", ".join(models[:MODELS_NAMED])
        more = len(models) - MODELS_NAMED
        rest = f" and {more} more" if more > 0 else ""
        raise EndpointError(f"{base} serves {len(models)} models: {named}{rest}; choose one by "
                            f"adding #NAME, for example {base}#{models[0]}")
    spec = EndpointSpec(base_url=base, model=models[0], **settings)
    return ResolvedEndpoint(spec, f"the server at {base} serves one model, {models[0]}: "
                                  "using it")
