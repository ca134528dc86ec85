"""Each attempt's outcome into the model's telemetry: first token, speed, the breaker."""

from __future__ import annotations

from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.fleet.worker import ChatStats
from zeta_desktop.core.routing.telemetry import Telemetry


class TelemetryOutcomes:
    """The turn runner's `ModelOutcomes`, kept in the router's telemetry."""

    def __init__(self, telemetry: Telemetry, fleet: Fleet) -> None:
        self._telemetry = telemetry
        self._fleet = fleet

    def on_first_token(self, role: str, ttft_s: float | None = None) -> None:
        # Shown (card, plot) while the answer still streams, not once it ends.
        ttft = ttft_s if ttft_s is not None else self._fleet.worker(role).running_for_s
        if ttft is not None:
            self._telemetry.model(role).record_first_token(ttft)

    def on_token(self, role: str) -> None:
        self._telemetry.model(role).record_token()

    def on_success(self, role: str, stats: ChatStats, kind: str | None = None) -> None:
        self._telemetry.model(role).record_success(
            ttft_s=stats.ttft_s,
            tokens_per_s=stats.tokens_per_s,
            latency_s=stats.total_s,
            service_s=stats.total_s - stats.queued_s,
            n_tokens=stats.n_tokens,
            kind=kind,
            thinking_tokens=stats.thinking_tokens,
            prompt_tokens=stats.estimated_prompt_tokens,
        )

    def on_backoff(self, role: str, seconds: float) -> None:
        self._telemetry.model(role).record_backoff(seconds)

    def on_model_failure(self, role: str) -> float:
        return self._telemetry.model(role).record_failure()
