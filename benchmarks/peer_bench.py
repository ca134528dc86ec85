"""Zeta's router against LiteLLM's, on the same servers and the same arrivals.

Three llama-cpp-python servers on loopback each serve the demo model with one
thread: the coder's, the embedder's and the reasoner's. As in `make bench`,
answer length stands in for model size (each server's answers are 40, 23 and
80 tokens long: a 7B, a 4B and a 14B), so the servers differ in speed as
models of those sizes would. Policies, all on the same seeded arrivals:

- static: code, simple and reasoning each pinned to its own server (by the
  prompt's true kind), over plain HTTP;
- LiteLLM's Router, the three servers as one model group, with its
  `simple-shuffle`, `least-busy` and `latency-based-routing` strategies;
- Zeta's adaptive router, the three servers as its roles' endpoints.

Load is sized from this run: each server's service time is measured first,
and Poisson arrivals (plus code bursts, as in `make bench`) come at a share
of the three servers' summed service rate. Reported per policy: p50, p95 and
p99 latency, p95 time to first token, task fit (the share of prompts served
by a model of acceptable quality for their true kind, `QUALITY` in
router_bench), failures, and each policy's p95 over static's. Two
evaluation seeds are pooled.

    make bench-peer            # installs the [peer] extra (LiteLLM, pinned)
    make bench-peer QUICK=1    # fewer prompts: a smoke run

Writes benchmarks/results/peer.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx
from bench_results import demo_model, print_checks, write_results
from router_bench import (
    ACCEPTABLE_QUALITY,
    EVAL_SEEDS,
    MAX_TOKENS,
    QUALITY,
    Arrival,
    Collector,
    Record,
    load_prompts,
    pct,
    workload,
)
from servers import LlamaServer

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.config import AppConfig, ReplicaConfig, RoleConfig
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.routing.classifier import TaskKind
from zeta_desktop.core.routing.machine import MachineReading, RecordedSource

ROLES = ("coder", "embedder", "reasoner")
STATIC_ROLE = {TaskKind.CODE: "coder", TaskKind.SIMPLE: "embedder",
               TaskKind.REASONING: "reasoner"}
LITELLM_STRATEGIES = ("simple-shuffle", "least-busy", "latency-based-routing")
LOAD_FACTOR = 0.85
PROMPTS_PER_SEED = 80
ALIAS = "demo"


@dataclass
class Outcome:
    kind: TaskKind
    sent: float
    role: str = ""
    first_token: float | None = None
    done: float | None = None
    failed: str = ""


def start_servers(model: Path) -> dict[str, LlamaServer]:
    servers = {role: LlamaServer(model, ALIAS, n_ctx=1024) for role in ROLES}
    for server in servers.values():
        server.start()
    return servers


def stream_once(client: httpx.Client, server: LlamaServer, prompt: str, max_tokens: int,
                outcome: Outcome) -> None:
    body = {"model": ALIAS, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
    try:
        with client.stream("POST", f"{server.url}/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: {") and '"content"' in line and \
                        outcome.first_token is None:
                    outcome.first_token = time.perf_counter()
    except httpx.HTTPError as exc:
        outcome.failed = str(exc) or type(exc).__name__
    outcome.done = time.perf_counter()


def measure_service(servers: dict[str, LlamaServer], pools: dict[TaskKind, list[str]]
                    ) -> dict[str, float]:
    """Seconds per answer on each server, one at a time (all three at once)."""
    prompts = [pools[kind][i] for kind in (TaskKind.CODE, TaskKind.SIMPLE) for i in range(3)]
    times: dict[str, list[float]] = {role: [] for role in servers}

    def run(role: str) -> None:
        with httpx.Client(timeout=120) as client:
            for prompt in prompts:
                outcome = Outcome(TaskKind.SIMPLE, time.perf_counter())
                stream_once(client, servers[role], prompt, MAX_TOKENS[role], outcome)
                times[role].append(outcome.done - outcome.sent)  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(role,)) for role in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {role: statistics.median(values[1:]) for role, values in times.items()}


def run_static(servers: dict[str, LlamaServer], arrivals: list[Arrival]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    threads = []
    client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=200))
    start = time.perf_counter()
    for arrival in arrivals:
        delay = start + arrival.at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        role = STATIC_ROLE[arrival.kind]
        outcome = Outcome(arrival.kind, time.perf_counter(), role)
        outcomes.append(outcome)
        thread = threading.Thread(target=stream_once, args=(
            client, servers[role], arrival.prompt, MAX_TOKENS[role], outcome))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    client.close()
    return outcomes


def run_litellm(strategy: str, servers: dict[str, LlamaServer], arrivals: list[Arrival]
                ) -> list[Outcome]:
    import litellm
    from litellm import Router

    litellm.suppress_debug_info = True
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    model_list = [
        {
            "model_name": "zeta",
            "litellm_params": {
                "model": f"openai/{ALIAS}", "api_base": server.url, "api_key": "none",
                # answer length per server, as Zeta's role config sets it
                "max_tokens": MAX_TOKENS[role], "temperature": 0.0,
            },
            "model_info": {"id": role},
        }
        for role, server in servers.items()
    ]
    router = Router(model_list=model_list, routing_strategy=strategy, num_retries=0,
                    timeout=600)

    async def one(arrival: Arrival, start: float, outcome: Outcome) -> None:
        await asyncio.sleep(max(0.0, start + arrival.at - time.perf_counter()))
        outcome.sent = time.perf_counter()
        try:
            response = await router.acompletion(
                model="zeta", messages=[{"role": "user", "content": arrival.prompt}],
                stream=True)
            outcome.role = (response._hidden_params or {}).get("model_id") or ""
            async for chunk in response:
                delta = chunk.choices[0].delta if chunk.choices else None
                if delta is not None and delta.content and outcome.first_token is None:
                    outcome.first_token = time.perf_counter()
        except Exception as exc:  # LiteLLM raises its own types
            outcome.failed = f"{type(exc).__name__}: {exc}"[:200]
        outcome.done = time.perf_counter()

    async def main() -> list[Outcome]:
        start = time.perf_counter()
        outcomes = [Outcome(a.kind, start + a.at) for a in arrivals]
        await asyncio.gather(*(one(a, start, o) for a, o in zip(arrivals, outcomes,
                                                                 strict=True)))
        return outcomes

    return asyncio.run(main())


def preference(role: str) -> dict[str, float]:
    """What a user who knows these three models writes in each role's
    `preference`: by a fixed rule from `QUALITY`, never from a run: a kind the
    model answers acceptably gets its quality, one it does not gets 0.3, below
    the router's bar for taking spilled work (so the 4B never gets code)."""
    return {kind.value: q if q >= ACCEPTABLE_QUALITY else 0.3
            for kind, q in QUALITY[role].items()}


