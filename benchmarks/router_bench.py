"""Router benchmark: every policy on seeded mixed workloads, real models, real workers.

The demo model serves all three roles on the CPU; the roles differ in answer
length in proportion to their sizes (embedder 23 tokens, coder 40, reasoner 80
for 4B : 7B : 14B), so they differ in speed as real models of those sizes would.
The workload is weighted toward code and has bursts that overload the coder,
which static routing prefers for code and simple prompts. Every policy gets
the same arrivals and the same per-model settings. Each policy runs on two
workloads (seeds) and its row pools both: a p95 over ~50 prompts hangs on its
three slowest, and one slow moment on a shared machine could decide it. A
second scenario makes the coder raise on a share of its jobs: adaptive must
lose no prompt.

    make bench            # full: within 10 minutes on 2 cores
    make bench QUICK=1    # shorter workload: under 2 minutes

Writes benchmarks/results/router.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench_results import demo_model, print_checks, write_results

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.config import AppConfig, RoleConfig
from zeta_desktop.core.engines.base import ChatMessage, LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import ChatStats, WorkerState
from zeta_desktop.core.routing.classifier import TaskKind
from zeta_desktop.core.routing.machine import MachineReading, RecordedSource
from zeta_desktop.core.routing.router import ACCEPTABLE_PREFERENCE, DEFAULT_PREFERENCES, POLICIES
from zeta_desktop.core.routing.telemetry import Telemetry

PROMPTS = {
    TaskKind.CODE: [
        "```python\ndef add(a, b):\n    return a - b\n```\nFix the bug in this function.",
        "Write a Python function that reverses a string.",
        "Traceback (most recent call last):\n  File \"main.py\", line 3\nNameError: name 'x' "
        "is not defined. How do I fix it?",
        "Write a bash script that counts the lines in every .txt file.",
        "```js\nconst xs = [1, 2, 3];\nxs.map(x => x * 2)\n```\nExplain this code.",
        "How do I read a JSON file in Python?",
    ],
    TaskKind.SIMPLE: [
        "hello!",
        "What is the capital of Italy?",
        "Translate 'thank you' into French.",
        "Give me a name for a goldfish.",
    ],
    TaskKind.REASONING: [
        "Prove that the sum of two odd numbers is even.",
        "Why do leaves change colour in autumn? Explain step by step.",
        "A train travels 120 km in 2 hours. Calculate its average speed and explain.",
    ],
}
MIX = {TaskKind.CODE: 0.6, TaskKind.SIMPLE: 0.25, TaskKind.REASONING: 0.15}
THRESHOLD_OVERRIDES: dict[str, float] = {}  # --set name=value, for exploring thresholds
# Answer length in proportion to the roles' sizes (4B : 7B : 14B), so service
# times differ as they would with real models of those sizes on one machine.
MAX_TOKENS = {"coder": 40, "embedder": 23, "reasoner": 80}


@dataclass(frozen=True)
class Arrival:
    at: float
    kind: TaskKind
    prompt: str


def workload(
    seed: int, seconds: float, rate: float, burst_every: float, burst: int
) -> list[Arrival]:
    """Poisson arrivals at `rate`/s plus bursts of code prompts; seeded, so identical per policy."""
    rng = random.Random(seed)
    kinds, weights = zip(*MIX.items(), strict=True)
    arrivals, now = [], 0.0
    while True:
        now += rng.expovariate(rate)
        if now >= seconds:
            break
        kind = rng.choices(kinds, weights)[0]
        arrivals.append(Arrival(now, kind, rng.choice(PROMPTS[kind])))
    at = burst_every / 2
    while at < seconds:
        for i in range(burst):
            arrivals.append(
                Arrival(at + i * 0.01, TaskKind.CODE, rng.choice(PROMPTS[TaskKind.CODE]))
            )
        at += burst_every
    return sorted(arrivals, key=lambda a: a.at)


@dataclass
class Record:
    kind: TaskKind
    sent: float
    role: str = ""
    first_token: float | None = None
    done: float | None = None
    tokens: int = 0
    failed: str = ""
    retried: bool = False


@dataclass
class Collector:
    records: dict[int, Record] = field(default_factory=dict)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def on_role_state(self, role: str, state: WorkerState, detail: str) -> None: ...
    def on_turn_routed(self, turn_id: int, decision: object) -> None: ...

    def on_turn_started(self, turn_id: int, role: str, reason: str) -> None:
        self.records[turn_id].role = role

    def on_turn_token(self, turn_id: int, text: str) -> None:
        record = self.records[turn_id]
        if record.first_token is None:
            record.first_token = time.perf_counter()
        record.tokens += 1

    def on_turn_retried(self, turn_id: int, failed_role: str, message: str) -> None:
        self.records[turn_id].retried = True

    def on_turn_finished(self, turn_id: int, stopped: bool, stats: ChatStats) -> None:
        with self.lock:
            self.records[turn_id].done = time.perf_counter()
            self.lock.notify_all()

    def on_turn_failed(self, turn_id: int, message: str) -> None:
        with self.lock:
            self.records[turn_id].failed = message
            self.records[turn_id].done = time.perf_counter()
            self.lock.notify_all()


class FlakyEngine:
    """The real engine, but a seeded share of its jobs raise after a few tokens."""

    def __init__(self, inner: LlamaEngine, failure_rate: float, seed: int) -> None:
        self._inner = inner
        self._rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.n_ctx = inner.n_ctx
        self.count_tokens = inner.count_tokens
        self.embed = inner.embed
        self.close = inner.close

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: object) -> Iterator[str]:
        fail = self._rng.random() < self.failure_rate
        for index, piece in enumerate(self._inner.stream_chat(messages, **kwargs)):  # type: ignore[arg-type]
            if fail and index == 2:
                raise RuntimeError("injected failure: decode error")
            yield piece


def bench_config(model: Path, policy: str) -> AppConfig:
    config = AppConfig()
    for role in ("coder", "embedder", "reasoner"):
        config.roles[role] = RoleConfig(
            model_path=str(model),
            n_ctx=1024,
            n_threads=1,
            max_tokens=MAX_TOKENS[role],
            temperature=0.0,
            can_embed=role == "embedder",
        )
    config.router.policy = policy
    for name, value in THRESHOLD_OVERRIDES.items():
        setattr(config.router, name, value)
    config.router.semantic = False  # the prompts' kinds are fixed; keep the embedder's queue clean
    return config


def cpu_reading() -> RecordedSource:
    return RecordedSource([MachineReading("psutil", (), 0.0, 0.0, 1.0, note="benchmark")])


@dataclass
class Run:
    """One policy on one workload: every prompt's record and the measured span."""

    policy: str
    records: list[Record]
    span_s: float


