"""Zeta's OpenAI-compatible server against the session it serves, and against LiteLLM.

Part 1, what the server costs. One session (the demo model in all three
roles, one thread each, the router on its defaults, as in `make bench`) is
asked the same prompts two ways in the same run, 1, 4 and 16 at a time in a
closed loop (each client sends its next prompt when its answer has ended):

- in-process: straight to the door, `ChatApi.ask`, with a feed that waits
  for the turn's end;
- served: through `ZetaServer` on loopback, by that many streaming HTTP
  clients (httpx, one asyncio task each) in a process of their own
  (serve_clients.py), as a real client is another program.

Both sides send the same messages (the app's system message, then the
prompt) with `model` auto, the same fixed answer length and temperature 0.
Every `ask` of both sides goes through one thin wrapper (`Stamps`) that notes
when the session got the request and when the turn's first words and its end
reached the server's feed: a served request is matched to its own turn by the
OpenAI `user` field, which the server hands on as the turn's client. So
"time to first token the server adds" is measured per request: the client's
time to first words (sent to first content chunk read) minus that same
turn's in-session time (asked to first words).

- Figures per concurrency: tokens/s (answer tokens over the block's wall
  time; served / in-process, paired by repeat), each request's decode rate,
  time to first token on both sides and the server's addition (p50, p95),
  end-to-end p50 and p95 on both sides, errors.
- Order. Each repeat runs both sides at each concurrency, in an order that
  alternates from one block to the next, so drift on a shared machine
  favours neither side.
- Prompts. Self-Instruct's 252 user-oriented instructions (Wang et al., 2022:
  emails, recipes, rewrites, small code tasks), a source group the classifier
  never trained on (routing_workload.py's held-out set) and none of MT-bench,
  Vicuna-80, WizardLM's test set, GSM8K, MBPP or CodeAlpaca; those that fit
  the context, in the order of a hash of their text.

Part 2, Zeta's server against LiteLLM over HTTP. Three llama-cpp-python
servers on loopback (as `make bench-peer` starts them: the demo model, one
thread each, answers of 40/23/80 tokens for coder/embedder/reasoner). Zeta's
session has the three as its roles' replicas and is served by `ZetaServer`;
the same streaming clients ask it for `model` auto. LiteLLM's Router runs in
this process over the same servers, set up as bench-peer sets it up
(peer_bench.py's `run_litellm`). LiteLLM's proxy (`litellm --config`) needs
the `litellm[proxy]` extra, which the `[peer]` extra does not install, so the
Router it wraps is measured instead: Zeta's side pays one HTTP hop more.
- Same knowledge and budgets, as bench-peer gives them: the same system
  message, per-role answer lengths and temperature 0 in each side's own
  configuration, 2 retries, a 600 s timeout, one hello to each server first
  (Zeta's through its server, naming each role).
- LiteLLM set-ups: one group with latency-based routing (bench-peer's best
  LiteLLM set-up at 7ece022, with no task information) and one group per
  kind with least-busy (the classifier's kind, as bench-peer gives it).
- Load. Arrivals at 0.85 of the servers' rate measured in this run (all three
  busy at once), seeded (router_bench's evaluation seeds), held-out workload
  prompts; the same arrivals for every side, in an order rotated per seed.

    make bench-serve            # about 11 minutes on 2 cores
    make bench-serve QUICK=1    # seconds of load: a smoke run, no verdict

Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import

from bench_results import demo_model, print_checks, quick_parser, write_results
from router_bench import EVAL_SEEDS, bench_config
from routing_workload import (
    CORPUS,
    MAX_CHARS,
    bootstrap_ratio,
    finite,
    held_out_groups,
    load_prompts,
    pct,
    source_group,
    workload,
)
from serve_clients import ClientProcess

from zeta_desktop.core.chat.api import (
    AnswerOptions,
    AnswerText,
    ChatApi,
    ChatMessage,
    TurnEnded,
    TurnEvent,
    TurnFeed,
    TurnRouted,
    WorkerState,
    open_chat,
)
from zeta_desktop.core.config import load_config
from zeta_desktop.core.conversation.model import DEFAULT_SYSTEM_PROMPT
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig, RouterConfig, ServerConfig
from zeta_desktop.server.runner import ZetaServer

ROOT = Path(__file__).resolve().parents[1]
PROMPT_SOURCE = "self-instruct/user-oriented"
CONCURRENCY = (1, 4, 16)
# Requests per block: enough rounds at 16 clients for a p95 past the first wave.
PROMPTS_AT = {1: 24, 4: 32, 16: 64}
REPEATS = 3
ANSWER_TOKENS = 48
LOAD_DEADLINE_S = 120.0
TIMEOUT_S = 600.0
PEER_SEEDS = 3
PEER_PROMPTS = 24
LITELLM_SETUPS = ("one-group latency-based-routing", "per-kind least-busy")
ZETA = "zeta served auto"
# Targets from the issue.
TOKENS_RATIO_MIN = 0.97
TTFT_ADDED_P50_MS = 5.0
TTFT_ADDED_P95_MS = 20.0
P95_RATIO_MAX = 1.1


def everyday_prompts() -> list[str]:
    """Self-Instruct's user-oriented instructions that fit, in hash order (see the docstring)."""
    if PROMPT_SOURCE not in held_out_groups():
        raise SystemExit(f"serve_bench: {PROMPT_SOURCE} is no longer held out from training")
    prompts = set()
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line:
            row = json.loads(line)
            if source_group(row["source"]) == PROMPT_SOURCE and len(row["prompt"]) <= MAX_CHARS:
                prompts.add(row["prompt"])
    return sorted(prompts, key=lambda p: hashlib.sha1(p.encode()).hexdigest())


