"""Zeta's router against LiteLLM's, on the same servers, arrivals and prompts.

Three llama-cpp-python servers on loopback each serve the demo model with one
thread: the coder's, the embedder's and the reasoner's. As in `make bench`,
answer length stands in for model size (40, 23 and 80 tokens: a 7B, a 4B and
a 14B). Every policy runs on the same servers, seeded arrivals and held-out
prompts (routing_workload.py), with the same knowledge and budgets:

- Knowledge. Zeta runs its default role preferences (`DEFAULT_PREFERENCES`).
  Every LiteLLM set-up that uses task kinds takes them from the same table: a
  role is in a kind's group when its preference for that kind is at least
  the router's bar (`ACCEPTABLE_PREFERENCE`), and the kind comes from the same
  classifier Zeta runs (its trained text model). Fit is scored only by
  `QUALITY`, which no policy reads.
- Budgets. Two retries for every policy (Zeta's default over three
  endpoints; LiteLLM's `num_retries=2`, with fallbacks to the other groups
  where it has groups), the same 600 s timeout, the same system message, and
  the same warm-up: one "hello" to each server through the policy's own
  client before the measured run.
- Policies:
  - static: the classifier's kind to the role that prefers it most, plain HTTP;
  - LiteLLM, the three servers as one group: `simple-shuffle`, `least-busy`,
    `latency-based-routing` (no task information, as a plain set-up);
  - LiteLLM, one group per kind (the roles acceptable for it), `least-busy`
    and `latency-based-routing` within the group, fallbacks to the others:
    what a LiteLLM user who knows the kinds sets up;
  - LiteLLM's request-aware `auto_router/complexity_router`, configured as its
    README shows, each tier mapped to the roles acceptable for the kind it
    stands for (SIMPLE and MEDIUM: simple; COMPLEX: code; REASONING: reasoning);
  - Zeta's adaptive router, the three servers as its roles' endpoints.
- Load. The servers' rate with all three busy at once is measured first, in
  this run; arrivals come at `LOAD_FACTOR` of it.
- Seeds. The evaluation seeds of router_bench (drawn 2026-12-03, never tuned
  on), pooled: each policy's median p95 over seeds with a bootstrap 95 %
  interval, and Zeta's ratio to each LiteLLM policy with its interval.

    make bench-peer            # installs the [peer] extra (LiteLLM, pinned)
    make bench-peer QUICK=1    # one seed, a few prompts: a smoke run

Writes benchmarks/results/peer.json and peer_tradeoff.png.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx
from bench_results import demo_model, print_checks, write_results
from router_bench import EVAL_SEEDS, TUNING_SEEDS, Collector
from router_bench import Record as Outcome
from routing_workload import (
    ACCEPTABLE_QUALITY,
    MAX_TOKENS,
    QUALITY,
    ROLES,
    Arrival,
    bootstrap_median,
    bootstrap_ratio,
    draw_from_mix,
    finite,
    fit_share,
    load_prompts,
    pct,
    workload,
)
from servers import LlamaServer

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.conversation.model import DEFAULT_SYSTEM_PROMPT
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.routing.classifier import TaskClassifier, TaskKind
from zeta_desktop.core.routing.router import ACCEPTABLE_PREFERENCE, DEFAULT_PREFERENCES
from zeta_desktop.core.settings import AppConfig, ReplicaConfig, RoleConfig

CHAT_KINDS = (TaskKind.SIMPLE, TaskKind.CODE, TaskKind.REASONING)
LOAD_FACTOR = 0.85
PROMPTS_PER_SEED = 40
RETRIES = 2  # Zeta's default over three endpoints, given to every policy
TIMEOUT_S = 600.0
ALIAS = "demo"
ONE_GROUP = ("simple-shuffle", "least-busy", "latency-based-routing")
PER_KIND = ("least-busy", "latency-based-routing")
TIERS = {"SIMPLE": TaskKind.SIMPLE, "MEDIUM": TaskKind.SIMPLE, "COMPLEX": TaskKind.CODE,
         "REASONING": TaskKind.REASONING}


def acceptable(kind: TaskKind) -> list[str]:
    """The roles Zeta's default preferences call acceptable for `kind`, best first."""
    fit = {role: DEFAULT_PREFERENCES[role].get(kind, 0.0) for role in ROLES}
    return sorted((r for r in ROLES if fit[r] >= ACCEPTABLE_PREFERENCE), key=lambda r: -fit[r])