def run_policy(
    model: Path, policy: str, arrivals: list[Arrival], failure_rate: float = 0.0, seed: int = 7
) -> Run:
    collector = Collector()
    config = bench_config(model, policy)
    loader = LlamaEngine.load
    if failure_rate:
        # The coder loads the same file through its own link, so the loader can tell it apart.
        flaky_path = Path(tempfile.mkdtemp()) / "coder-flaky.gguf"
        flaky_path.symlink_to(model)
        config.roles["coder"].model_path = str(flaky_path)

        def loader(path: Path, settings: LoadSettings):  # type: ignore[no-untyped-def]
            engine = LlamaEngine.load(path, settings)
            return FlakyEngine(engine, failure_rate, seed) if path == flaky_path else engine

    session = ChatSession(config, loader, listener=collector, machine=cpu_reading())
    session.start()
    session.wait_loaded()
    # Warm each model once so the first measured job pays no page faults.
    for role in session.roles:
        tid = session.send("hello", role=role, with_history=False)
        collector.records[tid] = Record(TaskKind.SIMPLE, time.perf_counter())
    with collector.lock:
        collector.lock.wait_for(lambda: all(r.done for r in collector.records.values()), 60)
    collector.records.clear()
    start = time.perf_counter()
    for arrival in arrivals:
        delay = start + arrival.at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        turn_id = session.send(arrival.prompt, with_history=False)
        collector.records[turn_id] = Record(arrival.kind, sent)
    with collector.lock:
        collector.lock.wait_for(
            lambda: all(r.done for r in collector.records.values()), timeout=600
        )
    end = max(r.done or 0 for r in collector.records.values())
    session.shutdown()
    return Run(policy, list(collector.records.values()), end - start)