def messages_for(prompt: str) -> list[ChatMessage]:
    return [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": prompt}]


# -- the session's side of each request ------------------------------------------------


@dataclass
class TurnTimes:
    asked: float
    first: float | None = None  # the first words reached the asker's feed
    ended: float | None = None
    tokens: int = 0
    role: str = ""
    error: str = ""


class Stamps:
    """Wraps the door's `ask`, for both sides alike: when the session got each
    request, and when its turn's first words and its end reached the asker's
    feed. Keyed by the request's client name (the server passes `api: <user>`)."""

    def __init__(self, api: ChatApi) -> None:
        self._ask = api.ask
        api.ask = self.ask  # type: ignore[method-assign]  # the server calls api.ask
        self.turns: dict[str, TurnTimes] = {}
        self._lock = threading.Lock()

    def ask(self, messages: list[ChatMessage], feed: TurnFeed, **kwargs: Any) -> int:
        times = TurnTimes(time.perf_counter())
        clock = time.perf_counter

        def stamped(event: TurnEvent) -> None:
            if isinstance(event, AnswerText):
                if times.first is None and event.piece:
                    times.first = clock()
            elif isinstance(event, TurnRouted):
                times.role = times.role or event.decision.role
            elif isinstance(event, TurnEnded):
                times.ended = clock()
                times.tokens = event.stats.n_tokens if event.stats else 0
                times.error = event.error or ("stopped" if event.stopped else "")
            feed(event)

        with self._lock:
            self.turns[kwargs.get("client", "")] = times
        return self._ask(messages, stamped, **kwargs)

    def get(self, client: str) -> TurnTimes | None:
        with self._lock:
            return self.turns.get(client)


# -- CPU time by whom ------------------------------------------------------------------


def _stat_cpu_s(path: str) -> float:
    """utime + stime from a /proc stat file (fields 14 and 15), in seconds."""
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcPauses:
    """Time this process spent in the garbage collector (it holds the
    interpreter lock: every thread's Python waits), and its full collections."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._began = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._began
        self.full += info["generation"] == 2


GC_PAUSES = GcPauses()


def cpu_now(clients: ClientProcess) -> dict[str, float]:
    """CPU seconds so far: the server's thread, the model workers, the rest of
    this process, and the client process."""
    total = _stat_cpu_s("/proc/self/stat")
    groups = {"server": 0.0, "models": 0.0}
    for thread in threading.enumerate():
        group = ("server" if thread.name == "zeta-server"
                 else "models" if thread.name.startswith("zeta-model-") else None)
        if group is None or thread.native_id is None:
            continue
        try:
            groups[group] += _stat_cpu_s(f"/proc/self/task/{thread.native_id}/stat")
        except OSError:  # ended meanwhile
            continue
    return {**groups, "rest_of_process": total - sum(groups.values()),
            "client_process": _stat_cpu_s(f"/proc/{clients.process.pid}/stat"),
            "gc_pauses": GC_PAUSES.seconds, "gc_full_collections": GC_PAUSES.full}


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in after}


# -- one block: one side, one concurrency ----------------------------------------------


@dataclass
class Request:
    sent: float | None = None
    first: float | None = None
    done: float | None = None
    tokens: int = 0
    role: str = ""
    error: str = ""
    session: TurnTimes | None = None  # served requests: the same turn, seen in the session

    @property
    def failed(self) -> bool:
        return bool(self.error) or self.done is None

    @property
    def latency(self) -> float:
        return math.inf if self.failed else self.done - self.sent  # type: ignore[operator]

    @property
    def ttft(self) -> float:
        if self.first is None or self.sent is None:
            return math.inf
        return self.first - self.sent

    @property
    def decode_rate(self) -> float | None:
        if self.failed or self.first is None or self.tokens < 2 or self.done <= self.first:  # type: ignore[operator]
            return None
        return (self.tokens - 1) / (self.done - self.first)  # type: ignore[operator]


@dataclass
class Block:
    side: str
    concurrency: int
    repeat: int
    requests: list[Request] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        sent = [r.sent for r in self.requests if r.sent is not None]
        done = [r.done for r in self.requests if r.done is not None]
        return max(done) - min(sent) if sent and done else math.nan

    @property
    def tokens_per_s(self) -> float:
        return sum(r.tokens for r in self.requests if not r.failed) / self.wall_s


def ask_in_process(api: ChatApi, stamps: Stamps, asks: list[tuple[str, str]], concurrency: int,
                   options: AnswerOptions, role: str | None = None) -> list[Request]:
    """`concurrency` threads, each asking the door its next (tag, prompt) once
    its last answer has ended."""
    requests = [Request() for _ in asks]
    pending = iter(range(len(asks)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            tag, prompt = asks[index]
            ended = threading.Event()

            def feed(event: TurnEvent, ended: threading.Event = ended) -> None:
                if isinstance(event, TurnEnded):
                    ended.set()

            api.ask(messages_for(prompt), feed, role=role, options=options,
                    client=f"api: {tag}")
            request = requests[index]
            if not ended.wait(TIMEOUT_S):
                request.error = f"no end in {TIMEOUT_S:g} s"
            times = stamps.get(f"api: {tag}")
            assert times is not None
            request.sent, request.first, request.done = times.asked, times.first, times.ended
            request.tokens, request.role = times.tokens, times.role
            request.error = request.error or times.error

    threads = [threading.Thread(target=client, name=f"bench-client-{i}")
               for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return requests


def chat_body(model: str, prompt: str, tag: str, max_tokens: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages_for(prompt), "stream": True,
                            "stream_options": {"include_usage": True}, "user": tag}
    if max_tokens is not None:
        body |= {"max_tokens": max_tokens, "temperature": 0.0}
    return body


def as_request(record: dict[str, Any], stamps: Stamps | None, tag: str) -> Request:
    tokens = record["tokens"] if record["tokens"] is not None else record["chunks"]
    request = Request(record["sent"], record["first"], record["done"], tokens, record["role"],
                      record["error"])
    if stamps is not None:
        request.session = stamps.get(f"api: {tag}")
    return request


def ask_served(clients: ClientProcess, url: str, stamps: Stamps, asks: list[tuple[str, str]],
               concurrency: int, model: str = "auto",
               max_tokens: int | None = ANSWER_TOKENS) -> list[Request]:
    job = {"kind": "closed", "url": url, "concurrency": concurrency,
           "requests": [{"body": chat_body(model, prompt, tag, max_tokens)}
                        for tag, prompt in asks]}
    records = clients.run(job)
    return [as_request(record, stamps, tag)
            for record, (tag, _prompt) in zip(records, asks, strict=True)]


# -- figures -------------------------------------------------------------------------


def ms(seconds: Iterable[float], p: float) -> float | None:
    values = list(seconds)
    return finite(pct(values, p) * 1000) if values else None


def side_figures(blocks: list[Block]) -> dict[str, Any]:
    requests = [r for b in blocks for r in b.requests]
    rates = [rate for r in requests if (rate := r.decode_rate) is not None]
    return {
        "requests": len(requests),
        "errors": sum(r.failed for r in requests),
        "error_examples": sorted({r.error for r in requests if r.error})[:3],
        "tokens": sum(r.tokens for r in requests if not r.failed),
        "tokens_per_s_per_repeat": [b.tokens_per_s for b in blocks],
        "tokens_per_s": statistics.median(b.tokens_per_s for b in blocks),
        "decode_tok_s_median": statistics.median(rates) if rates else None,
        "ttft_ms": {"p50": ms((r.ttft for r in requests), 50),
                    "p95": ms((r.ttft for r in requests), 95)},
        "p50_s": finite(pct([r.latency for r in requests], 50)),
        "p95_s": finite(pct([r.latency for r in requests], 95)),
        "p95_s_per_repeat": [finite(pct([r.latency for r in b.requests], 95)) for b in blocks],
        "roles": dict(Counter(r.role for r in requests)),
        # CPU seconds per 1,000 answer tokens, by whom (the client process is idle
        # in-process; the "rest" holds the in-process side's waiting threads)
        "cpu_s_per_1k_tokens": {
            key: 1000 * sum(b.cpu_s[key] for b in blocks)
            / max(1, sum(r.tokens for b in blocks for r in b.requests if not r.failed))
            for key in blocks[0].cpu_s},
    }


def added_figures(blocks: list[Block]) -> dict[str, Any]:
    """What the server adds to each served request, beside the same turn in the session."""
    paired = [(r, r.session) for b in blocks for r in b.requests
              if not r.failed and r.session is not None and r.session.first is not None
              and r.first is not None and r.session.ended is not None]
    ttft = [(r.first - r.sent) - (s.first - s.asked) for r, s in paired]  # type: ignore[operator]
    ingress = [s.asked - r.sent for r, s in paired]  # type: ignore[operator]
    egress = [r.first - s.first for r, s in paired]  # type: ignore[operator]
    end = [r.done - s.ended for r, s in paired]  # type: ignore[operator]
    whole = [(r.done - r.sent) - (s.ended - s.asked) for r, s in paired]  # type: ignore[operator]
    # The models' own pace on the served turns, as the session saw it.
    decode = [(s.tokens - 1) / (s.ended - s.first) for _r, s in paired  # type: ignore[operator]
              if s.tokens > 1 and s.ended > s.first]  # type: ignore[operator]
    return {
        "requests": len(paired),
        "ttft_added_ms": {"p50": ms(ttft, 50), "p95": ms(ttft, 95), "max": ms(ttft, 100)},
        # where it goes: the request's way in (sent -> ask), the first words' way out
        "request_to_ask_ms": {"p50": ms(ingress, 50), "p95": ms(ingress, 95)},
        "first_words_out_ms": {"p50": ms(egress, 50), "p95": ms(egress, 95)},
        "end_out_ms": {"p50": ms(end, 50), "p95": ms(end, 95)},
        "end_to_end_added_ms": {"p50": ms(whole, 50), "p95": ms(whole, 95)},
        "session_ttft_ms": {"p50": ms((s.first - s.asked for _r, s in paired), 50),  # type: ignore[operator]
                            "p95": ms((s.first - s.asked for _r, s in paired), 95)},  # type: ignore[operator]
        "session_decode_tok_s_median": statistics.median(decode) if decode else None,
        "values_ms": [v * 1000 for v in ttft],
    }


def ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or not bottom or math.isnan(top) or math.isnan(bottom):
        return None
    return top / bottom


def compare(direct: list[Block], served: list[Block]) -> dict[str, Any]:
    ours, theirs = side_figures(served), side_figures(direct)
    added = added_figures(served)
    per_repeat = [ratio(s.tokens_per_s, d.tokens_per_s)
                  for d, s in zip(direct, served, strict=True)]
    return {
        "prompts_per_block": len(direct[0].requests),
        "in_process": theirs,
        "served": ours,
        "tokens_per_s_ratio": statistics.median(r for r in per_repeat if r is not None),
        "tokens_per_s_ratio_per_repeat": per_repeat,
        "decode_rate_ratio": ratio(ours["decode_tok_s_median"], theirs["decode_tok_s_median"]),
        "p95_ratio": ratio(ours["p95_s"], theirs["p95_s"]),
        "p50_ratio": ratio(ours["p50_s"], theirs["p50_s"]),
        "added": added,
        # Whether serving slowed the models themselves (the session's own
        # view of the served turns), apart from what reaching the client adds.
        "session_decode_rate_ratio": ratio(added["session_decode_tok_s_median"],
                                           theirs["decode_tok_s_median"]),
    }


# -- part 1 ----------------------------------------------------------------------------


def session_config(model: Path) -> AppConfig:
    """router_bench's: the demo model in three roles, one thread each, n_ctx
    1024, the router's defaults (its fault runs' short watchdog put back)."""
    config = bench_config(model, RouterConfig().policy)
    config.router.token_timeout_s = RouterConfig().token_timeout_s
    return config


def open_session(config: AppConfig, folder: Path) -> ChatApi:
    api = open_chat(load_config(folder / "config.toml"), config, LlamaEngine.load,
                    keep_history=False)
    api.start()
    loaded = api.wait_loaded(LOAD_DEADLINE_S)
    not_ready = {name: f"{rt.worker.state.value}: {rt.worker.detail}"
                 for name, rt in api.session.roles.items()
                 if rt.worker.state not in (WorkerState.READY, WorkerState.BUSY)}
    if not loaded or not_ready:
        api.shutdown()
        raise SystemExit(f"serve_bench: roles not ready after {LOAD_DEADLINE_S:g} s: {not_ready}")
    if config.router.semantic and not api.session.embedding_vote_checked.wait(60):
        api.shutdown()
        raise SystemExit("serve_bench: the embedding vote check did not finish in 60 s")
    return api


def serve(api: ChatApi) -> tuple[ZetaServer, str]:
    server = ZetaServer(api, ServerConfig(port=0), key="")
    return server, server.start().base_url + "/chat/completions"


def check_warm(requests: list[Request], what: str) -> None:
    failed = [r.error or "no end" for r in requests if r.failed]
    if failed:
        raise SystemExit(f"serve_bench: a warm-up answer {what} failed: {failed[0]}")


def part_one(model: Path, clients: ClientProcess, quick: bool, folder: Path,
             say: Callable[[str], None], repeats: int | None = None,
             concurrency: tuple[int, ...] | None = None) -> dict[str, Any]:
    concurrency = concurrency or (CONCURRENCY[:2] if quick else CONCURRENCY)
    repeats = repeats or (1 if quick else REPEATS)
    answer_tokens = 16 if quick else ANSWER_TOKENS
    prompts_at = {c: 6 if quick else PROMPTS_AT.get(c, 4 * c) for c in concurrency}
    pool = everyday_prompts()
    options = AnswerOptions(max_tokens=answer_tokens, temperature=0.0)
    api = open_session(session_config(model), folder)
    stamps = Stamps(api)
    server, url = serve(api)
    blocks: dict[tuple[str, int], list[Block]] = {}
    try:
        # Each model answers once each way, so no measured request pays a first time.
        roles = api.chat_roles()
        check_warm(ask_in_process(api, stamps, [(f"warm-{r}", "hello") for r in roles], 1,
                                  options), "in-process")
        for role in roles:
            check_warm(ask_served(clients, url, stamps, [(f"warm-served-{role}", "hello")], 1,
                                  model=role, max_tokens=answer_tokens), "served")
        say(f"part 1: {len(pool)} prompts from {PROMPT_SOURCE}; answers of {answer_tokens} "
            f"tokens at temperature 0; {repeats} repeat(s) at concurrency {list(concurrency)}")
        turn = 0
        for repeat in range(repeats):
            for c in concurrency:
                n = prompts_at[c]
                start = (repeat * n) % len(pool)
                prompts = [pool[(start + i) % len(pool)] for i in range(n)]
                sides = ("in-process", "served") if turn % 2 == 0 else ("served", "in-process")
                turn += 1
                for side in sides:
                    asks = [(f"r{repeat}-c{c}-{side}-{i}", p) for i, p in enumerate(prompts)]
                    before = cpu_now(clients)
                    if side == "in-process":
                        requests = ask_in_process(api, stamps, asks, c, options)
                    else:
                        requests = ask_served(clients, url, stamps, asks, c,
                                              max_tokens=answer_tokens)
                    block = Block(side, c, repeat, requests, cpu_spent(before, cpu_now(clients)))
                    blocks.setdefault((side, c), []).append(block)
                    p95 = pct([r.latency for r in requests], 95)
                    say(f"  repeat {repeat} c={c:2d} {side:10s} {block.tokens_per_s:6.1f} tok/s "
                        f"p95 {p95:6.2f} s  errors {sum(r.failed for r in requests)}  "
                        f"roles {dict(Counter(r.role for r in requests))}")
    finally:
        server.stop()
        api.shutdown()
    return {str(c): compare(blocks[("in-process", c)], blocks[("served", c)])
            for c in concurrency}


# -- part 2 ----------------------------------------------------------------------------


def part_two(model: Path, clients: ClientProcess, quick: bool, folder: Path,
             say: Callable[[str], None]) -> dict[str, Any]:
    from peer_bench import (
        LOAD_FACTOR,
        measure_capacity,
        messages,
        run_litellm,
        start_servers,
        summarize,
        zeta_config,
    )
    from router_bench import Record

    from zeta_desktop.core.routing.classifier import TaskClassifier

    seeds = list(EVAL_SEEDS[: 1 if quick else PEER_SEEDS])
    per_seed = 6 if quick else PEER_PROMPTS
    classify = TaskClassifier()
    pools = load_prompts()
    servers = start_servers(model)
    sides = [ZETA, *LITELLM_SETUPS]
    results: dict[str, dict[int, list[Record]]] = {side: {} for side in sides}
    api = server = None
    try:
        capacity = measure_capacity(servers, pools, 2 if quick else 4)
        rate = LOAD_FACTOR * capacity["answers_per_s"]
        seconds = per_seed / rate
        say(f"part 2: {capacity['answers_per_s']:.2f} answers/s with the three servers busy "
            f"at once; arrivals {rate:.2f}/s for {seconds:.0f} s per seed; seeds {seeds}")
        api = open_session(zeta_config(servers), folder)
        server, url = serve(api)

        def zeta(arrivals: list[Any], seed: int) -> list[Record]:
            # The warm-up every side gets: one hello to each server, here
            # through Zeta's server naming each role.
            warm = [{"body": {"model": role, "messages": messages("hello"), "stream": True}}
                    for role in servers]
            for record in clients.run({"kind": "closed", "url": url, "concurrency": 1,
                                       "requests": warm}):
                if record["error"] or record["done"] is None:
                    raise SystemExit(f"serve_bench: Zeta's warm-up failed: {record['error']}")
            job = {"kind": "open", "url": url, "requests": [
                {"at": a.at, "body": {"model": "auto", "messages": messages(a.prompt),
                                      "stream": True, "user": f"s{seed}-{i}"}}
                for i, a in enumerate(arrivals)]}
            return [Record(a.kind, rec["sent"] or 0.0, rec["role"], rec["first"], rec["done"],
                           rec["chunks"], rec["error"])
                    for a, rec in zip(arrivals, clients.run(job), strict=True)]

        for index, seed in enumerate(seeds):
            arrivals = workload(seed, seconds, rate, pools)
            order = sides[index % len(sides):] + sides[:index % len(sides)]
            for side in order:
                outcomes = (zeta(arrivals, seed) if side == ZETA
                            else run_litellm(side, servers, arrivals, classify))
                results[side][seed] = outcomes
                say(f"  seed {seed} {side:34s} p95 {pct([o.latency for o in outcomes], 95):6.2f}"
                    f" s  errors {sum(o.lost for o in outcomes)}")
    finally:
        if server is not None:
            server.stop()
        if api is not None:
            api.shutdown()
        for llama in servers.values():
            llama.stop()
    rng = random.Random(0)
    rows = {side: summarize(by_seed, rng) for side, by_seed in results.items()}
    p95 = {side: {s: pct([o.latency for o in runs], 95) for s, runs in by_seed.items()}
           for side, by_seed in results.items()}
    versus = {}
    for setup in [*LITELLM_SETUPS, "best"]:
        against = {s: p95[s] for s in LITELLM_SETUPS} if setup == "best" else {setup: p95[setup]}
        point, low, high = bootstrap_ratio(p95[ZETA], against, rng)
        versus[setup] = {"ratio": finite(point), "ci95": [finite(low), finite(high)]}
    return {"capacity": capacity, "arrival_rate": rate, "seeds": seeds,
            "prompts_per_seed": per_seed, "sides": rows, "zeta_vs_litellm": versus}


# -- report ----------------------------------------------------------------------------


def show(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pooled_added(part1: dict[str, Any]) -> dict[str, float | None]:
    values = [v / 1000 for row in part1.values() for v in row["added"]["values_ms"]]
    return {"p50": ms(values, 50), "p95": ms(values, 95), "requests": len(values)}


def print_part_one(part1: dict[str, Any], added: dict[str, Any]) -> None:
    print("\npart 1: served / in-process, same session, same run (in-process is the baseline)")
    print(f"  {'c':>3s} {'tok/s in':>9s} {'served':>7s} {'ratio':>6s} {'(repeats)':18s} "
          f"{'decode':>6s} {'ttft+ p50':>9s} {'p95 ms':>7s} {'p95 in':>7s} {'served':>7s} "
          f"{'ratio':>6s} {'errors':>6s}")
    for c, row in part1.items():
        a, s = row["in_process"], row["served"]
        repeats = ",".join(show(r, 3) for r in row["tokens_per_s_ratio_per_repeat"])
        print(f"  {c:>3s} {a['tokens_per_s']:9.1f} {s['tokens_per_s']:7.1f} "
              f"{row['tokens_per_s_ratio']:6.3f} ({repeats:16s}) "
              f"{show(row['decode_rate_ratio'], 3):>6s} "
              f"{show(row['added']['ttft_added_ms']['p50']):>9s} "
              f"{show(row['added']['ttft_added_ms']['p95']):>7s} {show(a['p95_s']):>7s} "
              f"{show(s['p95_s']):>7s} {show(row['p95_ratio'], 3):>6s} "
              f"{a['errors']:>2d}/{s['errors']:<3d}")
    print("  time to first token, ms (p50 / p95): in-process | served | the server's "
          "addition, split into request->ask and first words out")
    for c, row in part1.items():
        a, s, add = row["in_process"]["ttft_ms"], row["served"]["ttft_ms"], row["added"]
        print(f"  {c:>3s} {show(a['p50'])} / {show(a['p95'])} | {show(s['p50'])} / "
              f"{show(s['p95'])} | {show(add['ttft_added_ms']['p50'])} / "
              f"{show(add['ttft_added_ms']['p95'])} = in {show(add['request_to_ask_ms']['p50'])}"
              f" / {show(add['request_to_ask_ms']['p95'])} + out "
              f"{show(add['first_words_out_ms']['p50'])} / "
              f"{show(add['first_words_out_ms']['p95'])}")
    for c, row in part1.items():
        print(f"  {c:>3s} each request's decode rate, served / in-process: "
              f"{show(row['decode_rate_ratio'], 3)} as the client reads it, "
              f"{show(row['session_decode_rate_ratio'], 3)} in the session")
    print("  CPU seconds per 1,000 answer tokens, in-process | served: models, server thread, "
          "rest of the process, client process; and seconds paused in this process's gc")
    for c, row in part1.items():
        a, s = row["in_process"]["cpu_s_per_1k_tokens"], row["served"]["cpu_s_per_1k_tokens"]
        keys = ("models", "server", "rest_of_process", "client_process", "gc_pauses")
        print(f"  {c:>3s} {' '.join(show(a[k]) for k in keys)} | "
              f"{' '.join(show(s[k]) for k in keys)}")
    print(f"  the server's addition to time to first token, all {added['requests']} served "
          f"requests: p50 {show(added['p50'])} ms, p95 {show(added['p95'])} ms")


def print_part_two(part2: dict[str, Any]) -> None:
    print("\npart 2: Zeta's server (auto) against LiteLLM's Router, the same servers and "
          "arrivals: median over seeds of each seed's p95 (95 % interval)")
    for side, row in part2["sides"].items():
        ci = row["median_p95_ci95"]
        versus = part2["zeta_vs_litellm"].get(side)
        against = (f"  zeta/it {show(versus['ratio'])} ({show(versus['ci95'][0])}-"
                   f"{show(versus['ci95'][1])})" if versus else "")
        print(f"  {side:34s} p95 {show(row['median_p95_s'])} s ({show(ci[0])}-{show(ci[1])}) "
              f"p50 {show(row['p50_s'])} s  fit {row['fit_acceptable']:.0%}  errors "
              f"{row['lost']}{against}")
    best = part2["zeta_vs_litellm"]["best"]
    print(f"  zeta / best LiteLLM set-up: {show(best['ratio'])} ({show(best['ci95'][0])}-"
          f"{show(best['ci95'][1])})")


def checks_for(part1: dict[str, Any], added: dict[str, Any],
               part2: dict[str, Any]) -> dict[str, bool]:
    checks = {f"c={c}: served tokens/s >= {TOKENS_RATIO_MIN} x in-process":
              row["tokens_per_s_ratio"] >= TOKENS_RATIO_MIN for c, row in part1.items()}
    if part2:
        checks["part 2: Zeta's server lost no request"] = part2["sides"][ZETA]["lost"] == 0
    if not part1:
        return checks
    checks[f"time to first token the server adds: p50 <= {TTFT_ADDED_P50_MS:g} ms"] = (
        added["p50"] is not None and added["p50"] <= TTFT_ADDED_P50_MS)
    checks[f"time to first token the server adds: p95 <= {TTFT_ADDED_P95_MS:g} ms"] = (
        added["p95"] is not None and added["p95"] <= TTFT_ADDED_P95_MS)
    top = part1[str(max(int(c) for c in part1))]
    checks[f"c={max(int(c) for c in part1)}: no served request failed"] = (
        top["served"]["errors"] == 0)
    checks[f"c={max(int(c) for c in part1)}: served p95 <= {P95_RATIO_MAX} x in-process"] = (
        top["p95_ratio"] is not None and top["p95_ratio"] <= P95_RATIO_MAX)
    return checks


def tree_state() -> dict[str, Any]:
    """The commit measured, and whether the package's files differ from it."""
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                             check=False)
        return run.stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted": git("status", "--porcelain", "--", "zeta_desktop").splitlines()}


