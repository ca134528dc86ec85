"""The router's settings: its policy, the thresholds the user drags, the watchdog.

Each threshold is defined once here, with the limits the config file accepts
and the step its slider moves in; the router, the config reader and the Router
tab's sliders all read this one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

POLICIES = ("adaptive", "static", "least-busy", "lowest-latency", "round-robin")

OWN_INDEX_PROMPTS = 4000  # enough neighbours per kind, when the embedder is fast enough
OWN_INDEX_MAX_PROMPTS = 100_000  # more than the shipped index holds: all of it


@dataclass(frozen=True)
class ThresholdSpec:
    """One threshold: the range the file and the slider accept, and how it reads."""

    name: str
    label: str
    unit: str  # "jobs", "s", "%" or "" (a 0..1 dial)
    low: float
    high: float
    step: float  # one slider position
    tooltip: str

    def to_slider(self, value: float) -> int:
        return round((value - self.low) / self.step)

    def from_slider(self, position: int) -> float:
        value = self.low + position * self.step
        return round(value) if self.name == "max_queue" else round(value, 4)

    def text(self, value: float) -> str:
        if self.unit == "%":
            shown = value * 100 if self.name == "min_success_rate" else value
            return f"{shown:.0f} %"
        if self.name == "speed_vs_quality":
            return f"{value:.2f}"
        return f"{value:g} {self.unit}".strip()


THRESHOLD_SPECS: tuple[ThresholdSpec, ...] = (
    ThresholdSpec("max_queue", "Max queue", "jobs", 0, 50, 1,
                  "Jobs waiting or running on the preferred model before a prompt spills to "
                  "another capable model."),
    ThresholdSpec("max_wait_s", "Max predicted wait", "s", 0.5, 600.0, 0.5,
                  "Predicted seconds before the preferred model could start this prompt; "
                  "above it, the prompt spills."),
    ThresholdSpec("gpu_util_ceiling_pct", "GPU busy ceiling", "%", 10.0, 100.0, 1,
                  "Above this GPU utilisation, prompts for GPU models go to a model with room "
                  "(only with an NVIDIA GPU)."),
    ThresholdSpec("gpu_mem_ceiling_pct", "GPU memory ceiling", "%", 10.0, 100.0, 1,
                  "Above this share of GPU memory in use, prompts for GPU models go "
                  "elsewhere."),
    ThresholdSpec("min_success_rate", "Min success rate", "%", 0.0, 1.0, 0.01,
                  "A model whose recent answers succeeded less often than this is avoided."),
    ThresholdSpec("speed_vs_quality", "Speed vs quality", "", 0.0, 1.0, 0.05,
                  "When spilling: 0 keeps prompts on the models that fit the task best, "
                  "1 sends them wherever they finish soonest."),
)
THRESHOLD_LIMITS: dict[str, tuple[float, float]] = {
    spec.name: (spec.low, spec.high) for spec in THRESHOLD_SPECS
}
WATCHDOG_LIMITS = {"token_timeout_s": (0.5, 3600.0), "first_token_timeout_s": (1.0, 7200.0)}


@dataclass(frozen=True)
class Thresholds:
    max_queue: int = 0  # jobs ahead (queued + running) before spilling: 0 = only when idle
    max_wait_s: float = 4.0  # predicted wait before spilling
    gpu_util_ceiling_pct: float = 95.0
    gpu_mem_ceiling_pct: float = 92.0
    min_success_rate: float = 0.5
    # 0: stay with the best fit; 1: fastest wins. 0.25 (chosen on the tuning
    # seeds of `make bench`): an acceptable fit holds its share of answers
    # (97 % there, against 76 % at 0.8), spilling only behind a long queue.
    speed_vs_quality: float = 0.25

    def validated(self) -> Thresholds:
        for name, (low, high) in THRESHOLD_LIMITS.items():
            value = getattr(self, name)
            if not (low <= value <= high):
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")
        return self


class ThresholdChanges(TypedDict, total=False):
    """Some of Thresholds' fields by name, with their types (what a slider changes)."""

    max_queue: int
    max_wait_s: float
    gpu_util_ceiling_pct: float
    gpu_mem_ceiling_pct: float
    min_success_rate: float
    speed_vs_quality: float


@dataclass
class RouterConfig:
    policy: str = "adaptive"
    max_queue: int = Thresholds.max_queue
    max_wait_s: float = Thresholds.max_wait_s
    gpu_util_ceiling_pct: float = Thresholds.gpu_util_ceiling_pct
    gpu_mem_ceiling_pct: float = Thresholds.gpu_mem_ceiling_pct
    min_success_rate: float = Thresholds.min_success_rate
    speed_vs_quality: float = Thresholds.speed_vs_quality
    # Also let the embedding index vote: the shipped one when the embedding
    # role runs all-MiniLM-L6-v2, else one built for its model in the
    # background from this many labelled prompts (0: no vote for other models).
    semantic: bool = True
    # Price each model's reading of what its cache lacks of a prompt, so a
    # follow-up goes to the model holding its conversation (off: every model
    # is assumed to read the whole prompt, as before).
    cache_aware: bool = True
    own_index_prompts: int = OWN_INDEX_PROMPTS
    # The watchdog: a model that gives no token for this long is treated as
    # failed (cancelled, cooled down, the prompt retried elsewhere). The first
    # token may take longer: the whole prompt is read before it.
    token_timeout_s: float = 60.0
    first_token_timeout_s: float = 600.0

    def thresholds(self) -> Thresholds:
        return Thresholds(**{name: getattr(self, name) for name in THRESHOLD_LIMITS})