def summarize(policy: str, runs: list[Run]) -> dict[str, float | int | str]:
    """One row of the table: every run of this policy pooled (all seeds)."""
    records = [r for run in runs for r in run.records]
    span = sum(run.span_s for run in runs)
    ok = [r for r in records if not r.failed]
    latencies = sorted(r.done - r.sent for r in ok)  # type: ignore[operator]
    ttfts = sorted(r.first_token - r.sent for r in ok if r.first_token)
    fit = sum(1 for r in ok if DEFAULT_PREFERENCES[r.role].get(r.kind, 0) >= ACCEPTABLE_PREFERENCE)
    served = {role: sum(1 for r in ok if r.role == role) for role in MAX_TOKENS}
    by_kind = {
        kind.value: round(pct(sorted(r.done - r.sent for r in ok if r.kind is kind), 95), 2)  # type: ignore[operator]
        for kind in MIX
    }
    per_run_p95 = [
        round(pct(sorted(r.done - r.sent for r in run.records if not r.failed), 95), 2)  # type: ignore[operator]
        for run in runs
    ]
    return {
        "policy": policy,
        "prompts": len(records),
        "failures": len(records) - len(ok),
        "retried": sum(r.retried for r in records),
        "p50_s": pct(latencies, 50),
        "p95_s": pct(latencies, 95),
        "p99_s": pct(latencies, 99),
        "p95_ttft_s": pct(ttfts, 95),
        "completions_per_min": 60 * len(ok) / span,
        "tokens_per_s": sum(r.tokens for r in ok) / span,
        "task_fit": fit / len(ok) if ok else 0.0,
        "served": json.dumps(served),
        "p95_s_by_kind": json.dumps(by_kind),
        "p95_s_per_seed": json.dumps(per_run_p95),
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
    return values[index]


def micro_benchmark(calls: int = 20000) -> dict[str, float]:
    """One routing decision, in microseconds, adaptive vs static, same telemetry."""
    import gc

    gc.collect()  # the scenarios above leave garbage that would be collected mid-loop
    from zeta_desktop.core.routing.router import RoleProfile, ZetaDynamicRouter

    telemetry = Telemetry()
    for i, role in enumerate(MAX_TOKENS):
        telemetry.register(role, lambda i=i: (i, 1, "busy"))  # type: ignore[misc]
        telemetry.model(role).record_success(0.2, 40.0, 2.0, 1.5, 40)
    telemetry.set_machine(cpu_reading().read())
    profiles = {
        r: RoleProfile(r, True, r == "embedder", DEFAULT_PREFERENCES[r]) for r in MAX_TOKENS
    }
    result = {}
    for policy in ("static", "adaptive"):
        router = ZetaDynamicRouter(profiles, telemetry, policy=policy)
        router.update_thresholds(max_queue=1)  # the coder (queue 0+1) is at the limit
        kinds = [TaskKind.CODE, TaskKind.SIMPLE, TaskKind.REASONING]
        samples = []
        for i in range(calls):
            kind = kinds[i % 3]
            t0 = time.perf_counter_ns()
            router.route(kind)
            samples.append((time.perf_counter_ns() - t0) / 1000)
        samples.sort()
        result[f"{policy}_median_us"] = statistics.median(samples)
        result[f"{policy}_p99_us"] = samples[int(0.99 * len(samples))]
    result["adaptive_vs_static"] = result["adaptive_median_us"] / result["static_median_us"]
    return result


def main() -> int:
    # Injected failures are logged with tracebacks by the worker; the table says enough.
    logging.getLogger("zeta_desktop").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description="router benchmark")
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("QUICK")))
    parser.add_argument(
        "--seeds", default="42,11",
        help="workloads to pool, comma-separated (quick: the first only)",
    )
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument(
        "--seconds", type=float, help="workload length per seed (default 30, quick 10)"
    )
    parser.add_argument("--no-failures", action="store_true", help="skip scenario 2")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="override a router threshold for every policy, e.g. --set max_queue=1",
    )
    args = parser.parse_args()
    for item in args.set:
        name, value = item.split("=", 1)
        THRESHOLD_OVERRIDES[name] = int(value) if name == "max_queue" else float(value)
    model = demo_model()
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    seeds = [int(x) for x in args.seeds.split(",")][: 1 if args.quick else None]
    policies = args.policies.split(",")
    workloads = {
        seed: workload(seed, seconds, rate=0.9, burst_every=10.0, burst=4) for seed in seeds
    }
    for seed, arrivals in workloads.items():
        kinds = {k.value: sum(a.kind is k for a in arrivals) for k in MIX}
        print(f"workload seed {seed}: {len(arrivals)} prompts over {seconds:.0f} s, {kinds}")
    print("models: demo model in every role, 1 thread each, max tokens", MAX_TOKENS)
    started = time.perf_counter()
    # Seed by seed, every policy on the same arrivals; each row pools its seeds,
    # so one slow moment on a shared machine weighs less on any one policy.
    runs: dict[str, list[Run]] = {policy: [] for policy in policies}
    for arrivals in workloads.values():
        for policy in policies:
            runs[policy].append(run_policy(model, policy, arrivals))
    rows = [summarize(policy, policy_runs) for policy, policy_runs in runs.items()]
    first = workloads[seeds[0]]
    failure_rows = (
        []
        if args.no_failures
        else [
            summarize(policy, [run_policy(model, policy, first, failure_rate=0.3)])
            for policy in ("adaptive", "static")
        ]
    )
    micro = micro_benchmark()
    # The baseline every ratio is against: static, measured in this same run.
    static = next((r for r in rows if r["policy"] == "static"), rows[0])
    header = (
        f"{'policy':15} {'p50 s':>6} {'p95 s':>6} {'p99 s':>6} {'ttft95':>6} "
        f"{'done/min':>8} {'tok/s':>6} {'fit':>5} {'fail':>4} {'p95/static':>10}  served"
    )

    def table(title: str, table_rows: list[dict[str, float | int | str]]) -> None:
        print(f"\n{title}\n{header}")
        for r in table_rows:
            ratio = float(r["p95_s"]) / float(static["p95_s"])
            print(
                f"{r['policy']:15} {r['p50_s']:6.2f} {r['p95_s']:6.2f} {r['p99_s']:6.2f} "
                f"{r['p95_ttft_s']:6.2f} {r['completions_per_min']:8.1f} {r['tokens_per_s']:6.1f} "
                f"{r['task_fit']:5.0%} {r['failures']:4d} {ratio:10.2f}  {r['served']}"
            )
        if len(seeds) > 1 and table_rows is rows:
            print("p95 per seed (" + ", ".join(map(str, seeds)) + "):  " + ";  ".join(
                f"{r['policy']} {r['p95_s_per_seed']}" for r in table_rows
            ))

    table(f"scenario 1: mixed load with bursts (seeds {', '.join(map(str, seeds))} pooled)", rows)
    table(
        "scenario 2: the coder raises on 30% of its jobs (retried once elsewhere;"
        f" seed {seeds[0]})",
        failure_rows,
    )
    adaptive = next(r for r in rows if r["policy"] == "adaptive")
    ratio = float(adaptive["p95_s"]) / float(static["p95_s"])
    best_other = min(float(r["p95_s"]) for r in rows if r["policy"] != "adaptive")
    checks = {
        "adaptive p95 <= 0.6 x static": ratio <= 0.6,
        "adaptive p95 below every baseline": float(adaptive["p95_s"]) < best_other,
        "adaptive task fit >= 90%": float(adaptive["task_fit"]) >= 0.9,
        "adaptive no failures": adaptive["failures"] == 0,
        "adaptive loses no prompt under injected failures": bool(failure_rows)
        and failure_rows[0]["failures"] == 0,
        "routing decision median < 50 us": micro["adaptive_median_us"] < 50,
    }
    print(
        f"\nrouting decision: adaptive median {micro['adaptive_median_us']:.1f} us, "
        f"p99 {micro['adaptive_p99_us']:.1f} us; static median {micro['static_median_us']:.1f} us "
        f"(ratio {micro['adaptive_vs_static']:.2f})"
    )
    print(f"adaptive p95 / static p95 = {ratio:.2f}")
    print_checks(checks)
    elapsed = time.perf_counter() - started
    print(f"benchmark took {elapsed:.0f} s")
    write_results(
        "router",
        {
            "seeds": seeds,
            "seconds_per_seed": seconds,
            "quick": args.quick,
            "arrivals": {seed: len(a) for seed, a in workloads.items()},
            "scenario_mixed": rows,
            "scenario_failures": failure_rows,
            "decision_micro": micro,
            "checks": checks,
            "elapsed_s": elapsed,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
