"""`GET /metrics`: Prometheus text, from the session's live telemetry.

Per endpoint (a role, or a role's replica): its queue, what runs, time to
first token, decode speed, answers and failures. Routing decisions are
counted by role and task kind, for every prompt (the window's too); HTTP
requests by path and status.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable

from zeta_desktop.core.chat.api import Alert, SessionEvent, Telemetry, TurnRouted

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerCounters:
    """Counts kept as events and responses pass; a session subscriber."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.decisions: Counter[tuple[str, str, str]] = Counter()  # role, kind, client?
        self.responses: Counter[tuple[str, int]] = Counter()
        self.alerts: list[str] = []

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, TurnRouted):
            decision = event.decision
            with self._lock:
                self.decisions[(decision.role, decision.kind.value, decision.policy)] += 1
        elif isinstance(event, Alert):
            log.warning("%s", event.text)  # headless, this log is where the user sees it
            with self._lock:
                self.alerts = [*self.alerts[-19:], event.text]

    def response(self, path: str, status: int) -> None:
        with self._lock:
            self.responses[(path, status)] += 1


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | None) -> str:
    return "NaN" if value is None or math.isnan(value) else f"{value:.6g}"


def _family(name: str, kind: str, help_text: str,
            samples: Iterable[tuple[dict[str, str], float | None]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        shown = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{shown}}} {_number(value)}" if shown
                     else f"{name} {_number(value)}")
    return lines


def render(telemetry: Telemetry, counters: ServerCounters, pending: int) -> str:
    models = telemetry.snapshot().models
    endpoints = [({"endpoint": key, "role": signals.role_name}, signals)
                 for key, signals in sorted(models.items())]
    lines: list[str] = []
    lines += _family("zeta_endpoint_queue_depth", "gauge", "Jobs waiting on the endpoint.",
                     [(lab, s.queue_depth) for lab, s in endpoints])
    lines += _family("zeta_endpoint_in_flight", "gauge", "Jobs running on the endpoint.",
                     [(lab, s.in_flight) for lab, s in endpoints])
    lines += _family("zeta_endpoint_ttft_seconds", "gauge",
                     "Average time to the first token of the endpoint's answers.",
                     [(lab, s.ttft_s) for lab, s in endpoints])
    lines += _family("zeta_endpoint_tokens_per_second", "gauge",
                     "Average decode speed of the endpoint's answers.",
                     [(lab, s.tokens_per_s) for lab, s in endpoints])
    lines += _family("zeta_endpoint_success_rate", "gauge",
                     "Share of the endpoint's recent answers that succeeded.",
                     [(lab, s.success_rate) for lab, s in endpoints])
    lines += _family("zeta_endpoint_answers_total", "counter", "Answers the endpoint finished.",
                     [(lab, s.completed) for lab, s in endpoints])
    lines += _family("zeta_endpoint_failures_total", "counter", "Answers the endpoint failed.",
                     [(lab, s.failed) for lab, s in endpoints])
    with counters._lock:
        decisions = sorted(counters.decisions.items())
        responses = sorted(counters.responses.items())
    lines += _family("zeta_routing_decisions_total", "counter",
                     "Prompts routed, by the role chosen, the task kind and the policy.",
                     [({"role": r, "kind": k, "policy": p}, n) for (r, k, p), n in decisions])
    lines += _family("zeta_http_responses_total", "counter", "Responses, by path and status.",
                     [({"path": path, "status": str(s)}, n) for (path, s), n in responses])
    lines += _family("zeta_requests_pending", "gauge",
                     "Clients' requests routing, queued or answering.", [({}, pending)])
    return "\n".join(lines) + "\n"