def preferred(kind: TaskKind) -> str:
    return acceptable(kind)[0]


def messages(prompt: str) -> list[dict[str, str]]:
    """What every policy sends: the same system message Zeta's conversations carry."""
    return [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": prompt}]


def start_servers(model: Path) -> dict[str, LlamaServer]:
    servers = {role: LlamaServer(model, ALIAS, n_ctx=1024) for role in ROLES}
    for server in servers.values():
        server.start()
    return servers


def stream_once(client: httpx.Client, server: LlamaServer, prompt: str, max_tokens: int,
                outcome: Outcome) -> None:
    body = {"model": ALIAS, "messages": messages(prompt), "max_tokens": max_tokens,
            "temperature": 0.0, "stream": True}
    try:
        with client.stream("POST", f"{server.url}/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: {") and '"content"' in line and \
                        outcome.first_token is None:
                    outcome.first_token = time.perf_counter()
        outcome.done = time.perf_counter()
    except httpx.HTTPError as exc:
        outcome.failed = str(exc) or type(exc).__name__


def measure_capacity(servers: dict[str, LlamaServer], pools: dict[TaskKind, list[str]],
                     per_server: int) -> dict[str, float]:
    """Answers per second with all three servers busy at once (each answering its
    own length), and each server's median seconds per answer meanwhile."""
    # Drawn as the workload draws them (its mix, its pools), so their lengths
    # are the workload's: reading a prompt is much of an answer's time here.
    rng = random.Random(0)
    prompts = [draw_from_mix(rng, pools)[1] for _ in range(per_server)]
    times: dict[str, list[float]] = {role: [] for role in servers}

    def run(role: str) -> None:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            for prompt in prompts:
                outcome = Outcome(TaskKind.SIMPLE, time.perf_counter())
                stream_once(client, servers[role], prompt, MAX_TOKENS[role], outcome)
                if outcome.lost:
                    raise SystemExit(f"peer_bench: {role}'s server failed: {outcome.failed}")
                times[role].append(outcome.latency)

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(role,)) for role in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    span = time.perf_counter() - start
    return {"answers_per_s": sum(map(len, times.values())) / span,
            **{f"{role}_s": statistics.median(values) for role, values in times.items()}}


# -- policies --------------------------------------------------------------------------


def run_static(servers: dict[str, LlamaServer], arrivals: list[Arrival],
               classify: TaskClassifier) -> list[Outcome]:
    outcomes: list[Outcome] = []
    threads = []
    client = httpx.Client(timeout=TIMEOUT_S, limits=httpx.Limits(max_connections=200))
    for role, server in servers.items():  # the warm-up every policy gets
        stream_once(client, server, "hello", MAX_TOKENS[role], Outcome(TaskKind.SIMPLE, 0.0))

    def one(arrival: Arrival, outcome: Outcome) -> None:
        role = preferred(classify.classify(arrival.prompt).kind)
        outcome.role = role
        for _attempt in range(1 + RETRIES):
            outcome.failed = ""
            stream_once(client, servers[role], arrival.prompt, MAX_TOKENS[role], outcome)
            if not outcome.failed:
                return

    start = time.perf_counter()
    for arrival in arrivals:
        delay = start + arrival.at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        outcome = Outcome(arrival.kind, time.perf_counter())
        outcomes.append(outcome)
        thread = threading.Thread(target=one, args=(arrival, outcome))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    client.close()
    return outcomes


def deployment(role: str, server: LlamaServer, group: str) -> dict:
    return {
        "model_name": group,
        "litellm_params": {
            "model": f"openai/{ALIAS}", "api_base": server.url, "api_key": "none",
            # answer length per server, as Zeta's role config sets it
            "max_tokens": MAX_TOKENS[role], "temperature": 0.0, "timeout": TIMEOUT_S,
        },
        "model_info": {"id": f"{group}:{role}"},
    }


