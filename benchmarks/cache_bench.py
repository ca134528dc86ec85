"""Cache benchmark: multi-turn conversations interleaved on one fleet, per routing policy.

Several conversations run at once on the demo fleet (three roles, one
thread each). Each turn sends the whole history; one conversation opens with
a pasted document (a slice of docs/architecture.md, DOC_TOKENS tokens by the
model's own tokenizer). Follow-ups build on the answer ("shorten that", "give
an example of it"). Prompts are everyday ones written here, not from any
benchmark set.

Policies, same run, same conversations, same seeds (order rotated per seed):
cache-aware adaptive; adaptive with the cache signal off
(`router.cache_aware = false`); least-busy. LiteLLM is not run here (see
docs/benchmarks.md, bench-cache).

Arrivals. The fleet's service rate is measured first (every role answering a
short prompt at once); conversations start as Poisson arrivals at
LOAD_FACTOR of it, and a follow-up comes after its answer plus a think time
drawn (seeded) with mean 1 / (LOAD_FACTOR x rate).

Reported per policy: time to the first token (send to first token) by turn
index, p50 and p95; the share of prompt tokens read from cache (the workers'
ChatStats.cached_tokens / prompt_tokens); end-to-end p95 (median over seeds,
bootstrap 95 % interval) with ratios against cache-aware adaptive; the
document conversation's last-turn / turn-1 TTFT ratio; the KV store's peak RAM
against its budget where the engine exposes `kv_stats` (null otherwise).

    make bench-cache            # the full run (CACHE_BENCH_SEEDS, _TURNS, _DOC_TOKENS)
    make bench-cache QUICK=1    # a smoke run: short document, few turns

Writes benchmarks/results/cache.json.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_results import demo_model, print_checks, quick_parser, write_results
from routing_workload import ROLES, bootstrap_median, finite, pct

from zeta_desktop.core.chat.events import AnswerText, SessionEvent, TurnEnded, TurnEvent
from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.conversation.model import Conversation
from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import WorkerState
from zeta_desktop.core.settings import AppConfig, RoleConfig

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "architecture.md"
# Drawn once with random.SystemRandom().sample(range(1000, 10000), 4) for this bench.
SEEDS = (4127, 7751, 2390, 5608)
LOAD_FACTOR = 0.85
MAX_TOKENS = 24  # the same answer budget everywhere: what differs is the reading
POLICIES = ("adaptive", "adaptive-cache-off", "least-busy")
SYSTEM = "You are a helpful assistant. Answer briefly."

# Everyday openers, each with follow-ups that build on the answer.
OPENERS = (
    "What should I pack for a weekend hiking trip in autumn?",
    "How do I keep basil alive on a kitchen windowsill?",
    "Suggest a simple dinner I can cook with rice, eggs and spinach.",
    "How can I get better at waking up early?",
)
FOLLOW_UPS = (
    "Can you shorten that to one sentence?",
    "Give me one concrete example of what you just said.",
    "Which part of your answer matters most, and why?",
    "What is a common mistake people make with that?",
    "Put your advice into three short bullet points.",
    "What would you change if I only had half the time?",
    "Explain the second point of your answer a bit more.",
    "Is there anything in your answer I should do first?",
    "How would you say that to a ten-year-old?",
    "Sum up our whole conversation in one line.",
)
DOC_OPENER = "Here is a document I am reading:\n\n{doc}\n\nWhat is it about, in one sentence?"
DOC_FOLLOW_UPS = (
    "Which part of the document talks about the router?",
    "Based on your answer, what does the fleet do?",
    "Name one module the document mentions and what it is for.",
    "Does the document say anything about tests? Answer from it.",
    "What would you read first in it, given what you said?",
    "Summarise your previous two answers together.",
    "Is there a design rule in the document? Quote a few words.",
    "What is unclear in the document, from what you have read?",
    "Give the document a short title.",
)


@dataclass
class TurnRecord:
    conversation: int
    turn: int
    sent: float
    first_token: float | None = None
    done: float | None = None
    failed: str = ""
    role: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0

    @property
    def ttft(self) -> float:
        return math.inf if self.failed or self.first_token is None \
            else self.first_token - self.sent

    @property
    def latency(self) -> float:
        return math.inf if self.failed or self.done is None else self.done - self.sent


@dataclass
class Collector:
    records: dict[int, TurnRecord] = field(default_factory=dict)
    pending: dict[int, list[SessionEvent]] = field(default_factory=dict)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def expect(self, turn_id: int, record: TurnRecord) -> None:
        with self.lock:
            self.records[turn_id] = record
            for event in self.pending.pop(turn_id, []):
                self._apply(record, event)

    def __call__(self, event: SessionEvent) -> None:
        if not isinstance(event, TurnEvent):
            return
        with self.lock:
            record = self.records.get(event.turn_id)
            if record is None:  # a tiny model can answer before send() returns
                self.pending.setdefault(event.turn_id, []).append(event)
                return
            self._apply(record, event)

    def _apply(self, record: TurnRecord, event: SessionEvent) -> None:
        now = time.perf_counter()
        if isinstance(event, AnswerText) and record.first_token is None:
            record.first_token = now
        elif isinstance(event, TurnEnded):
            record.done = now
            record.failed = event.error if event.failed else ""
            if event.stats is not None:
                record.prompt_tokens = event.stats.prompt_tokens
                record.cached_tokens = event.stats.cached_tokens
            self.lock.notify_all()

    def wait_done(self, turn_id: int, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: self.records[turn_id].done is not None, timeout)


@dataclass(frozen=True)
class Plan:
    """One seed's conversations: start times, prompts, think times (identical per policy)."""

    starts: list[float]
    prompts: list[list[str]]
    thinks: list[list[float]]
    doc_conversation: int


