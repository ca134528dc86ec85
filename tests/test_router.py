"""ZetaDynamicRouter decisions from controlled signals (no model needed)."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from zeta_desktop.core.engines.base import NoRoleAvailableError
from zeta_desktop.core.fleet.prefix_cache import PromptReading
from zeta_desktop.core.routing.classifier import TaskKind
from zeta_desktop.core.routing.machine import GpuReading, MachineReading, RecordedSource
from zeta_desktop.core.routing.router import (
    DEFAULT_PREFERENCES,
    DEFAULT_PREFILL_TOKENS_PER_S,
    HELD_PREFIX_MIN_TOKENS,
    RoleProfile,
    ZetaDynamicRouter,
)
from zeta_desktop.core.routing.telemetry import (
    BREAKER_BASE_S,
    SUCCESS_WINDOW_S,
    PendingJobs,
    Telemetry,
)
from zeta_desktop.core.settings import POLICIES, Thresholds

CODE, SIMPLE, REASONING, EMBEDDING = (
    TaskKind.CODE, TaskKind.SIMPLE, TaskKind.REASONING, TaskKind.EMBEDDING
)


class Fleet:
    """Three roles whose queue depth and state the test sets directly."""

    def __init__(self, on_gpu: bool = False, embed_only: bool = False) -> None:
        self.depth = {r: [0, 0, "ready"] for r in ("coder", "embedder", "reasoner")}
        self.running_for: dict[str, float] = {}  # seconds the running job has run, if known
        # (kind, prompt tokens) of the jobs waiting and running, where the test says.
        self.jobs: dict[str, tuple[PendingJobs, PendingJobs]] = {}
        self.telemetry = Telemetry()
        for role in self.depth:
            self.telemetry.register(
                role,
                lambda r=role: tuple(self.depth[r]),  # type: ignore[misc]
                lambda r=role: self.running_for.get(r),
                jobs=lambda r=role: self.jobs.get(r, ((), ())),  # type: ignore[misc]
            )
        self.profiles = {
            "coder": RoleProfile("coder", True, False, DEFAULT_PREFERENCES["coder"], on_gpu),
            "embedder": RoleProfile(
                "embedder", not embed_only, True, DEFAULT_PREFERENCES["embedder"], on_gpu
            ),
            "reasoner": RoleProfile(
                "reasoner", True, False, DEFAULT_PREFERENCES["reasoner"], on_gpu
            ),
        }

    def router(self, **thresholds: float) -> ZetaDynamicRouter:
        # Spilling is tested leaning to speed (0.8, the default of old); the
        # default's weight on fit has its own test.
        thresholds.setdefault("speed_vs_quality", 0.8)
        return ZetaDynamicRouter(self.profiles, self.telemetry, Thresholds(**thresholds))

    def load(self, role: str, queued: int, in_flight: int = 1) -> None:
        self.depth[role][0], self.depth[role][1] = queued, in_flight

    def served(self, role: str, service_s: float, times: int = 1) -> None:
        for _ in range(times):
            self.telemetry.model(role).record_success(
                ttft_s=0.1, tokens_per_s=50, latency_s=service_s, service_s=service_s, n_tokens=50
            )


def test_the_default_slider_keeps_code_off_the_weak_model_behind_a_short_queue() -> None:
    fleet = Fleet()
    for role, seconds in (("coder", 1.0), ("embedder", 0.5), ("reasoner", 1.0)):
        fleet.served(role, seconds, times=5)
    fleet.load("coder", queued=1)  # 1.5 s of wait on the coder, then 1 s
    default = ZetaDynamicRouter(fleet.profiles, fleet.telemetry)
    assert default.thresholds.speed_vs_quality == 0.25
    # The idle embedder (preference 0.5 for code) would answer 2 s sooner; at
    # the default that is not worth its weaker answer, nor the reasoner's 1.5 s...
    assert default.route(CODE, commit=False).role == "coder"
    # ...leaning to speed, it is.
    assert fleet.router(speed_vs_quality=0.9).route(CODE, commit=False).role == "embedder"


def test_preferred_model_when_nothing_is_broken() -> None:
    fleet = Fleet()
    router = fleet.router()
    assert router.route(CODE).role == "coder"
    assert router.route(SIMPLE).role == "coder"
    assert router.route(REASONING).role == "reasoner"
    decision = router.route(EMBEDDING)
    assert decision.role == "embedder"
    assert decision.reason.startswith("embedding -> embedder: preferred")
    assert decision.runner_up is None  # nobody else embeds


def test_embedding_only_model_never_gets_chat() -> None:
    fleet = Fleet(embed_only=True)
    fleet.load("coder", 10)
    fleet.load("reasoner", 10)
    router = fleet.router()
    for kind in (SIMPLE, CODE, REASONING):
        assert router.route(kind).role != "embedder"


def test_queue_threshold_spills_with_a_readable_reason() -> None:
    fleet = Fleet()
    fleet.served("coder", 2.0)
    fleet.served("reasoner", 2.0)
    fleet.load("coder", 3)  # 3 waiting + 1 running = 4 ahead
    decision = fleet.router(max_queue=3, max_wait_s=100).route(CODE)
    assert decision.role == "reasoner" and decision.spilled
    assert decision.reason.startswith("code -> reasoner: coder queue 4 > 3")
    assert "predicted" in decision.reason and decision.runner_up is not None
    assert decision.preferred == "coder"


def test_wait_threshold_spills() -> None:
    fleet = Fleet()
    fleet.served("coder", 5.0)
    fleet.load("coder", 1)  # predicted wait 1 x 5 + 0.5 x 5 = 7.5 s
    router = fleet.router(max_queue=10, max_wait_s=6)
    decision = router.route(CODE)
    assert decision.role != "coder"
    assert "predicted wait 7.5 s > 6 s" in decision.reason
    router.update_thresholds(max_wait_s=20)
    assert router.route(CODE).role == "coder"  # a changed threshold applies at once


def test_gpu_ceilings_use_the_machine_reading() -> None:
    fleet = Fleet(on_gpu=True)
    busy = MachineReading(
        "nvml",
        (GpuReading(0, "H100", 99.0, 70_000, 80_000, 70.0, 500.0, 30_000),),
        10.0, 1000, 8000,
    )
    fleet.telemetry.set_machine(RecordedSource([busy]).read())
    router = fleet.router(gpu_util_ceiling_pct=90)
    decision = router.route(CODE)
    # every model shares the busy GPU: spilling cannot help, so the best fit stays
    assert decision.role == "coder" and "GPU 99% busy > 90%" in decision.reason
    fleet.profiles["reasoner"] = RoleProfile(
        "reasoner", True, False, DEFAULT_PREFERENCES["reasoner"], on_gpu=False
    )
    router = fleet.router(gpu_util_ceiling_pct=90)
    assert router.route(CODE).role == "reasoner"  # a CPU model takes the load
    assert "GPU 99% busy" in router.route(CODE).reason
    router.update_thresholds(gpu_util_ceiling_pct=100, gpu_mem_ceiling_pct=80)
    assert "GPU memory 88% > 80%" in router.route(CODE).reason


def test_no_gpu_reading_means_gpu_thresholds_do_not_apply() -> None:
    fleet = Fleet(on_gpu=True)
    cpu_only = MachineReading("psutil", (), 50.0, 1000, 8000, note="NVML unavailable: no driver")
    fleet.telemetry.set_machine(cpu_only)
    decision = fleet.router(gpu_util_ceiling_pct=10).route(CODE)
    assert decision.role == "coder" and not decision.spilled


def test_hysteresis_keeps_spilling_until_the_preferred_model_has_room() -> None:
    fleet = Fleet()
    fleet.served("coder", 2.0)
    fleet.served("reasoner", 2.0)
    fleet.served("embedder", 2.0)
    router = fleet.router(max_queue=2, max_wait_s=100)
    fleet.load("coder", 2)  # 3 ahead > 2
    assert router.route(CODE).role == "reasoner"
    fleet.load("coder", 1)  # 2 ahead: within the limit, but not comfortably
    kept = router.route(CODE)
    assert kept.role == "reasoner" and "not yet back" in kept.reason
    fleet.load("coder", 0)  # 1 ahead: comfortably within
    assert router.route(CODE).role == "coder"


def test_hysteresis_switches_target_only_past_its_margin() -> None:
    """Spilling, the router keeps its current target unless another is cheaper by more
    than KEEP_SPILL_MARGIN allows; checked just inside and just outside that margin."""
    fleet = Fleet()
    for role in fleet.depth:
        fleet.served(role, 2.0)
    router = fleet.router(max_queue=1, max_wait_s=100, speed_vs_quality=1.0)
    fleet.load("coder", 5)  # the preferred model is over its queue limit: spill
    for role in ("embedder", "reasoner"):
        fleet.load(role, 0, 0)
    first = router.route(CODE).role
    other = "embedder" if first == "reasoner" else "reasoner"
    service = router.service_s(first, fleet.telemetry.snapshot().models[first])
    margin = router.KEEP_SPILL_MARGIN
    # The current target now runs a job that has had `ran` of its service time:
    # its cost is 2 S - ran; the idle other costs S. Keep while S > margin x cost.
    boundary = 2 * service - service / margin
    fleet.load(first, 0, 1)
    fleet.running_for[first] = boundary + 0.05 * service  # other cheaper, but within margin
    assert router.route(CODE).role == first
    fleet.running_for[first] = boundary - 0.05 * service  # other cheaper past the margin
    assert router.route(CODE).role == other


def test_breaker_cools_a_failing_model_and_the_cooldown_grows() -> None:
    fleet = Fleet()
    model = fleet.telemetry.model("coder")
    first = model.record_failure(now=0.0)
    second = model.record_failure(now=0.0)
    assert first == BREAKER_BASE_S and second == 2 * BREAKER_BASE_S
    router = fleet.router(min_success_rate=0.0)  # the breaker alone
    decision = router.route(CODE, snapshot=fleet.telemetry.snapshot(now=1.0))
    assert decision.role != "coder"
    assert "coder cooling down 3 s after 2 failure(s)" in decision.reason
    later = fleet.telemetry.snapshot(now=10.0)
    fleet.served("coder", 1.0)  # a success closes the breaker
    assert router.route(CODE, snapshot=fleet.telemetry.snapshot(now=10.0)).role == "coder"
    assert later.models["coder"].cooldown_left_s == 0


def test_low_success_rate_spills() -> None:
    fleet = Fleet()
    model = fleet.telemetry.model("coder")
    for _ in range(3):
        model.record_failure()
    fleet.served("coder", 1.0)  # 1 of 4 succeeded; breaker closed by the success
    decision = fleet.router(min_success_rate=0.5).route(CODE)
    assert decision.role != "coder" and "coder success 25% < 50%" in decision.reason


def test_old_failures_age_out_so_a_model_can_recover() -> None:
    fleet = Fleet()
    model = fleet.telemetry.model("coder")
    for _ in range(3):
        model.record_failure(now=0.0)
    assert fleet.telemetry.snapshot(now=5.0).models["coder"].success_rate == 0.0
    later = fleet.telemetry.snapshot(now=SUCCESS_WINDOW_S + 1)
    assert later.models["coder"].success_rate == 1.0
    assert not later.models["coder"].cooling_down
    assert fleet.router().route(CODE, snapshot=later).role == "coder"


def test_unavailable_and_excluded_roles_are_skipped() -> None:
    fleet = Fleet()
    fleet.depth["coder"][2] = "unavailable"
    router = fleet.router()
    assert router.route(CODE).role == "reasoner"
    assert router.route(CODE, exclude={"reasoner"}).role == "embedder"
    with pytest.raises(NoRoleAvailableError, match="coder unavailable"):
        router.route(CODE, exclude={"reasoner", "embedder"})


def test_baseline_policies() -> None:
    fleet = Fleet()
    router = fleet.router()
    router.policy = "static"
    fleet.load("coder", 9)
    assert router.route(CODE).role == "coder"  # static never spills
    router.policy = "least-busy"
    fleet.load("reasoner", 2)
    fleet.load("embedder", 0, 0)
    assert router.route(CODE).role == "embedder"
    router.policy = "round-robin"
    picks = [router.route(CODE).role for _ in range(6)]
    assert sorted(set(picks)) == ["coder", "embedder", "reasoner"]
    assert picks[:3] != picks[1:4]
    router.policy = "lowest-latency"
    fleet.served("coder", 5.0)
    fleet.served("reasoner", 1.0)
    fleet.served("embedder", 3.0)
    decision = router.route(CODE)
    assert decision.role == "reasoner" and "ms/token" in decision.reason
    with pytest.raises(ValueError, match="unknown policy"):
        router.policy = "fastest"
    assert set(POLICIES) == {"adaptive", "static", "round-robin", "least-busy", "lowest-latency"}


def test_feedback_loop_refits_within_bounds_and_logs_why() -> None:
    fleet = Fleet()
    router = fleet.router(max_queue=4, max_wait_s=6)
    fleet.served("coder", 3.0, times=5)
    made = router.refit(now=1.0)
    lines = [a.line() for a in made]
    assert any("coder: spill limit 4 -> 2" in line for line in lines), lines
    fleet.served("reasoner", 10_000.0, times=5)  # absurd history is clamped
    router.refit(now=2.0)
    assert router.service_s("reasoner", fleet.telemetry.snapshot().models["reasoner"]) == 600.0
    assert router.spill_limit("reasoner") == 1  # never below one
    assert list(router.adjustments)[-1].reason


def test_threshold_updates_from_many_threads_are_safe() -> None:
    fleet = Fleet()
    router = fleet.router()
    errors: list[BaseException] = []

    def writer(value: int) -> None:
        for _ in range(200):
            router.update_thresholds(max_queue=value, max_wait_s=float(value + 1))

    def reader() -> None:
        try:
            for _ in range(400):
                t = router.thresholds
                assert t.max_wait_s == t.max_queue + 1  # never a half-applied update
                router.route(CODE)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in (1, 5, 9)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_invalid_threshold_is_refused() -> None:
    router = Fleet().router()
    with pytest.raises(ValueError, match="min_success_rate"):
        router.update_thresholds(min_success_rate=2.0)
    assert router.thresholds.min_success_rate == Thresholds().min_success_rate


def test_a_preview_does_not_move_the_router() -> None:
    fleet = Fleet()
    router = fleet.router(max_queue=1, max_wait_s=100)
    fleet.load("coder", 3)
    assert router.route(CODE, commit=False).spilled
    fleet.load("coder", 0)  # 1 ahead: within the limit; no spill was committed, so no hysteresis
    assert router.route(CODE).role == "coder"
    router.policy = "round-robin"
    previews = {router.route(CODE, commit=False).role for _ in range(5)}
    assert len(previews) == 1


def test_a_job_near_its_end_predicts_a_shorter_wait_than_one_just_started() -> None:
    fleet = Fleet()
    fleet.served("coder", 4.0, times=3)
    fleet.served("reasoner", 4.0, times=3)
    fleet.load("coder", 0)
    fleet.load("reasoner", 0)
    fleet.running_for.update(coder=3.5, reasoner=0.1)
    router = fleet.router(max_queue=0)
    snapshot = fleet.telemetry.snapshot()
    coder_wait = router.predicted_wait_s("coder", snapshot.models["coder"])
    reasoner_wait = router.predicted_wait_s("reasoner", snapshot.models["reasoner"])
    assert coder_wait == pytest.approx(0.5)  # 4.0 s typical - 3.5 s run
    assert reasoner_wait == pytest.approx(3.9)
    # A job that overran its estimate still counts a tenth, never zero or less.
    fleet.running_for["coder"] = 60.0
    assert router.predicted_wait_s("coder", fleet.telemetry.snapshot().models["coder"]) == (
        pytest.approx(0.4)
    )


def test_a_spill_goes_where_the_answer_comes_first_not_merely_to_an_idle_model() -> None:
    fleet = Fleet()
    fleet.served("coder", 1.0, times=3)
    fleet.served("embedder", 0.6, times=3)
    fleet.served("reasoner", 3.0, times=3)
    router = fleet.router(max_queue=0, max_wait_s=100)
    # The coder's job is nearly done, the embedder has two waiting, and the
    # idle reasoner would take 3 s: stay.
    fleet.load("coder", 0)
    fleet.running_for["coder"] = 0.8
    fleet.load("embedder", 2)
    stay = router.route(CODE)
    assert stay.role == "coder" and not stay.spilled
    assert "coder queue 1 > 0: still the best bet, predicted 1.2 s vs" in stay.reason
    # The coder has just started a job: the embedder, busy but nearly done,
    # finishes sooner than the idle reasoner (weighted by task fit).
    fleet.running_for["coder"] = 0.0
    fleet.load("embedder", 0)
    fleet.running_for["embedder"] = 0.5
    spill = router.route(CODE)
    assert spill.role == "embedder" and spill.spilled
    assert spill.runner_up in ("coder", "reasoner")


def test_readers_see_new_adjustments_even_once_the_history_is_full() -> None:
    fleet = Fleet()
    router = fleet.router(max_queue=4, max_wait_s=6)
    seen, made, shown = 0, [], []
    for step in range(300):  # past the 200 the router keeps
        fleet.served("coder", 1.0 if step % 2 else 3.0, times=10)
        made += [a.line() for a in router.refit(now=float(step))]
        new, seen = router.adjustments_since(seen)
        shown += [a.line() for a in new]
    assert len(router.adjustments) == 200 < len(made)
    assert shown == made and seen == len(made)
    assert router.adjustments_since(seen) == ([], seen)


def test_service_time_is_estimated_per_kind_once_a_kind_has_run_three_times() -> None:
    fleet = Fleet()
    coder = fleet.telemetry.model("coder")

    def served(kind: str, service_s: float) -> None:
        coder.record_success(ttft_s=0.1, tokens_per_s=50, latency_s=service_s,
                             service_s=service_s, n_tokens=50, kind=kind)

    for _ in range(3):
        served("code", 1.0)
    for _ in range(2):
        served("reasoning", 9.0)
    router = fleet.router()
    signals = fleet.telemetry.snapshot().models["coder"]
    assert signals.service_by_kind == {"code": pytest.approx(1.0)}  # reasoning: two, too few
    overall = router.service_s("coder", signals)
    assert router.predicted_completion_s("coder", signals, CODE) == pytest.approx(1.0)
    assert router.predicted_completion_s("coder", signals, REASONING) == pytest.approx(overall)
    served("reasoning", 9.0)
    signals = fleet.telemetry.snapshot().models["coder"]
    assert router.predicted_completion_s("coder", signals, REASONING) == pytest.approx(9.0)
    # A queue holds jobs of any kind: the wait in front uses the overall time.
    fleet.load("coder", queued=2, in_flight=0)
    signals = fleet.telemetry.snapshot().models["coder"]
    waited = router.predicted_wait_s("coder", signals)
    assert waited == pytest.approx(2 * router.service_s("coder", signals))
    assert router.predicted_completion_s("coder", signals, CODE) == pytest.approx(waited + 1.0)


def test_a_users_choice_shifts_the_preference_within_bounds_and_reset_undoes_it() -> None:
    fleet = Fleet()
    router = fleet.router()
    assert router.route(REASONING).role == "reasoner"
    made = router.learn_choice(REASONING, "coder", "reasoner")
    assert [(a.role, a.old, a.new) for a in made] == [("coder", 0.6, 0.65), ("reasoner", 1.0, 0.95)]
    assert "you chose coder over reasoner for a reasoning prompt" in made[0].line()
    assert router.adjustments_since(0)[0][-2:] == made  # in the router log
    for _ in range(50):  # however often: at most LEARN_BOUND from the default
        router.learn_choice(REASONING, "coder", "reasoner")
    assert router.learned_shift() == {
        "coder": {"reasoning": pytest.approx(0.3)}, "reasoner": {"reasoning": pytest.approx(-0.3)}
    }
    assert router.route(REASONING).role == "coder"  # 0.9 vs 0.7: the user's pick now leads
    assert router.learn_choice(EMBEDDING, "coder", "embedder") == []
    assert router.learn_choice(CODE, "coder", "coder") == []
    router.reset_learned()
    assert router.learned_shift() == {}
    assert router.route(REASONING).role == "reasoner"
    assert router.adjustments_since(0)[0][-1].reason.startswith("reset to defaults")


def test_passages_from_documents_steer_away_from_a_context_too_small() -> None:
    fleet = Fleet()
    fleet.profiles["coder"] = dataclasses.replace(fleet.profiles["coder"], n_ctx=1024)
    fleet.profiles["embedder"] = dataclasses.replace(fleet.profiles["embedder"], n_ctx=512)
    fleet.profiles["reasoner"] = dataclasses.replace(fleet.profiles["reasoner"], n_ctx=8192)
    router = fleet.router()
    assert router.route(SIMPLE).role == "coder"  # no documents: the preferred model
    decision = router.route(SIMPLE, context_tokens=3000)
    assert decision.role == "reasoner"
    assert "documents add ~3000 tokens" in decision.reason
    assert "(coder, embedder too small a context)" in decision.reason
    # A context every model holds changes nothing but the reason.
    assert router.route(SIMPLE, context_tokens=200).role == "coder"


def test_reading_the_passages_counts_in_the_predicted_cost() -> None:
    fleet = Fleet()
    fleet.served("coder", 2.0, times=5)
    fleet.served("reasoner", 2.0, times=5)
    router = fleet.router()
    signals = fleet.telemetry.snapshot().models["coder"]
    assert router.prefill_s(signals, 0) == 0.0
    # Nothing measured its reading yet (its answers were not sized): the
    # default speed, not a multiple of its decoding.
    assert router.prefill_s(signals, 5000) == pytest.approx(5000 / DEFAULT_PREFILL_TOKENS_PER_S)
    # Its worker measured 2 ms a token: that is the speed.
    readings = {"coder": PromptReading(0, 10, 0.002)}
    decision = router.route(SIMPLE, context_tokens=5000, readings=readings, commit=False)
    assert decision.role == "coder"
    router._decision.readings = readings
    try:
        assert router.prefill_s(signals, 5000) == pytest.approx(10.0)
        busy = router._cost("coder", SIMPLE, signals)
        assert router._cost("coder", SIMPLE, signals, context_tokens=5000) == pytest.approx(
            busy + 10.0)
    finally:
        router._decision.readings = None


def test_the_queue_ahead_is_priced_job_by_job_at_each_kinds_time_on_that_model() -> None:
    fleet = Fleet()
    reasoner = fleet.telemetry.model("reasoner")
    for kind, seconds in (("reasoning", 8.0), ("simple", 1.0)):
        for _ in range(3):
            reasoner.record_success(ttft_s=0.1, tokens_per_s=50, latency_s=seconds,
                                    service_s=seconds, n_tokens=50, kind=kind)
    router = fleet.router()
    fleet.load("reasoner", queued=2, in_flight=1)
    fleet.running_for["reasoner"] = 0.0
    fleet.jobs["reasoner"] = ((("simple", 0), ("reasoning", 0)), (("simple", 0),))
    signals = fleet.telemetry.snapshot().models["reasoner"]
    # 1 s (the simple one running, just started) + 1 s + 8 s waiting
    assert router.predicted_wait_s("reasoner", signals) == pytest.approx(10.0)
    # Two reasoning answers queued cost more than two simple ones, at the same depth.
    fleet.jobs["reasoner"] = ((("reasoning", 0), ("reasoning", 0)), (("simple", 0),))
    heavier = router.predicted_wait_s("reasoner", fleet.telemetry.snapshot().models["reasoner"])
    assert heavier == pytest.approx(17.0)
    # Jobs of no known kind (a server's other clients) count at the overall time.
    fleet.jobs["reasoner"] = ((), ())
    plain = router.predicted_wait_s("reasoner", fleet.telemetry.snapshot().models["reasoner"])
    overall = router.service_s("reasoner", signals)
    assert plain == pytest.approx(3 * overall)


def test_a_long_prompt_is_priced_by_its_reading_time_once_the_rate_is_measured() -> None:
    fleet = Fleet()
    coder, reasoner = fleet.telemetry.model("coder"), fleet.telemetry.model("reasoner")
    for model in (coder, reasoner):
        for _ in range(3):  # 100-token prompts read in 0.5 s, then 1 s of answer
            model.record_success(ttft_s=0.5, tokens_per_s=40, latency_s=1.5, service_s=1.5,
                                 n_tokens=40, kind="code", prompt_tokens=100)
    router = fleet.router()
    signals = fleet.telemetry.snapshot().models["coder"]
    assert signals.prefill_s_per_token == pytest.approx(0.005)
    assert signals.decode_by_kind == {"code": pytest.approx(1.0)}
    assert router.job_service_s("coder", signals, "code", 1000) == pytest.approx(6.0)
    assert router.job_service_s("coder", signals, "code", 0) == pytest.approx(1.5)  # unsized
    # The reasoner runs a job of 1.5 s; the coder one too, with one waiting.
    # Only the waiting prompt's size differs: behind 1,000 tokens the short
    # code prompt is better off on the reasoner, behind 20 it waits for the coder.
    for role in ("coder", "reasoner"):
        fleet.load(role, queued=1 if role == "coder" else 0, in_flight=1)
        fleet.running_for[role] = 0.0
        fleet.jobs[role] = ((("code", 1000),) if role == "coder" else (), (("code", 100),))
    signals = fleet.telemetry.snapshot().models["coder"]
    assert router.predicted_wait_s("coder", signals) == pytest.approx(1.5 + 6.0)
    assert router.route(CODE, prompt_tokens=100, commit=False).role == "reasoner"
    fleet.jobs["coder"] = ((("code", 20),), (("code", 100),))
    fleet.running_for["coder"] = 1.2  # 0.3 s left, then 0.1 + 1 s: 2.9 s against 3.3
    assert router.route(CODE, prompt_tokens=100).role == "coder"


def test_an_uncertain_prompt_weighs_what_a_wrong_guess_costs_each_way() -> None:
    from zeta_desktop.core.routing.classifier import Classification

    fleet = Fleet()
    router = fleet.router()
    sure = Classification(SIMPLE, 0.95, (), {"simple": 0.95, "code": 0.0, "reasoning": 0.05})
    torn = Classification(SIMPLE, 0.5, (), {"simple": 0.5, "code": 0.0, "reasoning": 0.5})
    # The coder fits simple fully and reasoning at 0.6: a torn prompt loses more there.
    assert router.expected_loss("coder", SIMPLE, sure) == pytest.approx(0.05 * 0.4)
    assert router.expected_loss("coder", SIMPLE, torn) == pytest.approx(0.5 * 0.4)
    assert router.expected_loss("reasoner", SIMPLE, torn) == pytest.approx(0.5 * 0.3)
    # No probabilities: the kind's own fit.
    assert router.expected_loss("embedder", CODE) == pytest.approx(0.5)


def test_a_prompt_torn_between_kinds_goes_where_the_cost_of_a_wrong_guess_is_lower() -> None:
    from zeta_desktop.core.routing.classifier import Classification

    fleet = Fleet()
    fleet.served("coder", 1.0, times=3)  # simple's model answers in 1 s
    fleet.served("reasoner", 6.0, times=3)  # reasoning's in 6 s
    for role in fleet.depth:
        fleet.load(role, queued=0, in_flight=0)
    torn = Classification(REASONING, 0.55, (), {"simple": 0.45, "code": 0.0, "reasoning": 0.55})
    sure = Classification(REASONING, 0.95, (), {"simple": 0.05, "code": 0.0, "reasoning": 0.95})
    # Quality loss: coder 0.55 x 0.4 = 0.22, reasoner 0.45 x 0.3 = 0.135; at 0.5 the
    # 0.085 difference costs 4 x 6 s x 0.085 = 2 s, less than the 5 s saved.
    balanced = fleet.router(speed_vs_quality=0.5)
    decision = balanced.route(REASONING, classification=torn, commit=False)
    assert decision.role == "coder" and "torn between reasoning 55% and simple 45%" in (
        decision.reason)
    assert decision.runner_up == "reasoner"
    assert balanced.route(REASONING, classification=sure, commit=False).role == "reasoner"
    # Leaning to quality, the same torn prompt waits for the better model.
    assert fleet.router(speed_vs_quality=0.0).route(
        REASONING, classification=torn, commit=False).role == "reasoner"
    # With the coder busy, the time saved is gone: the reasoner takes it.
    fleet.load("coder", queued=4, in_flight=1)
    fleet.running_for["coder"] = 0.0
    assert balanced.route(REASONING, classification=torn, commit=False).role == "reasoner"


def test_the_slider_prices_quality_from_nothing_to_far_more_than_the_wait() -> None:
    fleet = Fleet()
    fleet.served("coder", 1.0, times=3)
    fleet.served("embedder", 1.0, times=3)
    fleet.served("reasoner", 1.0, times=3)
    fleet.load("coder", queued=2, in_flight=1)  # about 3 s before a new code job starts
    fleet.running_for["coder"] = 0.0
    fleet.load("embedder", queued=0, in_flight=0)  # idle, but a poor fit for code (0.5)
    fleet.load("reasoner", queued=3, in_flight=1)
    fleet.running_for["reasoner"] = 0.0
    fastest = fleet.router(max_queue=0, max_wait_s=100, speed_vs_quality=1.0)
    assert fastest.quality_weight() == 0.0
    assert fastest.route(CODE).role == "embedder"  # done in 1 s, fit or not
    best_fit = fleet.router(max_queue=0, max_wait_s=100, speed_vs_quality=0.0)
    assert best_fit.route(CODE).role == "coder"  # waits 3 s rather than answer poorly


def reading_fleet() -> Fleet:
    """Coder and reasoner that read 20 ms a token and answer in 1 s, measured."""
    fleet = Fleet()
    for role in ("coder", "reasoner"):
        for kind in ("simple", "reasoning"):
            for _ in range(3):
                fleet.telemetry.model(role).record_success(
                    ttft_s=2.0, tokens_per_s=40, latency_s=3.0, service_s=3.0, n_tokens=40,
                    kind=kind, prompt_tokens=100)
    return fleet


def follow_up(held: dict[str, int], prompt: int = 2000) -> dict[str, PromptReading]:
    return {role: PromptReading(held.get(role, 0), prompt, 0.02)
            for role in ("coder", "embedder", "reasoner")}


def test_a_follow_up_goes_to_the_model_holding_its_conversation_and_says_so() -> None:
    router = reading_fleet().router(speed_vs_quality=0.8)
    # The reasoner answered the turns before; the coder (preferred for a
    # simple prompt) would read all 2,000 tokens (40 s), the reasoner 70.
    decision = router.route(SIMPLE, prompt_tokens=2000, readings=follow_up({"reasoner": 1930}))
    assert decision.role == "reasoner" and not decision.spilled
    assert decision.reason.startswith(
        "simple -> reasoner: holds ~1,930 of ~2,000 prompt tokens: predicted ")
    assert "against coder" in decision.reason and decision.runner_up == "coder"
    # The preferred model holding it: chosen as ever, and the reason says why it is quick.
    decision = router.route(SIMPLE, prompt_tokens=2000, readings=follow_up({"coder": 1930}))
    assert decision.role == "coder"
    assert decision.reason.endswith("; holds ~1,930 of ~2,000 prompt tokens")


def test_a_shared_system_prompt_alone_changes_no_decision() -> None:
    fleet = reading_fleet()
    router = fleet.router(speed_vs_quality=0.8)
    for kind in (SIMPLE, CODE, REASONING):
        plain = router.route(kind, prompt_tokens=40, commit=False)
        held = router.route(kind, prompt_tokens=40, commit=False,
                            readings=follow_up({"reasoner": 11, "coder": 11}, prompt=40))
        assert (held.role, held.reason) == (plain.role, plain.reason)
    small = follow_up({"reasoner": HELD_PREFIX_MIN_TOKENS - 1})
    assert router.route(SIMPLE, prompt_tokens=2000, readings=small).role == "coder"


def test_fit_still_counts_against_the_model_holding_the_conversation() -> None:
    # Leaning to quality (the default), the reasoner's weaker fit for a
    # simple prompt outweighs the 40 s the coder spends reading.
    router = reading_fleet().router(speed_vs_quality=0.1)
    decision = router.route(SIMPLE, prompt_tokens=2000, readings=follow_up({"reasoner": 1930}))
    assert decision.role == "coder"


def test_the_holder_loses_when_its_queue_says_another_finishes_first() -> None:
    fleet = reading_fleet()
    router = fleet.router(speed_vs_quality=0.8, max_queue=10, max_wait_s=600)
    # Two long prompts wait on the reasoner: 2 x 41 s before it could start.
    fleet.load("reasoner", queued=2, in_flight=0)
    fleet.jobs["reasoner"] = ((("simple", 2000), ("simple", 2000)), ())
    readings = follow_up({"reasoner": 1930})
    decision = router.route(SIMPLE, prompt_tokens=2000, readings=readings)
    assert decision.role == "coder"
    assert "holds" not in decision.reason  # the coder holds nothing of it
    fleet.load("reasoner", queued=0, in_flight=0)
    fleet.jobs["reasoner"] = ((), ())
    assert router.route(SIMPLE, prompt_tokens=2000, readings=readings).role == "reasoner"


def test_a_cold_model_is_priced_for_reading_a_long_prompt_whole() -> None:
    fleet = Fleet()
    router = fleet.router()
    signals = fleet.telemetry.snapshot().models["reasoner"]  # never answered
    readings = follow_up({}, prompt=2000)
    router._decision.readings = readings
    try:
        # The prior service time, plus 2,000 tokens at the speed its load measured.
        assert router.predicted_completion_s("reasoner", signals, REASONING, 2000) == (
            pytest.approx(router.prior_service_s + 40.0))
    finally:
        router._decision.readings = None
    assert router.predicted_completion_s("reasoner", signals, REASONING, 2000) == (
        pytest.approx(router.prior_service_s))  # unknown reading: as before


def test_with_the_cache_signal_off_what_a_model_holds_changes_nothing() -> None:
    router = reading_fleet().router(speed_vs_quality=0.8)
    router.cache_aware = False
    plain = router.route(SIMPLE, prompt_tokens=2000, commit=False)
    held = router.route(SIMPLE, prompt_tokens=2000, commit=False,
                        readings=follow_up({"reasoner": 1930}))
    assert (held.role, held.reason) == (plain.role, plain.reason) and held.role == "coder"