def litellm_router(setup: str, servers: dict[str, LlamaServer]):  # type: ignore[no-untyped-def]
    """A LiteLLM Router for one set-up, and how each prompt names its model."""
    from litellm import Router

    common = {"num_retries": RETRIES, "timeout": TIMEOUT_S}
    family, _, strategy = setup.partition(" ")
    if family == "one-group":
        model_list = [deployment(role, server, "zeta") for role, server in servers.items()]
        router = Router(model_list=model_list, routing_strategy=strategy, **common)
        return router, lambda kind: "zeta"
    if family == "per-kind":
        model_list = [deployment(role, servers[role], kind.value)
                      for kind in CHAT_KINDS for role in acceptable(kind)]
        fallbacks = [{kind.value: [k.value for k in CHAT_KINDS if k is not kind]}
                     for kind in CHAT_KINDS]
        router = Router(model_list=model_list, routing_strategy=strategy,
                        fallbacks=fallbacks, **common)
        return router, lambda kind: kind.value
    # LiteLLM's complexity router, as its README configures it: each tier's
    # models are the roles acceptable for the kind the tier stands for.
    model_list = [deployment(role, server, role) for role, server in servers.items()]
    model_list.append({
        "model_name": "smart-router",
        "litellm_params": {
            "model": "auto_router/complexity_router",
            "complexity_router_config": {
                "tiers": {tier: acceptable(kind) for tier, kind in TIERS.items()},
                "default_model": preferred(TaskKind.SIMPLE),
            },
        },
    })
    router = Router(model_list=model_list, routing_strategy="least-busy", **common)
    return router, lambda kind: "smart-router"


def run_litellm(setup: str, servers: dict[str, LlamaServer], arrivals: list[Arrival],
                classify: TaskClassifier) -> list[Outcome]:
    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
    logging.getLogger("LiteLLM Router").setLevel(logging.CRITICAL)
    router, model_for = litellm_router(setup, servers)

    async def ask(prompt: str, kind: TaskKind, outcome: Outcome) -> None:
        try:
            response = await router.acompletion(model=model_for(kind), messages=messages(prompt),
                                                stream=True)
            hidden = getattr(response, "_hidden_params", None) or {}
            outcome.role = str(hidden.get("model_id") or hidden.get("api_base") or "")
            async for chunk in response:
                delta = chunk.choices[0].delta if chunk.choices else None
                if delta is not None and delta.content and outcome.first_token is None:
                    outcome.first_token = time.perf_counter()
            outcome.done = time.perf_counter()
        except Exception as exc:  # LiteLLM raises its own types
            outcome.failed = f"{type(exc).__name__}: {exc}"[:200]

    async def one(arrival: Arrival, start: float, outcome: Outcome) -> None:
        await asyncio.sleep(max(0.0, start + arrival.at - time.perf_counter()))
        outcome.sent = time.perf_counter()
        await ask(arrival.prompt, classify.classify(arrival.prompt).kind, outcome)

    async def main() -> list[Outcome]:
        # The warm-up every policy gets: one hello to each server (through
        # the group, ties could send all three to one), then one through
        # LiteLLM so its client is built before the clock starts.
        with httpx.Client(timeout=TIMEOUT_S) as client:
            for role, server in servers.items():
                stream_once(client, server, "hello", MAX_TOKENS[role],
                            Outcome(TaskKind.SIMPLE, 0.0))
        await ask("hello", TaskKind.SIMPLE, Outcome(TaskKind.SIMPLE, 0.0))
        start = time.perf_counter()
        outcomes = [Outcome(a.kind, start + a.at) for a in arrivals]
        await asyncio.gather(*(one(a, start, o) for a, o in zip(arrivals, outcomes,
                                                                 strict=True)))
        return outcomes

    try:
        outcomes = asyncio.run(main())
    finally:
        router.retire()  # its callbacks leave LiteLLM's global lists: no cost to later runs
    by_url = {server.url: role for role, server in servers.items()}
    for outcome in outcomes:  # "group:role" ids, or the server's address
        role = outcome.role.rsplit(":", 1)[-1] if ":" in outcome.role else outcome.role
        outcome.role = by_url.get(outcome.role.rstrip("/"), role)
    return outcomes


def zeta_config(servers: dict[str, LlamaServer]) -> AppConfig:
    config = AppConfig(roles={
        role: RoleConfig(replicas=[ReplicaConfig(url=server.endpoint, slots=1)],
                         max_tokens=MAX_TOKENS[role], temperature=0.0)
        for role, server in servers.items()
    })
    config.router.semantic = False  # the embedding role chats here; no vote
    return config