def document_text(tokens: int, count) -> str:  # type: ignore[no-untyped-def]
    """A slice of the architecture doc of about `tokens` tokens (the model's own count)."""
    text = DOCUMENT.read_text(encoding="utf-8")
    words = text.split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # the longest word prefix within `tokens`
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid])) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def plan(seed: int, conversations: int, turns: int, rate: float, doc: str) -> Plan:
    rng = random.Random(seed)
    starts, now = [], 0.0
    for _ in range(conversations):
        starts.append(now)
        now += rng.expovariate(LOAD_FACTOR * rate)
    openers = rng.sample(OPENERS, k=min(conversations, len(OPENERS)))
    prompts = []
    for c in range(conversations):
        if c == 0:
            prompts.append([DOC_OPENER.format(doc=doc), *DOC_FOLLOW_UPS[:turns - 1]])
        else:
            follow = rng.sample(FOLLOW_UPS, k=turns - 1)
            prompts.append([openers[(c - 1) % len(openers)], *follow])
    thinks = [[rng.expovariate(LOAD_FACTOR * rate) for _ in range(turns)]
              for _ in range(conversations)]
    return Plan(starts, prompts, thinks, doc_conversation=0)


def config_for(model: Path, policy: str, n_ctx: int) -> AppConfig:
    config = AppConfig()
    for role in ROLES:
        config.roles[role] = RoleConfig(model_path=str(model), n_ctx=n_ctx, n_threads=1,
                                        max_tokens=MAX_TOKENS, temperature=0.0,
                                        can_embed=role == "embedder")
    config.router.policy = "least-busy" if policy == "least-busy" else "adaptive"
    config.router.cache_aware = policy != "adaptive-cache-off"
    config.router.semantic = True
    return config


def start(model: Path, policy: str, n_ctx: int, collector: Collector) -> ChatSession:
    session = ChatSession(config_for(model, policy, n_ctx), LlamaEngine.load,
                          subscriber=collector)
    session.start()
    loaded = session.wait_loaded(120)
    not_ready = [name for name, rt in session.roles.items()
                 if rt.worker.state not in (WorkerState.READY, WorkerState.BUSY)]
    if not loaded or not_ready:
        session.shutdown()
        raise SystemExit(f"cache_bench: roles not ready: {not_ready}")
    if not session.embedding_vote_checked.wait(60):
        session.shutdown()
        raise SystemExit("cache_bench: the embedding vote check did not finish in 60 s")
    return session