def main() -> int:
    parser = quick_parser(__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"part 1's repeats (default {REPEATS}; quick: 1)")
    parser.add_argument("--concurrency", default=None,
                        help="part 1's client counts, comma-separated (default 1,4,16)")
    parser.add_argument("--part", choices=("1", "2"), default=None,
                        help="only part 1 (served against in-process) or 2 (against LiteLLM)")
    args = parser.parse_args()
    try:
        from importlib.metadata import version

        import litellm
    except ImportError:
        print("LiteLLM is not installed: run `make bench-serve` (it installs the [peer] extra)",
              file=sys.stderr)
        return 2
    litellm.suppress_debug_info = True
    logging.getLogger("zeta_desktop").setLevel(logging.ERROR)
    model = demo_model()
    began = time.perf_counter()

    def say(line: str) -> None:
        print(line, flush=True)

    state = tree_state()
    say(f"serve_bench at {state['commit']}"
        + (f" (uncommitted in zeta_desktop: {len(state['uncommitted'])} files)"
           if state["uncommitted"] else ""))
    concurrency = tuple(int(c) for c in args.concurrency.split(",")) if args.concurrency \
        else None
    part1: dict[str, Any] = {}
    part2: dict[str, Any] = {}
    clients = ClientProcess()
    try:
        with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
            if args.part != "2":
                part1 = part_one(model, clients, args.quick, Path(one), say, args.repeats,
                                 concurrency)
            if args.part != "1":
                part2 = part_two(model, clients, args.quick, Path(two), say)
    finally:
        clients.close()
    added = pooled_added(part1)
    if part1:
        print_part_one(part1, added)
    if part2:
        print_part_two(part2)
    checks = checks_for(part1, added, part2)
    print_checks(checks)
    for row in part1.values():
        row["added"].pop("values_ms")
    out = write_results("serve" if args.part is None else f"serve_part{args.part}", {
        "quick": args.quick, **state, "litellm": version("litellm"),
        "prompts": {"source": PROMPT_SOURCE, "available": len(everyday_prompts())},
        "answer_tokens": 16 if args.quick else ANSWER_TOKENS,
        "repeats": args.repeats or (1 if args.quick else REPEATS),
        "concurrency": part1, "ttft_added_ms": added, "peer": part2, "checks": checks,
        "elapsed_s": time.perf_counter() - began,
    })
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
