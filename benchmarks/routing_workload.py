"""What the routing benchmarks share: prompts nobody tuned on, seeded arrivals,
the quality table that scores fit, and the figures with lost prompts counted.

Prompts. Drawn from the classifier corpus's held-out source groups
(`training/train_classifier.py` HELD_OUT: never trained on, and no router
default was chosen on them), never from the tests' `router_eval*.jsonl` or a
trained source: the misroutes a user would see count. At most
`PER_SOURCE` prompts per source group and kind (so no one source sets the
mix), chosen by a hash of the text (no look at any outcome), and only those
that fit the benchmarks' 1,024-token context with the answer (`MAX_CHARS`).

Fit. `QUALITY` says how well each role's model (a 7B coder, a 4B general
model, a 14B reasoner) answers each true kind. It is the benchmarks' own and no
policy's configuration reads it: Zeta runs its default preferences
(`DEFAULT_PREFERENCES`, written apart from this table), and the LiteLLM
set-ups of peer_bench take theirs from the same defaults.

Lost. A prompt that fails, or has not ended by the drain deadline, is lost. It
counts in every figure: its latency is +inf in the percentiles (so a policy
that loses more than 5 % has an infinite p95), and the count stands beside.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zeta_desktop.core.routing.classifier import TaskKind

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "training" / "data" / "corpus.jsonl"
TRAINER = ROOT / "training" / "train_classifier.py"
PER_SOURCE = 12
MAX_CHARS = 1200  # about 300 tokens: the prompt and an 80-token answer fit n_ctx 1024
MIX = {TaskKind.CODE: 0.6, TaskKind.SIMPLE: 0.25, TaskKind.REASONING: 0.15}
ROLES = ("coder", "embedder", "reasoner")
# Answer length in proportion to the roles' sizes (4B : 7B : 14B).
MAX_TOKENS = {"coder": 40, "embedder": 23, "reasoner": 80}
QUALITY = {
    "coder": {TaskKind.CODE: 1.0, TaskKind.SIMPLE: 0.85, TaskKind.REASONING: 0.55},
    "embedder": {TaskKind.CODE: 0.45, TaskKind.SIMPLE: 0.75, TaskKind.REASONING: 0.35},
    "reasoner": {TaskKind.CODE: 0.85, TaskKind.SIMPLE: 0.9, TaskKind.REASONING: 1.0},
}
ACCEPTABLE_QUALITY = 0.7
# Code bursts (which static sends to the coder): BURST prompts at once, making
# BURST_SHARE of all arrivals, so their spacing follows the measured rate too.
BURST, BURST_SHARE = 4, 0.25
BOOTSTRAP = 2000


def held_out_groups() -> tuple[str, ...]:
    """The trainer's HELD_OUT tuple, read from its source (importing it pulls scipy)."""
    names: dict[str, object] = {}
    for node in ast.parse(TRAINER.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id.startswith("HELD_OUT"):
            exec(compile(ast.Module([node], []), str(TRAINER), "exec"), names)
    return tuple(names["HELD_OUT"])  # type: ignore[arg-type]


def source_group(source: str) -> str:
    return "/".join(source.split("/")[:2])


def load_prompts(per_source: int = PER_SOURCE) -> dict[TaskKind, list[str]]:
    """Held-out prompts by true kind (see the module's docstring)."""
    held = set(held_out_groups())
    by_group: dict[tuple[TaskKind, str], list[str]] = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        row = json.loads(line)
        group = source_group(row["source"])
        if group not in held or group.startswith("zeta-tests") or row["kind"] == "embedding":
            continue
        if len(row["prompt"]) > MAX_CHARS:
            continue
        by_group.setdefault((TaskKind(row["kind"]), group), []).append(row["prompt"])
    pools: dict[TaskKind, list[str]] = {kind: [] for kind in MIX}
    for (kind, _group), prompts in sorted(by_group.items(), key=lambda kv: (kv[0][0].value,
                                                                            kv[0][1])):
        ranked = sorted(prompts, key=lambda p: hashlib.sha1(p.encode()).hexdigest())
        pools[kind].extend(ranked[:per_source])
    return pools


@dataclass(frozen=True)
class Arrival:
    at: float
    kind: TaskKind  # the true kind (the label), not what the classifier says
    prompt: str


def draw_from_mix(rng: random.Random, pools: dict[TaskKind, list[str]]) -> tuple[TaskKind, str]:
    """One prompt as the workload draws them: a kind by MIX, then one of its prompts."""
    kinds, weights = zip(*MIX.items(), strict=True)
    kind = rng.choices(kinds, weights)[0]
    return kind, rng.choice(pools[kind])


def workload(seed: int, seconds: float, rate: float, pools: dict[TaskKind, list[str]]
             ) -> list[Arrival]:
    """Poisson arrivals at `rate`/s (bursts included), seeded, so identical per policy."""
    rng = random.Random(seed)
    burst_every_s = BURST / (BURST_SHARE * rate)
    poisson_rate = (1 - BURST_SHARE) * rate
    arrivals, now = [], 0.0
    while True:
        now += rng.expovariate(poisson_rate)
        if now >= seconds:
            break
        arrivals.append(Arrival(now, *draw_from_mix(rng, pools)))
    at = burst_every_s / 2
    while at < seconds:
        for i in range(BURST):
            code = pools[TaskKind.CODE]
            arrivals.append(Arrival(at + i * 0.01, TaskKind.CODE, rng.choice(code)))
        at += burst_every_s
    return sorted(arrivals, key=lambda a: a.at)


# -- figures -------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; +inf values (lost prompts) sort last."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def finite(value: float) -> float | None:
    """For JSON: an infinite figure (too many prompts lost) as null."""
    return None if math.isinf(value) or math.isnan(value) else value


def quality_of(role: str, kind: TaskKind) -> float:
    return QUALITY.get(role, {}).get(kind, 0.0)


def fit_share(served: Sequence[tuple[str, TaskKind]], total: int) -> float:
    """Prompts answered by a model of acceptable quality, over all prompts sent
    (a lost prompt fits nothing)."""
    good = sum(quality_of(role, kind) >= ACCEPTABLE_QUALITY for role, kind in served)
    return good / max(1, total)


def bootstrap_ratio(numerator: dict[int, float], denominators: dict[str, dict[int, float]],
                    rng: random.Random) -> tuple[float, float, float]:
    """median(policy's p95 over seeds) / median(best baseline's), with a 95 % interval.

    Seeds are resampled with replacement, and the best baseline is chosen anew
    in each resample (the min over baselines of their median), so picking the
    best baseline after the fact does not narrow the interval.
    """
    seeds = list(numerator)

    def ratio(sample: list[int]) -> float:
        top = statistics.median(numerator[s] for s in sample)
        best = min(statistics.median(d[s] for s in sample) for d in denominators.values())
        if math.isinf(top):
            return math.inf
        return top / best if best and not math.isinf(best) else 0.0

    point = ratio(seeds)
    draws = sorted(ratio([rng.choice(seeds) for _ in seeds]) for _ in range(BOOTSTRAP))
    return point, draws[int(0.025 * BOOTSTRAP)], draws[int(0.975 * BOOTSTRAP) - 1]


def bootstrap_median(values: dict[int, float], rng: random.Random) -> tuple[float, float, float]:
    """The median over seeds with its 95 % interval (seeds resampled)."""
    seeds = list(values)
    point = statistics.median(values.values())
    draws = sorted(statistics.median(values[rng.choice(seeds)] for _ in seeds)
                   for _ in range(BOOTSTRAP))
    return point, draws[int(0.025 * BOOTSTRAP)], draws[int(0.975 * BOOTSTRAP) - 1]