def zeta_config(servers: dict[str, LlamaServer]) -> AppConfig:
    config = AppConfig(roles={
        role: RoleConfig(replicas=[ReplicaConfig(url=server.endpoint, slots=1)],
                         max_tokens=MAX_TOKENS[role], temperature=0.0,
                         preference=preference(role))
        for role, server in servers.items()
    })
    config.router.semantic = False  # the embedding role chats here; no vote
    return config


def run_zeta(servers: dict[str, LlamaServer], arrivals: list[Arrival]) -> list[Outcome]:
    collector = Collector()
    machine = RecordedSource([MachineReading("psutil", (), 0.0, 0.0, 1.0, note="benchmark")])
    session = ChatSession(zeta_config(servers), LlamaEngine.load, listener=collector,
                          machine=machine)
    session.start()
    session.wait_loaded(120)
    try:
        for role in ROLES:  # one answer each first, as every policy's servers are warm
            tid = session.send("hello", role=role, with_history=False)
            collector.records[tid] = Record(TaskKind.SIMPLE, time.perf_counter())
        with collector.lock:
            collector.lock.wait_for(lambda: all(r.done for r in collector.records.values()), 120)
        collector.records.clear()
        start = time.perf_counter()
        for arrival in arrivals:
            delay = start + arrival.at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            turn_id = session.send(arrival.prompt, with_history=False)
            collector.records[turn_id] = Record(arrival.kind, time.perf_counter())
        with collector.lock:
            collector.lock.wait_for(lambda: all(r.done for r in collector.records.values()), 900)
    finally:
        session.shutdown()
    return [Outcome(r.kind, r.sent, r.role.split("#")[0], r.first_token, r.done, r.failed)
            for r in collector.records.values()]


def warm_all(servers: dict[str, LlamaServer]) -> None:
    with httpx.Client(timeout=120) as client:
        for role, server in servers.items():
            stream_once(client, server, "hello", MAX_TOKENS[role], Outcome(TaskKind.SIMPLE, 0))