def run_zeta(servers: dict[str, LlamaServer], arrivals: list[Arrival]) -> list[Outcome]:
    collector = Collector()
    session = ChatSession(zeta_config(servers), LlamaEngine.load, subscriber=collector)
    session.start()
    try:
        if not session.wait_loaded(120):
            raise SystemExit("peer_bench: Zeta's remote roles were not ready in 120 s")
        for role in ROLES:  # the warm-up every policy gets: one hello per server
            sent = time.perf_counter()
            collector.expect(session.send("hello", role=role, with_history=False),
                             TaskKind.SIMPLE, sent)
        if not collector.wait_all(120):
            raise SystemExit("peer_bench: Zeta's warm-up did not end in 120 s")
        with collector.lock:
            collector.records.clear()
        start = time.perf_counter()
        for arrival in arrivals:
            delay = start + arrival.at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            collector.expect(session.send(arrival.prompt, with_history=False), arrival.kind, sent)
        collector.wait_all(TIMEOUT_S)
        with collector.lock:
            records = list(collector.records.values())
    finally:
        session.shutdown(timeout=30)
    return records


# -- figures ---------------------------------------------------------------------------


def summarize(by_seed: dict[int, list[Outcome]], rng: random.Random) -> dict:
    outcomes = [o for runs in by_seed.values() for o in runs]
    ok = [o for o in outcomes if not o.lost]
    latency = [o.latency for o in outcomes]
    p95s = {seed: pct([o.latency for o in runs], 95) for seed, runs in by_seed.items()}
    mid, low, high = bootstrap_median(p95s, rng)
    quality = [QUALITY[o.role][o.kind] for o in ok if o.role in QUALITY]
    return {
        "prompts": len(outcomes),
        "lost": len(outcomes) - len(ok),
        "loss_examples": sorted({o.failed for o in outcomes if o.failed})[:3],
        "p50_s": finite(pct(latency, 50)),
        "p99_s": finite(pct(latency, 99)),
        "p95_s_per_seed": {seed: finite(v) for seed, v in p95s.items()},
        "median_p95_s": finite(mid),
        "median_p95_ci95": [finite(low), finite(high)],
        "p95_ttft_s": finite(pct([o.first_token - o.sent if o.first_token else math.inf
                                  for o in outcomes], 95)),
        "fit_acceptable": fit_share([(o.role, o.kind) for o in ok], len(outcomes)),
        "fit_quality": statistics.fmean(quality) if quality else 0.0,
        "served": {role: sum(1 for o in ok if o.role == role) for role in ROLES},
        "unknown_server": sum(1 for o in ok if o.role not in QUALITY),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("QUICK")),
                        help="one seed, a few prompts: a smoke run")
    parser.add_argument("--seeds", default=",".join(map(str, EVAL_SEEDS)))
    parser.add_argument("--prompts", type=int, default=PROMPTS_PER_SEED,
                        help="prompts per seed")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")][: 1 if args.quick else None]
    prompts_per_seed = 6 if args.quick else args.prompts
    tuning = set(seeds) & set(TUNING_SEEDS)
    try:
        import litellm
    except ImportError:
        print("LiteLLM is not installed: run `make bench-peer` (it installs the [peer] extra)",
              file=sys.stderr)
        return 2
    from importlib.metadata import version

    litellm.suppress_debug_info = True
    logging.getLogger("zeta_desktop").setLevel(logging.CRITICAL)
    classify = TaskClassifier()
    pools = load_prompts()
    servers = start_servers(demo_model())
    policies = ["static", *(f"one-group {s}" for s in ONE_GROUP),
                *(f"per-kind {s}" for s in PER_KIND), "complexity-router", "zeta adaptive"]
    try:
        capacity = measure_capacity(servers, pools, 2 if args.quick else 4)
        rate = LOAD_FACTOR * capacity["answers_per_s"]
        seconds = prompts_per_seed / rate
        print(f"measured: {capacity['answers_per_s']:.2f} answers/s with all three servers busy "
              f"at once; arrivals {rate:.2f}/s for {seconds:.0f} s per seed; seeds {seeds} "
              f"({'TUNING seeds: not a verdict' if tuning else 'evaluation-only'})")
        results: dict[str, dict[int, list[Outcome]]] = {p: {} for p in policies}
        for index, seed in enumerate(seeds):
            arrivals = workload(seed, seconds, rate, pools)
            # Rotated per seed, so no policy always runs first or last.
            order = policies[index % len(policies):] + policies[:index % len(policies)]
            for policy in order:
                if policy == "static":
                    outcomes = run_static(servers, arrivals, classify)
                elif policy == "zeta adaptive":
                    outcomes = run_zeta(servers, arrivals)
                else:
                    outcomes = run_litellm(policy, servers, arrivals, classify)
                results[policy][seed] = outcomes
                p95 = pct([o.latency for o in outcomes], 95)
                fit = fit_share([(o.role, o.kind) for o in outcomes if not o.lost],
                                len(outcomes))
                print(f"  seed {seed} {policy:34s} p95 {p95:6.2f} s  fit {fit:.0%}  "
                      f"lost {sum(o.lost for o in outcomes)}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    rng = random.Random(0)
    rows = {policy: summarize(by_seed, rng) for policy, by_seed in results.items()}
    p95 = {p: {s: pct([o.latency for o in runs], 95) for s, runs in by_seed.items()}
           for p, by_seed in results.items()}
    zeta = rows["zeta adaptive"]
    peers = [p for p in policies if p not in ("zeta adaptive", "static")]
    print(f"\nper policy over seeds {seeds} ({prompts_per_seed} prompts each, LiteLLM "
          f"{version('litellm')}): median p95 with its 95 % interval")
    print(f"  {'policy':34s} {'p95':>6s} {'95% CI':>13s} {'p50':>6s} {'ttft95':>7s} "
          f"{'fit':>5s} {'lost':>4s}  zeta/it (95% CI)")

    def show(value: float | None) -> str:
        return "inf" if value is None else f"{value:.2f}"

    for policy, r in rows.items():
        ratio = ""
        if policy != "zeta adaptive":
            point, low, high = bootstrap_ratio(p95["zeta adaptive"], {policy: p95[policy]}, rng)
            r["zeta_ratio"] = {"ratio": finite(point), "ci95": [finite(low), finite(high)]}
            ratio = f"{point:.2f} ({low:.2f}-{high:.2f})"
        ci = r["median_p95_ci95"]
        print(f"  {policy:34s} {show(r['median_p95_s']):>6s} {show(ci[0]):>6s}-"
              f"{show(ci[1]):<6s} {show(r['p50_s']):>6s} {show(r['p95_ttft_s']):>7s} "
              f"{r['fit_acceptable']:5.0%} {r['lost']:4d}  {ratio}")
    best = bootstrap_ratio(p95["zeta adaptive"], {p: p95[p] for p in peers}, rng)
    print(f"zeta / best LiteLLM set-up: {best[0]:.2f} (95 % interval {best[1]:.2f}-{best[2]:.2f})")
    checks = {
        "Zeta p95 below every LiteLLM set-up (interval wholly < 1)": best[2] < 1,
        "Zeta p95 <= 0.5 x static (interval wholly <= 0.5)":
            (rows["static"]["zeta_ratio"]["ci95"][1] or math.inf) <= 0.5,
        "Zeta fit >= 0.95 x static's": zeta["fit_acceptable"]
        >= 0.95 * rows["static"]["fit_acceptable"],
        "Zeta lost nothing": zeta["lost"] == 0,
    }
    if tuning:
        print("NOTE: tuning seeds in the run: these figures are not a verdict")
    print_checks(checks)
    from tradeoff_plot import plot_tradeoff

    plot = plot_tradeoff(rows, "peer_tradeoff.png", "make bench-peer: p95 against fit")
    out = write_results("peer", {
        "quick": args.quick, "seeds": seeds, "evaluation_only": not tuning,
        "prompts_per_seed": prompts_per_seed, "capacity": capacity, "arrival_rate": rate,
        "litellm": version("litellm"), "acceptable_quality": ACCEPTABLE_QUALITY,
        "groups": {k.value: acceptable(k) for k in CHAT_KINDS},
        "policies": rows, "zeta_vs_best_litellm": {"ratio": finite(best[0]),
                                                   "ci95": [finite(best[1]), finite(best[2])]},
        "checks": checks, "plot": str(plot),
    })
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
