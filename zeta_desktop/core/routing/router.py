"""ZetaDynamicRouter: which model serves a task, from live signals and thresholds.

Policies, selectable by name:
- static: always the preferred model for the task (the baseline).
- round-robin: capable models in turn.
- least-busy: the capable model with the fewest jobs queued or running.
- lowest-latency: the lowest recent latency per token (LiteLLM's strategy).
- adaptive: the preferred model unless it breaks a threshold, else the capable
  model with the lowest predicted completion time, weighted by how well it
  fits the task; with hysteresis, a circuit breaker and a feedback loop that
  re-fits service times and spill limits from recent history.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Unpack

from zeta_desktop.core.engines.base import NoRoleAvailableError
from zeta_desktop.core.fleet.prefix_cache import PromptReading
from zeta_desktop.core.routing.classifier import Classification, TaskKind
from zeta_desktop.core.routing.telemetry import ModelSignals, Snapshot, Telemetry
from zeta_desktop.core.settings import POLICIES, ThresholdChanges, Thresholds

log = logging.getLogger(__name__)

ACCEPTABLE_PREFERENCE = 0.5  # a model at or above this is an acceptable fit for a task
# Passages from documents: room a context keeps beyond them (question, some
# history, the answer).
CONTEXT_HEADROOM_TOKENS = 512
# How fast a model reads a prompt before anything measured it there (each
# endpoint measures its own: fleet/reading_speed.py).
DEFAULT_PREFILL_TOKENS_PER_S = 200.0
# A model holding this many more of a prompt's tokens than the preferred one
# (a conversation's turns, not just a shared system prompt) competes for it
# on predicted time: it need not read them again.
HELD_PREFIX_MIN_TOKENS = 64
UNSERVABLE_STATES = frozenset({"unavailable", "stopped"})
# A whole unit of quality loss (a model that fits not at all) is worth this many
# answers of the preferred model's time at speed_vs_quality 0.5; the slider
# scales it by (1 - s) / s.
QUALITY_ANSWERS = 4.0
# A second kind at least this likely makes a prompt torn: its model competes.
TORN_SHARE = 0.3
_CHAT_KINDS = {k.value: k for k in (TaskKind.SIMPLE, TaskKind.CODE, TaskKind.REASONING)}


DEFAULT_PREFERENCES: dict[str, dict[TaskKind, float]] = {
    "coder": {TaskKind.SIMPLE: 1.0, TaskKind.CODE: 1.0, TaskKind.REASONING: 0.6},
    "embedder": {
        TaskKind.SIMPLE: 0.8,
        TaskKind.CODE: 0.5,
        TaskKind.REASONING: 0.4,
        TaskKind.EMBEDDING: 1.0,
    },
    "reasoner": {TaskKind.SIMPLE: 0.7, TaskKind.CODE: 0.8, TaskKind.REASONING: 1.0},
}

# A role the user named themselves: fit for chat of every kind until its
# preference says otherwise.
GENERIC_PREFERENCE: dict[TaskKind, float] = {
    TaskKind.SIMPLE: 0.7, TaskKind.CODE: 0.7, TaskKind.REASONING: 0.7,
}


@dataclass(frozen=True)
class RoleProfile:
    role: str
    can_chat: bool
    can_embed: bool
    preference: dict[TaskKind, float]
    on_gpu: bool = False
    n_ctx: int = 0  # the context it is loaded with; 0: unknown (a server that fits it)

    def fit(self, kind: TaskKind) -> float:
        if kind is TaskKind.EMBEDDING:
            return self.preference.get(kind, 1.0) if self.can_embed else 0.0
        return self.preference.get(kind, 0.0) if self.can_chat else 0.0


@dataclass(slots=True)
class Decision:
    role: str  # the role chosen by task fit and cost
    kind: TaskKind
    policy: str
    reason: str
    runner_up: str | None
    spilled: bool
    preferred: str
    predicted_wait_s: dict[str, float] = field(default_factory=dict)
    classification: Classification | None = None
    signals: dict[str, ModelSignals] = field(default_factory=dict)
    endpoint: str = ""  # the replica of that role, by predicted completion ('' = the role's own)

    @property
    def target(self) -> str:
        """The endpoint key to submit to."""
        return self.endpoint or self.role


@dataclass(frozen=True)
class Adjustment:
    at: float
    role: str
    what: str
    old: float
    new: float
    reason: str

    def line(self) -> str:
        return f"{self.role}: {self.what} {self.old:g} -> {self.new:g} ({self.reason})"


class ZetaDynamicRouter:
    """Thread-safe: route() from any thread, thresholds changed from any other."""

    SERVICE_BOUNDS_S = (0.05, 600.0)
    REFIT_MIN_SAMPLES = 3
    REFIT_CHANGE = 0.15  # re-fit a service estimate only when it moved by 15 %
    KEEP_SPILL_MARGIN = 0.85  # a new target must be 15 % cheaper to replace the current one
    RETURN_WAIT_FRACTION = 0.75  # go back to the preferred model below 75 % of the wait limit

    def __init__(
        self,
        profiles: dict[str, RoleProfile],
        telemetry: Telemetry,
        thresholds: Thresholds | None = None,
        policy: str = "adaptive",
        prior_service_s: float = 3.0,
        prior_ttft_s: float = 0.3,
        cache_aware: bool = True,
    ) -> None:
        self.profiles = dict(profiles)
        # Off: what each model's cache holds is not priced (every model reads
        # the whole prompt), the baseline `make bench-cache` measures against.
        self.cache_aware = cache_aware
        self.telemetry = telemetry
        self._thresholds = (thresholds or Thresholds()).validated()
        self._policy = self._check_policy(policy)
        self.prior_service_s = prior_service_s
        self.prior_ttft_s = prior_ttft_s
        self._lock = threading.Lock()
        self._decision = threading.local()  # per route() call: each endpoint's wait
        self._spilling: dict[TaskKind, str] = {}
        self._spill_limit: dict[str, int] = {}
        self._service_estimate: dict[str, float] = {}
        self._round_robin = dict.fromkeys(TaskKind, 0)
        self.adjustments: deque[Adjustment] = deque(maxlen=200)  # the latest
        self._adjustments_made = 0  # ever, so readers can tell what is new
        # What the user's choices are measured against, and Reset goes back to.
        self._default_preference = {r: dict(p.preference) for r, p in self.profiles.items()}

    # -- settings (any thread) ------------------------------------------------

    @staticmethod
    def _check_policy(policy: str) -> str:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
        return policy

    @property
    def policy(self) -> str:
        return self._policy

    @policy.setter
    def policy(self, value: str) -> None:
        self._policy = self._check_policy(value)
        with self._lock:
            self._spilling.clear()

    @property
    def thresholds(self) -> Thresholds:
        return self._thresholds

    def set_thresholds(self, thresholds: Thresholds) -> None:
        # One reference swap: a decision sees either the old set or the new.
        self._thresholds = thresholds.validated()

    def update_thresholds(self, **changes: Unpack[ThresholdChanges]) -> Thresholds:
        with self._lock:
            updated = dataclasses.replace(self._thresholds, **changes).validated()
            self._thresholds = updated
        return updated

    def set_profile(self, profile: RoleProfile) -> None:
        with self._lock:
            self.profiles = {**self.profiles, profile.role: profile}
            self._default_preference[profile.role] = dict(profile.preference)

    # -- learning from the user's choices (any thread) ---------------------------

    LEARN_STEP = 0.05  # one choice moves a preference this much
    LEARN_BOUND = 0.3  # and all choices together at most this far from the default

    def learn_choice(self, kind: TaskKind, chosen: str, instead_of: str | None,
                     how: str = "chose") -> list[Adjustment]:
        """The user sent a `kind` prompt to `chosen` where the router picked
        `instead_of`: nudge both preferences for that kind, within bounds, and log
        why. Embedding and same-role choices teach nothing."""
        if kind is TaskKind.EMBEDDING or instead_of in (None, chosen):
            return []
        now = time.monotonic()
        made = []
        reason = f"you {how} {chosen} over {instead_of} for a {kind.value} prompt"
        with self._lock:
            for role, step in ((chosen, self.LEARN_STEP), (instead_of, -self.LEARN_STEP)):
                profile = self.profiles.get(role)
                if profile is None or not profile.can_chat:
                    continue
                default = self._default_preference.get(role, {}).get(kind, profile.fit(kind))
                old = profile.preference.get(kind, default)
                low = max(0.05, default - self.LEARN_BOUND)
                high = min(1.0, default + self.LEARN_BOUND)
                new = round(min(high, max(low, old + step)), 4)
                if new == old:
                    continue
                preference = {**profile.preference, kind: new}
                self.profiles = {**self.profiles, role: dataclasses.replace(
                    profile, preference=preference)}
                made.append(Adjustment(now, role, f"{kind.value} preference", old, new, reason))
            self._spilling.pop(kind, None)
            for adjustment in made:
                log.info("router: %s", adjustment.line())
                self.adjustments.append(adjustment)
                self._adjustments_made += 1
        return made

    def learned_shift(self) -> dict[str, dict[str, float]]:
        """How far the user's choices moved each preference from its default."""
        with self._lock:
            shifts: dict[str, dict[str, float]] = {}
            for role, profile in self.profiles.items():
                for kind, value in profile.preference.items():
                    default = self._default_preference.get(role, {}).get(kind, value)
                    if abs(value - default) > 1e-9:
                        shifts.setdefault(role, {})[kind.value] = round(value - default, 4)
            return shifts

    def apply_learned(self, shifts: dict[str, dict[str, float]]) -> None:
        """Restore `learned_shift()` saved earlier, clamped to today's bounds."""
        with self._lock:
            for role, kinds in shifts.items():
                profile = self.profiles.get(role)
                if profile is None:
                    continue
                preference = dict(profile.preference)
                for kind_name, shift in kinds.items():
                    kind = TaskKind(kind_name)
                    default = self._default_preference.get(role, {}).get(kind, profile.fit(kind))
                    bounded = max(-self.LEARN_BOUND, min(self.LEARN_BOUND, float(shift)))
                    preference[kind] = round(min(1.0, max(0.05, default + bounded)), 4)
                self.profiles = {**self.profiles, role: dataclasses.replace(
                    profile, preference=preference)}

    def reset_learned(self) -> None:
        """Forget what the user's choices taught (Reset to defaults)."""
        now = time.monotonic()
        with self._lock:
            for role, profile in self.profiles.items():
                default = self._default_preference.get(role)
                if default is not None and default != profile.preference:
                    self.profiles = {**self.profiles, role: dataclasses.replace(
                        profile, preference=dict(default))}
                    adjustment = Adjustment(now, role, "preferences", 0, 0,
                                            "reset to defaults: learned choices forgotten")
                    self.adjustments.append(adjustment)
                    self._adjustments_made += 1
            self._spilling.clear()

    # -- estimates --------------------------------------------------------------

    def service_s(self, role: str, signals: ModelSignals) -> float:
        key = signals.role or role  # the endpoint's: replicas of a role differ
        return self._service_estimate.get(key) or signals.service_s or self.prior_service_s

    def job_service_s(self, role: str, signals: ModelSignals, kind: str,
                      prompt_tokens: int = 0) -> float:
        """One job here: reading its prompt at the rate measured here plus the
        answer its kind takes here, once both are measured (a long prompt
        takes longer than a short one of the same kind); else the kind's
        whole service time."""
        per_token = self.reading_s_per_token(signals)
        if per_token is not None and prompt_tokens > 0:
            decode = signals.decode_by_kind.get(kind)
            if decode is not None:
                return prompt_tokens * per_token + decode
        return signals.service_by_kind.get(kind) or self.service_s(role, signals)

    def _reading(self, signals: ModelSignals) -> PromptReading | None:
        """How this endpoint would read the prompt being routed, when known."""
        readings: Mapping[str, PromptReading] | None = getattr(self._decision, "readings", None)
        return readings.get(signals.role) if readings else None

    def held_tokens(self, signals: ModelSignals) -> int:
        """Of the prompt being routed, the tokens this endpoint's cache holds."""
        reading = self._reading(signals)
        return reading.held_tokens if reading is not None else 0

    def reading_s_per_token(self, signals: ModelSignals) -> float | None:
        """Seconds per prompt token this endpoint reads: as its worker
        measured it (at load, then every answer), else from its answers'
        times to the first token; None before anything measured it."""
        reading = self._reading(signals)
        if reading is not None and reading.s_per_token is not None:
            return reading.s_per_token
        return signals.prefill_s_per_token

    def _own_service_s(self, role: str, signals: ModelSignals, kind: str,
                       prompt_tokens: int) -> float:
        """The job being routed, here: reading what this endpoint's cache
        lacks of its prompt, then its kind's answer. Before this kind's
        answers are measured here, the answer is a typical job's time here
        less its typical reading (the time to the first token): a cold model
        must still read a long prompt whole, and the one holding it need not."""
        reading = self._reading(signals)
        per_token = self.reading_s_per_token(signals)
        if reading is None or per_token is None or prompt_tokens <= 0:
            return self.job_service_s(role, signals, kind, prompt_tokens)
        decode = signals.decode_by_kind.get(kind)
        if decode is None:
            whole = signals.service_by_kind.get(kind) or self.service_s(role, signals)
            decode = max(0.0, whole - (signals.ttft_s or 0.0))
        return reading.unread_tokens * per_token + decode

    def predicted_wait_s(self, role: str, signals: ModelSignals) -> float:
        """Until this new job would start: each job waiting at its own kind's
        service time here, plus what is left of the running one; a server with
        several slots starts it at once while one is free, and drains its
        queue that many at a time. Worked out once per endpoint per decision."""
        memo: dict[int, float] | None = getattr(self._decision, "waits", None)
        if memo is None:
            return self._wait_s(role, signals)
        key = id(signals)  # the snapshot's objects live as long as the decision
        wait = memo.get(key)
        if wait is None:
            wait = memo[key] = self._wait_s(role, signals)
        return wait

    def _wait_s(self, role: str, signals: ModelSignals) -> float:
        if not signals.queue_depth and not signals.in_flight:
            return 0.0
        service = self.service_s(role, signals)
        depth = signals.queue_depth
        waiting = signals.waiting_jobs[:depth]
        # Jobs we do not know (a server's other clients) at the overall time.
        queued = (depth - len(waiting)) * service
        for kind, tokens in waiting:
            queued += self.job_service_s(role, signals, kind, tokens)
        running = (self.job_service_s(role, signals, *signals.running_jobs[0])
                   if signals.running_jobs else service)
        slots = max(1, signals.slots)
        if slots == 1:
            return queued + signals.in_flight * self._left_of_running(
                running, signals.running_for_s)
        ahead = depth - max(0, slots - signals.in_flight)
        if ahead < 0:
            return 0.0
        share = queued * ahead / max(1, depth)
        return self._left_of_running(running, signals.running_for_s) + share / slots

    @staticmethod
    def _left_of_running(service: float, running_for: float | None) -> float:
        """The running job's expected remainder: a job that has run most of a
        typical service time is nearly done. At least a tenth (it may run
        long); half when its start is unknown."""
        if running_for is None:
            return 0.5 * service
        return max(0.1 * service, service - running_for)

    def predicted_completion_s(
        self, role: str, signals: ModelSignals, kind: TaskKind | None = None,
        prompt_tokens: int = 0,
    ) -> float:
        """The wait plus this job's own service: reading what this endpoint's
        cache lacks of its prompt, and its kind's answer here, once measured."""
        own = (self._own_service_s(role, signals, kind.value, prompt_tokens)
               if kind is not None else self.service_s(role, signals))
        return self.predicted_wait_s(role, signals) + own

    def spill_limit(self, role: str) -> int:
        return min(self._thresholds.max_queue, self._spill_limit.get(role, 10**6))

    def best_replica(self, role: str, exclude: Collection[str] = (),
                     kind: TaskKind = TaskKind.SIMPLE) -> str | None:
        """The replica of `role` a job sent there should go to (the user chose
        the role); one not tried yet even if it is down, so the user hears why;
        None when every replica was tried."""
        snap = self.telemetry.snapshot()
        best = self._best_replicas(kind, snap, exclude).get(role)
        if best is not None:
            return best.role
        return next((key for key, signals in snap.models.items()
                     if signals.role_name == role and key not in exclude), None)

    def _best_replicas(
        self, kind: TaskKind, snap: Snapshot, exclude: Collection[str], prompt_tokens: int = 0,
    ) -> dict[str, ModelSignals]:
        """Step two, worked out first: each role's replica predicted to finish
        this task soonest (queue, slots, service time), one not cooling down
        where there is one. Roles are then weighed by that replica's signals."""
        by_role: dict[str, list[ModelSignals]] = {}
        for key, signals in snap.models.items():
            if key in exclude or signals.state in UNSERVABLE_STATES:
                continue
            by_role.setdefault(signals.role_name, []).append(signals)
        chosen: dict[str, ModelSignals] = {}
        for role, options in by_role.items():
            if len(options) == 1:  # most roles: nothing to choose between
                chosen[role] = options[0]
                continue
            # A replica with no history yet (new, or just back) is priced like
            # its siblings, which serve the same role, not at the cold prior:
            # else it would lose to a busy sibling that has a short record.
            known = [self.service_s(s.role, s) for s in options
                     if s.service_s is not None or s.role in self._service_estimate]
            if known and len(known) < len(options):
                typical = statistics.median(known)
                by_role[role] = [
                    s if s.service_s is not None or s.role in self._service_estimate
                    else dataclasses.replace(s, service_s=typical)
                    for s in options
                ]
            chosen[role] = min(by_role[role], key=lambda s: (
                s.cooling_down, self.predicted_completion_s(s.role, s, kind, prompt_tokens)))
        return chosen

    # -- routing ------------------------------------------------------------------

    def route(
        self,
        kind: TaskKind,
        snapshot: Snapshot | None = None,
        exclude: Collection[str] = (),
        classification: Classification | None = None,
        commit: bool = True,
        context_tokens: int = 0,
        prompt_tokens: int = 0,
        readings: Mapping[str, PromptReading] | None = None,
    ) -> Decision:
        """Choose a model for a task. `commit=False` previews the choice without
        moving the router's state (hysteresis, round-robin turn).

        `context_tokens`: what the prompt carries besides the question (passages
        from documents): a model whose context cannot hold it loses to one that
        can, and reading it (prefill) counts in every model's predicted cost.
        `prompt_tokens`: the job's own size (estimate_prompt_tokens), which its
        reading time on each model follows. `readings`, per endpoint: how much
        of this prompt its cache holds and how fast it reads the rest (from
        the fleet's workers); a follow-up goes to the model holding its
        conversation unless another would still finish first."""
        self._decision.waits = {}
        self._decision.readings = readings if self.cache_aware else None
        try:
            return self._route(kind, snapshot, exclude, classification, commit, context_tokens,
                               prompt_tokens)
        finally:
            self._decision.waits = None
            self._decision.readings = None

    def _route(self, kind: TaskKind, snapshot: Snapshot | None, exclude: Collection[str],
               classification: Classification | None, commit: bool,
               context_tokens: int, prompt_tokens: int = 0) -> Decision:
        full = snapshot or self.telemetry.snapshot()
        profiles = self.profiles
        # Two steps: the role by task fit against its best replica's cost,
        # then that replica. The role-level logic below sees one endpoint per
        # role (the role's own key when it has a single replica).
        models = self._best_replicas(kind, full, exclude, prompt_tokens)
        snap = Snapshot(models, full.machine, full.taken_at)
        fits = {role: profile.fit(kind) for role, profile in profiles.items()}
        capable = [role for role, fit in fits.items() if fit > 0 and role in models]
        if not capable:
            reasons = ", ".join(
                f"{key} {signals.state}" + (" (tried)" if key in exclude else "")
                for key, signals in full.models.items()
                if signals.role_name in profiles
            )
            raise NoRoleAvailableError(
                f"no model can serve a {kind.value} task right now ({reasons or 'none loaded'})"
            )
        context_note = ""
        if context_tokens:
            holding = [r for r in capable if self.holds_context(r, context_tokens)]
            short = [r for r in capable if r not in holding]
            context_note = f"; documents add ~{context_tokens} tokens of context"
            if holding and short:
                capable = holding
                context_note += f" ({', '.join(short)} too small a context)"
        # Highest preference first; ties keep the configured role order.
        capable.sort(key=lambda r: -fits[r])
        preferred = capable[0]
        policy = self._policy
        if policy == "adaptive":
            role, runner_up, reason, spilled = self._adaptive(
                kind, capable, snap, commit, context_tokens, classification, prompt_tokens)
        else:
            role, runner_up, reason = self._baseline(policy, kind, capable, snap, commit)
            spilled = role != preferred
        waits = {
            key: self.predicted_wait_s(key, signals)
            for key, signals in full.models.items()
            if signals.role_name in capable and key not in exclude
            and signals.state not in UNSERVABLE_STATES
        }
        endpoint = models[role].role
        replicas = sum(1 for s in full.models.values() if s.role_name == role)
        if replicas > 1:
            reason += (f"; replica {endpoint}, predicted wait {waits[endpoint]:.1f} s "
                       f"({models[role].slots} slot(s))")
        reading = self._reading(models[role])
        if (reading is not None and reading.held_tokens >= HELD_PREFIX_MIN_TOKENS
                and not reason.startswith("holds ")):
            reason += "; " + holds_note(reading)
        reason += context_note
        return Decision(
            role=role,
            kind=kind,
            policy=policy,
            reason=f"{kind.value} -> {role}: {reason}",
            runner_up=runner_up,
            spilled=spilled,
            preferred=preferred,
            predicted_wait_s=waits,
            classification=classification,
            signals=full.models,
            endpoint=endpoint,
        )

    def _baseline(
        self, policy: str, kind: TaskKind, capable: list[str], snap: Snapshot, commit: bool
    ) -> tuple[str, str | None, str]:
        models = snap.models
        if policy == "static":
            order = capable
            reason = "preferred for this task (static)"
        elif policy == "round-robin":
            turn = self._round_robin[kind] % len(capable)
            if commit:
                self._round_robin[kind] += 1
            order = capable[turn:] + capable[:turn]
            reason = "next in turn (round-robin)"
        elif policy == "least-busy":
            order = sorted(capable, key=lambda r: models[r].load)
            reason = f"fewest jobs ({models[order[0]].load}) (least-busy)"
        else:  # lowest-latency; no data yet counts as 0 so every model gets tried
            order = sorted(capable, key=lambda r: models[r].latency_per_token_s or 0.0)
            best = models[order[0]].latency_per_token_s
            shown = f"{best * 1000:.0f} ms/token" if best else "no data yet"
            reason = f"lowest latency per token, {shown} (lowest-latency)"
        return order[0], (order[1] if len(order) > 1 else None), reason

    def _queue_breaks(self, role: str, signals: ModelSignals) -> list[str]:
        """Soft limits: the model is busy. Reasons to look elsewhere, not to avoid it."""
        broken = []
        limit = self.spill_limit(signals.role or role)
        # A server's extra slots are room, not queue.
        if signals.load - (max(1, signals.slots) - 1) > limit:
            broken.append(f"{role} queue {signals.load} > {limit}")
        wait = self.predicted_wait_s(role, signals)
        if wait > self._thresholds.max_wait_s:
            broken.append(f"predicted wait {wait:.1f} s > {self._thresholds.max_wait_s:g} s")
        return broken

    def _hard_breaks(self, role: str, signals: ModelSignals, snap: Snapshot) -> list[str]:
        """Limits that make a model a poor target however short its queue."""
        t = self._thresholds
        broken = []
        if signals.cooling_down:
            broken.append(
                f"{role} cooling down {signals.cooldown_left_s:.0f} s after "
                f"{signals.consecutive_failures} failure(s)"
            )
        if signals.success_rate < t.min_success_rate:
            broken.append(f"{role} success {signals.success_rate:.0%} < {t.min_success_rate:.0%}")
        machine = snap.machine
        # The GPU readings are this machine's: a server's replica is not held to them.
        if self.profiles[role].on_gpu and signals.local and machine is not None:
            util, mem = machine.max_gpu_util_pct, machine.max_gpu_mem_pct
            if util is not None and util > t.gpu_util_ceiling_pct:
                broken.append(f"GPU {util:.0f}% busy > {t.gpu_util_ceiling_pct:.0f}%")
            if mem is not None and mem > t.gpu_mem_ceiling_pct:
                broken.append(f"GPU memory {mem:.0f}% > {t.gpu_mem_ceiling_pct:.0f}%")
        return broken

    def _comfortably_within(self, role: str, signals: ModelSignals) -> bool:
        """Hysteresis: leave a spill only once the preferred model has real room."""
        return (
            signals.load - (max(1, signals.slots) - 1)
            <= max(0, self.spill_limit(signals.role or role) - 1)
            and self.predicted_wait_s(role, signals)
            <= self.RETURN_WAIT_FRACTION * self._thresholds.max_wait_s
        )

    def holds_context(self, role: str, context_tokens: int) -> bool:
        n_ctx = self.profiles[role].n_ctx
        return n_ctx == 0 or context_tokens + CONTEXT_HEADROOM_TOKENS <= n_ctx

    def prefill_s(self, signals: ModelSignals, context_tokens: int) -> float:
        """Reading `context_tokens` more, at the speed measured on this
        endpoint (DEFAULT_PREFILL_TOKENS_PER_S before anything measured it)."""
        if not context_tokens:
            return 0.0
        per_token = self.reading_s_per_token(signals)
        if per_token is None:
            return context_tokens / DEFAULT_PREFILL_TOKENS_PER_S
        return context_tokens * per_token

    def expected_loss(self, role: str, kind: TaskKind,
                      classification: Classification | None = None) -> float:
        """How much worse than a perfect fit this model is expected to answer,
        0..1: over the classifier's probabilities when it gave them (a prompt
        torn between simple and reasoning weighs both), else the kind's."""
        profile = self.profiles[role]
        scores = classification.scores if classification is not None else {}
        chat = {k: p for k, p in scores.items() if k in _CHAT_KINDS}
        total = sum(chat.values())
        if kind is TaskKind.EMBEDDING or total <= 0:
            return 1.0 - profile.fit(kind)
        return sum(p * (1.0 - profile.fit(_CHAT_KINDS[k])) for k, p in chat.items()) / total

    def quality_weight(self) -> float:
        """Seconds one whole unit of quality loss is worth, in answers of the
        preferred model: 0 at speed 1 (fastest wins), unbounded towards 0."""
        speed = self._thresholds.speed_vs_quality
        return QUALITY_ANSWERS * (1.0 - speed) / max(speed, 0.02)

    def _cost(self, role: str, kind: TaskKind, signals: ModelSignals,
              context_tokens: int = 0, classification: Classification | None = None,
              answer_s: float = 0.0, prompt_tokens: int = 0) -> float:
        """Predicted seconds to this answer's end (the queue ahead, each job at
        its kind's time here; reading the context; this answer), plus the
        expected quality loss priced in seconds by the slider (`answer_s`: one
        answer of the preferred model)."""
        done = self.predicted_completion_s(role, signals, kind, prompt_tokens) + self.prefill_s(
            signals, context_tokens)
        loss = self.expected_loss(role, kind, classification)
        return done + self.quality_weight() * answer_s * loss

    def _torn_choice(
        self, kind: TaskKind, capable: list[str], snap: Snapshot, context_tokens: int,
        classification: Classification | None, prompt_tokens: int,
    ) -> tuple[str, str | None, str, bool] | None:
        """When the classifier is torn between two kinds, the model the second
        kind prefers competes with the first's on predicted time plus expected
        quality loss over both kinds: a wrong guess costs seconds one way (the
        big model is slow) and answer quality the other. None: not torn, or the
        first kind's model is still the better bet."""
        scores = classification.scores if classification is not None else {}
        ranked = sorted(((p, k) for k, p in scores.items() if k in _CHAT_KINDS), reverse=True)
        if len(ranked) < 2 or ranked[1][0] < TORN_SHARE:
            return None
        second = _CHAT_KINDS[ranked[1][1]]
        models = snap.models
        alternatives = [r for r in capable if self.profiles[r].fit(second) > 0
                        and not self._hard_breaks(r, models[r], snap)]
        if not alternatives:
            return None
        alternative = max(alternatives, key=lambda r: self.profiles[r].fit(second))
        preferred = capable[0]
        if alternative == preferred:
            return None
        answer_s = self.job_service_s(preferred, models[preferred], kind.value, prompt_tokens)
        costs = {r: self._cost(r, kind, models[r], context_tokens, classification, answer_s,
                               prompt_tokens) for r in (preferred, alternative)}
        if costs[alternative] >= costs[preferred]:
            return None
        return (
            alternative,
            preferred,
            f"torn between {kind.value} {ranked[0][0]:.0%} and {second.value} "
            f"{ranked[1][0]:.0%}: predicted {costs[alternative]:.1f} s against "
            f"{preferred} {costs[preferred]:.1f} s, fit loss included",
            False,  # not a spill: the preferred model is not over any limit
        )

    def _held_choice(
        self, kind: TaskKind, capable: list[str], snap: Snapshot, context_tokens: int,
        classification: Classification | None, prompt_tokens: int,
    ) -> tuple[str, str | None, str, bool] | None:
        """A model that holds much more of the prompt than the preferred one
        (the conversation so far, which the preferred one must read whole)
        competes with it on predicted time plus expected fit loss, as long as
        it is not over a limit itself. None: no such model, or the preferred
        one is still the better bet."""
        models = snap.models
        preferred = capable[0]
        enough = self.held_tokens(models[preferred]) + HELD_PREFIX_MIN_TOKENS
        holders = [r for r in capable[1:] if self.held_tokens(models[r]) >= enough
                   and not self._hard_breaks(r, models[r], snap)
                   and not self._queue_breaks(r, models[r])]
        if not holders:
            return None
        answer_s = self.job_service_s(preferred, models[preferred], kind.value, prompt_tokens)
        costs = {r: self._cost(r, kind, models[r], context_tokens, classification, answer_s,
                               prompt_tokens) for r in (preferred, *holders)}
        best = min(holders, key=costs.__getitem__)
        reading = self._reading(models[best])
        if costs[best] >= costs[preferred] or reading is None:
            return None
        return (
            best,
            preferred,
            f"{holds_note(reading)}: predicted {costs[best]:.1f} s against {preferred} "
            f"{costs[preferred]:.1f} s, fit loss included",
            False,  # not a spill: the preferred model is not over any limit
        )

    def _adaptive(
        self, kind: TaskKind, capable: list[str], snap: Snapshot, commit: bool,
        context_tokens: int = 0, classification: Classification | None = None,
        prompt_tokens: int = 0,
    ) -> tuple[str, str | None, str, bool]:
        models = snap.models
        preferred = capable[0]
        pref_signals = models[preferred]
        pref_hard = self._hard_breaks(preferred, pref_signals, snap)
        broken = self._queue_breaks(preferred, pref_signals) + pref_hard
        with self._lock:
            current = self._spilling.get(kind)
            back = current is None or self._comfortably_within(preferred, pref_signals)
            if not broken and back:
                if commit:
                    self._spilling.pop(kind, None)
                torn = self._torn_choice(kind, capable, snap, context_tokens, classification,
                                         prompt_tokens)
                if torn is not None:
                    return torn
                held = self._held_choice(kind, capable, snap, context_tokens, classification,
                                         prompt_tokens)
                if held is not None:
                    return held
                runner = capable[1] if len(capable) > 1 else None
                wait = self.predicted_wait_s(preferred, pref_signals)
                return (
                    preferred,
                    runner,
                    f"preferred, queue {pref_signals.load}, predicted wait {wait:.1f} s",
                    False,
                )
            # Spill to the acceptable model predicted to finish first, queue
            # included: an idle but slow model can lose to a fast one that is
            # about to free up. The preferred model competes too when it is
            # only busy (not failing or over a GPU ceiling): spilling to a
            # slower model helps nobody.
            candidates = [
                r for r in capable[1:]
                if self.profiles[r].fit(kind) >= ACCEPTABLE_PREFERENCE
                and not self._hard_breaks(r, models[r], snap)
            ]
            if candidates and not pref_hard:
                candidates.append(preferred)
            if not candidates and not pref_hard:
                # Only busy, and no other model does this task acceptably: a
                # queue on the right model beats an answer from a poor one.
                candidates = [preferred]
            # The preferred model is failing and no acceptable one can take it:
            # the cheapest of all, fit-weighted.
            pool = candidates or [r for r in capable if not models[r].cooling_down] or capable
            answer_s = self.job_service_s(preferred, pref_signals, kind.value, prompt_tokens)
            costs = {r: self._cost(r, kind, models[r], context_tokens, classification, answer_s,
                                   prompt_tokens)
                     for r in pool}
            ranked = sorted(pool, key=costs.__getitem__)
            best = ranked[0]
            if (
                current in costs
                and current != best
                and costs[best] > self.KEEP_SPILL_MARGIN * costs[current]
            ):
                best = current  # not enough better to switch: no flapping
            runner = next((r for r in ranked if r != best), None)
            if best == preferred:
                if commit:
                    self._spilling.pop(kind, None)
                why = "; ".join(broken) if broken else "the others are no better"
                if runner is None:
                    return preferred, None, f"preferred despite {why} (no model can take it)", False
                done_pref, done_runner = (
                    self.predicted_completion_s(r, models[r], kind, prompt_tokens)
                    for r in (preferred, runner))
                return (
                    preferred,
                    runner,
                    f"preferred despite {why}: still the best bet, predicted {done_pref:.1f} s"
                    f" vs {runner} {done_runner:.1f} s (weighted by task fit)",
                    False,
                )
            if commit:
                self._spilling[kind] = best
        why = "; ".join(broken) if broken else (
            f"{preferred} not yet back under {self.RETURN_WAIT_FRACTION:.0%} of the limits"
        )
        wait_pref = self.predicted_completion_s(preferred, pref_signals, kind, prompt_tokens)
        wait_best = self.predicted_completion_s(best, models[best], kind, prompt_tokens)
        return best, runner, f"{why}; predicted {wait_pref:.1f} s vs {wait_best:.1f} s", True

    # -- feedback loop --------------------------------------------------------------

    def refit(self, now: float | None = None) -> list[Adjustment]:
        """Re-fit service times and spill limits from recent history (bounded, logged)."""
        now = time.monotonic() if now is None else now
        made: list[Adjustment] = []
        low, high = self.SERVICE_BOUNDS_S
        max_queue = self._thresholds.max_queue
        max_wait = self._thresholds.max_wait_s
        for role, model in list(self.telemetry.models.items()):
            services = model.recent_services()[-10:]
            if len(services) < self.REFIT_MIN_SAMPLES:
                continue
            fitted = min(high, max(low, statistics.median(services)))
            old = self._service_estimate.get(role, model.service_s or self.prior_service_s)
            if abs(fitted - old) > self.REFIT_CHANGE * old:
                self._service_estimate[role] = fitted
                made.append(
                    Adjustment(
                        now, role, "service time s", round(old, 2), round(fitted, 2),
                        f"median of the last {len(services)} jobs",
                    )
                )
            service = self._service_estimate.get(role, fitted)
            limit = max(1, min(max_queue, math.floor(max_wait / service))) if max_queue else 0
            old_limit = self._spill_limit.get(role, max_queue)
            if limit != old_limit:
                self._spill_limit[role] = limit
                made.append(
                    Adjustment(
                        now, role, "spill limit", old_limit, limit,
                        f"{limit} job(s) x {service:.1f} s fit the {max_wait:g} s wait limit",
                    )
                )
        with self._lock:
            for adjustment in made:
                log.info("router: %s", adjustment.line())
                self.adjustments.append(adjustment)
                self._adjustments_made += 1
        return made

    def adjustments_since(self, seen: int) -> tuple[list[Adjustment], int]:
        """Adjustments after the first `seen` ever made (those still kept), and
        how many have been made. A count, not the deque's length: that stops
        growing once it is full."""
        with self._lock:
            new = min(self._adjustments_made - seen, len(self.adjustments))
            kept = list(self.adjustments)
            return kept[len(kept) - new:], self._adjustments_made