def engine_of(session: ChatSession, role: str) -> object | None:
    return getattr(session.worker(role), "_engine", None)


def kv_reading(session: ChatSession) -> dict[str, dict] | None:
    """Each engine's kv_stats (a dict, or an object with fields), None where none has it."""
    readings: dict[str, dict] = {}
    for role in ROLES:
        stats = getattr(engine_of(session, role), "kv_stats", None)
        if stats is None:
            continue
        stats = stats() if callable(stats) else stats
        if not isinstance(stats, dict):
            stats = {k: v for k, v in vars(stats).items() if isinstance(v, int | float)}
        readings[role] = stats
    return readings or None


def measure_rate(model: Path, n_ctx: int) -> float:
    """Jobs/s with every role answering a short prompt at once (after a warm-up)."""
    collector = Collector()
    session = start(model, "adaptive", n_ctx, collector)
    try:
        for rnd in range(2):  # the first round warms, the second is timed
            began = time.perf_counter()
            ids = []
            for i, role in enumerate(ROLES):
                turn_id = session.send(OPENERS[i], role=role, with_history=False)
                collector.expect(turn_id, TurnRecord(-1, rnd, began))
                ids.append(turn_id)
            for turn_id in ids:
                if not collector.wait_done(turn_id, 300):
                    raise SystemExit("cache_bench: the service-rate run did not end in 300 s")
            span = max(collector.records[t].done or began for t in ids) - began
        return len(ROLES) / max(span, 1e-6)
    finally:
        session.shutdown(timeout=30)


def run_policy(model: Path, policy: str, the_plan: Plan, n_ctx: int, deadline_s: float
               ) -> dict:
    collector = Collector()
    session = start(model, policy, n_ctx, collector)
    peaks: dict[str, dict] = {}
    try:
        # Each model answers once, unrelated to the workload, so none starts cold.
        for role in ROLES:
            turn_id = session.send("hello", role=role, with_history=False)
            collector.expect(turn_id, TurnRecord(-1, 0, time.perf_counter()))
            collector.wait_done(turn_id, 120)
        with collector.lock:
            collector.records.clear()
        began = time.perf_counter()
        conversations = [Conversation.new(SYSTEM) for _ in the_plan.starts]
        records: list[TurnRecord] = []

        def converse(c: int) -> None:
            time.sleep(the_plan.starts[c])
            for turn, prompt in enumerate(the_plan.prompts[c]):
                record = TurnRecord(c, turn + 1, time.perf_counter())
                turn_id = session.send(prompt, conversation=conversations[c])
                collector.expect(turn_id, record)
                records.append(record)
                left = deadline_s - (time.perf_counter() - began)
                if not collector.wait_done(turn_id, max(left, 0.0)) or record.failed:
                    return  # the rest of this conversation is not sent: counted lost
                time.sleep(the_plan.thinks[c][turn])

        threads = [threading.Thread(target=converse, args=(c,), daemon=True)
                   for c in range(len(the_plan.starts))]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for role, stats in (kv_reading(session) or {}).items():
                peak = peaks.setdefault(role, dict(stats))
                for key, value in stats.items():
                    if isinstance(value, int | float) and value > peak.get(key, -math.inf):
                        peak[key] = value
            time.sleep(0.5)
        planned = sum(len(p) for p in the_plan.prompts)
        return {"records": records, "planned": planned,
                "span_s": time.perf_counter() - began, "kv_peak": peaks or None}
    finally:
        session.shutdown(timeout=30)