def summarize(outcomes: list[Outcome]) -> dict:
    ok = [o for o in outcomes if not o.failed]
    latency = [o.done - o.sent for o in ok]  # type: ignore[operator]
    quality = [QUALITY[o.role][o.kind] for o in ok if o.role in QUALITY]
    return {
        "prompts": len(outcomes),
        "failures": len(outcomes) - len(ok),
        "failure_examples": sorted({o.failed for o in outcomes if o.failed})[:3],
        "p50_s": round(pct(latency, 50), 3),
        "p95_s": round(pct(latency, 95), 3),
        "p99_s": round(pct(latency, 99), 3),
        "p95_ttft_s": round(pct([o.first_token - o.sent for o in ok if o.first_token], 95), 3),
        "fit": round(sum(q >= ACCEPTABLE_QUALITY for q in quality) / max(1, len(ok)), 3),
        "served": {role: sum(1 for o in ok if o.role == role) for role in ROLES},
        "unknown_server": sum(1 for o in ok if o.role not in QUALITY),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts per seed")
    parser.add_argument("--seeds", default=",".join(map(str, EVAL_SEEDS[:2])))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    prompts_per_seed = PROMPTS_PER_SEED // 2 if args.quick else PROMPTS_PER_SEED
    try:
        import litellm  # noqa: F401
    except ImportError:
        print("LiteLLM is not installed: run `make bench-peer` (it installs the [peer] extra)",
              file=sys.stderr)
        return 2
    from importlib.metadata import version

    pools = load_prompts()
    servers = start_servers(demo_model())
    try:
        warm_all(servers)
        service = measure_service(servers, pools)
        rate = LOAD_FACTOR * sum(1 / s for s in service.values())
        seconds = prompts_per_seed / rate
        print(f"service s per answer: { {r: round(s, 3) for r, s in service.items()} }; "
              f"arrivals {rate:.2f}/s for {seconds:.0f} s per seed; seeds {seeds}")
        policies = ["static", *(f"litellm {s}" for s in LITELLM_STRATEGIES), "zeta adaptive"]
        pooled: dict[str, list[Outcome]] = {p: [] for p in policies}
        for index, seed in enumerate(seeds):
            arrivals = workload(seed, seconds, rate, pools)
            # Rotated per seed, so no policy always runs first or last.
            order = policies[index % len(policies):] + policies[:index % len(policies)]
            for policy in order:
                warm_all(servers)
                if policy == "static":
                    outcomes = run_static(servers, arrivals)
                elif policy.startswith("litellm"):
                    outcomes = run_litellm(policy.split()[1], servers, arrivals)
                else:
                    outcomes = run_zeta(servers, arrivals)
                pooled[policy].extend(outcomes)
                summary = summarize(outcomes)
                print(f"  seed {seed} {policy:32s} p95 {summary['p95_s']:6.2f} s  "
                      f"fit {summary['fit']:.0%}  failures {summary['failures']}")
    finally:
        for server in servers.values():
            server.stop()
    results = {policy: summarize(outcomes) for policy, outcomes in pooled.items()}
    static_p95 = results["static"]["p95_s"]
    print(f"\npooled over seeds {seeds} ({prompts_per_seed} prompts per seed, "
          f"LiteLLM {version('litellm')}):")
    print(f"  {'policy':32s} {'p50':>6s} {'p95':>6s} {'p99':>6s} {'ttft95':>7s} "
          f"{'fit':>5s} {'fail':>4s} {'p95/static':>10s}")
    for policy, r in results.items():
        r["p95_vs_static"] = round(r["p95_s"] / static_p95, 3)
        print(f"  {policy:32s} {r['p50_s']:6.2f} {r['p95_s']:6.2f} {r['p99_s']:6.2f} "
              f"{r['p95_ttft_s']:7.2f} {r['fit']:5.0%} {r['failures']:4d} "
              f"{r['p95_vs_static']:10.2f}")
    zeta = results["zeta adaptive"]
    litellm_p95 = [results[f"litellm {s}"]["p95_s"] for s in LITELLM_STRATEGIES]
    checks = {
        "Zeta p95 below every LiteLLM strategy": zeta["p95_s"] < min(litellm_p95),
        "Zeta p95 <= 0.5 x static": zeta["p95_vs_static"] <= 0.5,
        "Zeta task fit >= 90 %": zeta["fit"] >= 0.9,
        "Zeta no failures": zeta["failures"] == 0,
    }
    print_checks(checks)
    out = write_results("peer", {
        "seeds": seeds, "prompts_per_seed": prompts_per_seed, "service_s": service,
        "arrival_rate": rate, "litellm": version("litellm"), "policies": results,
        "checks": checks,
    })
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