def holds_note(reading: PromptReading) -> str:
    """What a decision's reason says of a model's cache: "holds ~1,840 of
    ~1,910 prompt tokens" (estimated tokens, as the router sizes prompts)."""
    return f"holds ~{reading.held_tokens:,} of ~{reading.prompt_tokens:,} prompt tokens"


def explain(decision: Decision, attempts: list[tuple[str, str]] | None = None) -> str:
    """The whole decision as text: classification, signals, runner-up, retries."""
    lines = [decision.reason, f"policy: {decision.policy}; preferred: {decision.preferred}"]
    if decision.runner_up:
        lines.append(f"runner-up: {decision.runner_up}")
    result = decision.classification
    if result is not None:
        scores = ", ".join(f"{k} {v:.0%}" for k, v in result.scores.items())
        lines.append(f"task: {result.kind.value} ({result.confidence:.0%}; {scores})")
        lines.append("evidence: " + "; ".join(result.evidence))
    for role, signals in decision.signals.items():
        wait = decision.predicted_wait_s.get(role)
        parts = [
            f"{role}: {signals.state}",
            f"queue {signals.queue_depth}+{signals.in_flight}",
            f"wait {wait:.1f} s" if wait is not None else "not capable",
        ]
        if signals.ttft_s is not None:
            parts.append(f"TTFT {signals.ttft_s:.2f} s")
        if signals.tokens_per_s is not None:
            parts.append(f"{signals.tokens_per_s:.0f} tok/s")
        parts.append(f"success {signals.success_rate:.0%}")
        if signals.cooling_down:
            parts.append(f"cooling down {signals.cooldown_left_s:.0f} s")
        lines.append("  " + " · ".join(parts))
    for role, message in attempts or []:
        lines.append(f"retry: {role} failed ({message}), sent to the next best model")
    return "\n".join(lines)