def by_turn(records: list[TurnRecord]) -> dict[str, dict[str, float | None]]:
    turns = sorted({r.turn for r in records})
    return {str(t): {"p50_s": finite(pct([r.ttft for r in records if r.turn == t], 50)),
                     "p95_s": finite(pct([r.ttft for r in records if r.turn == t], 95)),
                     "n": sum(1 for r in records if r.turn == t)} for t in turns}


def summarize(runs: list[dict], doc_conversation: int, last_turn: int) -> dict:
    records = [r for run in runs for r in run["records"]]
    lost = sum(run["planned"] for run in runs) - sum(
        1 for r in records if r.done is not None and not r.failed)
    prompt = sum(r.prompt_tokens for r in records)
    follow = [r.ttft for r in records if r.turn > 1]
    doc_ratios = []
    for run in runs:
        doc = {r.turn: r.ttft for r in run["records"] if r.conversation == doc_conversation}
        if 1 in doc and last_turn in doc and math.isfinite(doc[last_turn]):
            doc_ratios.append(doc[last_turn] / doc[1])
    return {
        "turns": len(records), "lost": lost,
        "ttft_by_turn": by_turn(records),
        "followup_p95_ttft_s": finite(pct(follow, 95)),
        "followup_p95_ttft_s_per_seed": {
            str(run["seed"]): finite(pct([r.ttft for r in run["records"] if r.turn > 1], 95))
            for run in runs},
        "cached_share": sum(r.cached_tokens for r in records) / prompt if prompt else 0.0,
        "prompt_tokens": prompt,
        "e2e_p95_s_per_seed": {str(run["seed"]): finite(pct([r.latency for r in run["records"]]
                                                            + [math.inf] * (run["planned"]
                                                                            - len(run["records"])),
                                                            95)) for run in runs},
        "doc_last_vs_first_ttft": statistics.median(doc_ratios) if doc_ratios else None,
        "doc_last_vs_first_ttft_per_seed": doc_ratios,
        "served": {role: sum(1 for r in records if r.role == role) for role in ROLES},
        "kv_peak": [run["kv_peak"] for run in runs],
    }


def ratio_ci(top: dict[str, float | None], base: dict[str, float | None],
             rng: random.Random) -> dict:
    """median over seeds of top / median of base, with a bootstrap 95 % interval."""
    seeds = [s for s in top if top[s] is not None and base.get(s) is not None]
    if not seeds:
        return {"ratio": None, "ci95": None}
    draws = []
    for _ in range(2000):
        sample = [rng.choice(seeds) for _ in seeds]
        draws.append(statistics.median(top[s] for s in sample)  # type: ignore[misc]
                     / statistics.median(base[s] for s in sample))  # type: ignore[misc]
    draws.sort()
    point = statistics.median(top[s] for s in seeds) / statistics.median(  # type: ignore[misc]
        base[s] for s in seeds)  # type: ignore[misc]
    return {"ratio": point, "ci95": [draws[50], draws[1949]]}


def main() -> None:
    args = quick_parser(__doc__.splitlines()[0]).parse_args()
    model = demo_model()
    logging_quiet()
    if args.quick:
        seeds, turns, doc_tokens, conversations = SEEDS[:2], 3, 120, 3
    else:
        seeds = SEEDS[:int(os.environ.get("CACHE_BENCH_SEEDS", "3"))]
        turns = int(os.environ.get("CACHE_BENCH_TURNS", "10"))
        doc_tokens = int(os.environ.get("CACHE_BENCH_DOC_TOKENS", "1500"))
        conversations = int(os.environ.get("CACHE_BENCH_CONVERSATIONS", "3"))
    n_ctx = max(1024, doc_tokens + turns * (MAX_TOKENS + 60) + 256)
    t0 = time.perf_counter()
    counter = LlamaEngine.load(model, LoadSettings(n_ctx=n_ctx, n_gpu_layers=0, n_threads=1,
                                                   embedding=False))
    try:
        doc = document_text(doc_tokens, counter.count_tokens)
        doc_measured = counter.count_tokens(doc)
    finally:
        counter.close()
    rate = measure_rate(model, n_ctx)
    print(f"service rate {rate:.3f} jobs/s; document {doc_measured} tokens; "
          f"{conversations} conversations x {turns} turns; seeds {seeds}")
    runs: dict[str, list[dict]] = {p: [] for p in POLICIES}
    # Per policy run: what has not ended by then is lost (counted in every figure).
    deadline_s = 120.0 if args.quick else float(os.environ.get(
        "CACHE_BENCH_DEADLINE_S", 900.0 / len(seeds) / len(POLICIES) * 1.5))
    for i, seed in enumerate(seeds):
        the_plan = plan(seed, conversations, turns, rate, doc)
        order = POLICIES[i % len(POLICIES):] + POLICIES[:i % len(POLICIES)]
        for policy in order:
            run = run_policy(model, policy, the_plan, n_ctx, deadline_s)
            run["seed"] = seed
            runs[policy].append(run)
            recs = run["records"]
            print(f"  seed {seed} {policy:<20} turns {len(recs)}/{run['planned']} "
                  f"span {run['span_s']:.1f}s cached "
                  f"{sum(r.cached_tokens for r in recs)}/{sum(r.prompt_tokens for r in recs)}")
    rows = {p: summarize(runs[p], the_plan.doc_conversation, turns) for p in POLICIES}
    rng = random.Random(0)
    base = rows["adaptive"]
    for policy, row in rows.items():
        row["e2e_p95"] = dict(zip(("median_s", "lo_s", "hi_s"), bootstrap_median(
            {s: v if v is not None else math.inf for s, v in row["e2e_p95_s_per_seed"].items()},
            rng), strict=True))
        if policy != "adaptive":
            row["vs_cache_aware"] = {
                "e2e_p95": ratio_ci(base["e2e_p95_s_per_seed"], row["e2e_p95_s_per_seed"], rng),
                "followup_p95_ttft": ratio_ci(base["followup_p95_ttft_s_per_seed"],
                                              row["followup_p95_ttft_s_per_seed"], rng),
            }
    budget = getattr(AppConfig(), "prompt_cache", None)
    report = {
        "quick": args.quick, "seeds": list(seeds), "turns": turns,
        "conversations": conversations, "document_tokens": doc_measured, "n_ctx": n_ctx,
        "service_rate_jobs_per_s": rate, "load_factor": LOAD_FACTOR, "max_tokens": MAX_TOKENS,
        "policies": rows,
        "kv_budget": {k: v for k, v in vars(budget).items() if isinstance(v, int | float)}
        if budget is not None else None,
        "elapsed_s": time.perf_counter() - t0,
    }
    off = rows["adaptive-cache-off"]["vs_cache_aware"]["followup_p95_ttft"]["ratio"]
    checks = {
        f"doc turn {turns} / turn 1 TTFT <= 1.3 (cache-aware)":
            (base["doc_last_vs_first_ttft"] or math.inf) <= 1.3,
        "follow-up p95 TTFT cache-aware / cache-off <= 0.3": off is not None and off <= 0.3,
        "e2e p95 cache-aware below every other policy (interval < 1)": all(
            (rows[p]["vs_cache_aware"]["e2e_p95"]["ci95"] or [math.inf, math.inf])[1] < 1
            for p in POLICIES if p != "adaptive"),
    }
    report["checks"] = checks
    out = write_results("cache", report)
    for policy, row in rows.items():
        print(f"{policy:<20} cached {row['cached_share']:.2f}  follow-up p95 TTFT "
              f"{row['followup_p95_ttft_s']}  e2e p95 {row['e2e_p95']}  doc ratio "
              f"{row['doc_last_vs_first_ttft']}  {row.get('vs_cache_aware', '')}")
    print_checks(checks)
    print(f"wrote {out} in {report['elapsed_s']:.0f} s")


def logging_quiet() -> None:
    import logging
    logging.basicConfig(level=logging.WARNING)


if __name__ == "__main__":
    main()
