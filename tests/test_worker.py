"""A model worker thread with a real tiny model: streaming, stop, failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from servers import wait_until

from zeta_desktop.core.engines.base import ChatMessage, EngineError, LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import (
    ChatJob,
    ChatListener,
    ChatStats,
    EmbedJob,
    ModelWorker,
    WorkerState,
)

pytestmark = pytest.mark.model

SETTINGS = LoadSettings(n_ctx=512, n_gpu_layers=0, n_threads=1, embedding=True)
TIMEOUT = 60


@dataclass
class Recorder(ChatListener):
    stop_after: int | None = None
    tokens: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    stats: ChatStats | None = None
    stopped: bool | None = None
    error: str = ""
    partial: bool | None = None
    threads: set[str] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)

    def on_started(self, job: ChatJob, role: str) -> None:
        self.events.append("started")
        self.threads.add(threading.current_thread().name)

    def on_token(self, job: ChatJob, text: str) -> None:
        self.tokens.append(text)
        self.threads.add(threading.current_thread().name)
        if self.stop_after is not None and len(self.tokens) == self.stop_after:
            job.cancel.set()

    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None:
        self.events.append("finished")
        self.stopped, self.stats = stopped, stats
        self.done.set()

    def on_failed(
        self, job: ChatJob, role: str, message: str, partial: bool, error: Exception | None = None
    ) -> None:
        self.events.append("failed")
        self.error, self.partial = message, partial
        self.done.set()


def chat_job(recorder: Recorder, max_tokens: int = 16, prompt: str = "hello") -> ChatJob:
    return ChatJob(
        messages=[{"role": "user", "content": prompt}],
        listener=recorder,
        max_tokens=max_tokens,
        temperature=0.8,
    )


@pytest.fixture
def worker(tiny_model: Path) -> Iterator[ModelWorker]:
    states: list[tuple[WorkerState, str]] = []
    w = ModelWorker(
        "coder",
        tiny_model,
        SETTINGS,
        LlamaEngine.load,
        on_state=lambda r, s, d: states.append((s, d)),
    )
    w.states = states  # type: ignore[attr-defined]
    w.start()
    yield w
    w.shutdown(TIMEOUT)


def test_streams_on_its_own_thread(worker: ModelWorker) -> None:
    recorder = Recorder()
    worker.submit(chat_job(recorder, max_tokens=10))
    assert recorder.done.wait(TIMEOUT)
    assert recorder.events == ["started", "finished"]
    assert len(recorder.tokens) == 10
    assert recorder.threads == {"zeta-model-coder"}
    assert worker.running_for_s is None  # nothing runs now
    assert recorder.stats is not None and recorder.stats.n_tokens == 10
    assert recorder.stats.tokens_per_s > 0
    assert recorder.stopped is False
    states = [s for s, _ in worker.states]  # type: ignore[attr-defined]
    assert states[:2] == [WorkerState.LOADING, WorkerState.READY]
    assert WorkerState.BUSY in states
    assert worker.load_seconds is not None


def test_the_running_job_reports_how_long_it_has_run(worker: ModelWorker) -> None:
    seen: list[float | None] = []

    class Timed(Recorder):
        def on_token(self, job: ChatJob, text: str) -> None:
            super().on_token(job, text)
            seen.append(worker.running_for_s)

    recorder = Timed()
    worker.submit(chat_job(recorder, max_tokens=6))
    assert recorder.done.wait(TIMEOUT)
    assert len(seen) == 6 and all(s is not None and s > 0 for s in seen)
    assert seen == sorted(seen)  # it only grows while the job runs
    assert worker.running_for_s is None


def test_stop_takes_effect_within_one_token(worker: ModelWorker) -> None:
    recorder = Recorder(stop_after=5)
    worker.submit(chat_job(recorder, max_tokens=400))
    assert recorder.done.wait(TIMEOUT)
    assert recorder.stopped is True
    assert len(recorder.tokens) == 5
    # the worker keeps serving afterwards
    after = Recorder()
    worker.submit(chat_job(after, max_tokens=3))
    assert after.done.wait(TIMEOUT)
    assert len(after.tokens) == 3


def test_jobs_run_in_order_and_queue_depth_is_visible(worker: ModelWorker) -> None:
    worker.wait_loaded(TIMEOUT)
    gate = threading.Event()
    order: list[str] = []

    class Named(Recorder):
        name: str = ""

        def on_started(self, job: ChatJob, role: str) -> None:
            order.append(self.name)
            if self.name == "blocker":
                gate.wait(TIMEOUT)

    recorders = []
    for name in ("blocker", "first", "second", "third"):
        rec = Named()
        rec.name = name
        recorders.append(rec)
        worker.submit(chat_job(rec, max_tokens=2))
    # the blocker holds the thread (or is about to): three jobs wait behind it
    assert worker.queue_depth >= 3
    gate.set()
    assert recorders[-1].done.wait(TIMEOUT)
    assert order == ["blocker", "first", "second", "third"]
    assert all(len(r.tokens) == 2 for r in recorders)
    assert worker.queue_depth == 0


def test_embedding_job(worker: ModelWorker) -> None:
    job = EmbedJob(["one text", "another text"])
    worker.submit(job)
    vectors = job.result.result(TIMEOUT)
    assert len(vectors) == 2 and len(vectors[0]) == 64


def test_unloadable_model_is_unavailable_and_rejects_jobs(tmp_path: Path) -> None:
    states: list[tuple[WorkerState, str]] = []
    missing = tmp_path / "gone.gguf"
    w = ModelWorker(
        "reasoner",
        missing,
        SETTINGS,
        LlamaEngine.load,
        on_state=lambda r, s, d: states.append((s, d)),
    )
    w.start()
    try:
        assert w.wait_loaded(TIMEOUT)
        assert w.state is WorkerState.UNAVAILABLE
        assert "not found" in w.detail and "gone.gguf" in w.detail
        recorder = Recorder()
        w.submit(chat_job(recorder))
        assert recorder.done.wait(TIMEOUT)
        assert recorder.events == ["failed"]
        assert "reasoner is unavailable" in recorder.error and recorder.partial is False
        embed = EmbedJob(["x"])
        w.submit(embed)
        with pytest.raises(EngineError, match="unavailable"):
            embed.result.result(TIMEOUT)
    finally:
        w.shutdown(TIMEOUT)
    assert not w.is_alive()
    assert states[-1][0] is WorkerState.STOPPED


class CrashesMidAnswer:
    """A real engine whose decode fails after a few tokens, as a crashing model would."""

    counts_tokens = True

    def __init__(self, inner: LlamaEngine, after: int) -> None:
        self._inner, self._after = inner, after
        self.n_ctx = inner.n_ctx
        self.count_tokens = inner.count_tokens
        self.embed = inner.embed
        self.close = inner.close

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: object) -> Iterator[str]:
        for index, piece in enumerate(self._inner.stream_chat(messages, **kwargs)):  # type: ignore[arg-type]
            if index == self._after:
                raise RuntimeError("llama_decode returned -1")
            yield piece


def test_a_crash_mid_answer_is_reported_and_the_worker_survives(tiny_model: Path) -> None:
    w = ModelWorker(
        "coder",
        tiny_model,
        SETTINGS,
        lambda p, s: CrashesMidAnswer(LlamaEngine.load(p, s), after=4),  # type: ignore[return-value]
    )
    w.start()
    try:
        recorder = Recorder()
        w.submit(chat_job(recorder, max_tokens=50))
        assert recorder.done.wait(TIMEOUT)
        assert recorder.events == ["started", "failed"]
        assert recorder.tokens and len(recorder.tokens) == 4
        assert recorder.partial is True
        assert "llama_decode returned -1" in recorder.error
        again = Recorder()
        w.submit(chat_job(again, max_tokens=2))
        assert again.done.wait(TIMEOUT)
        assert again.events[0] == "started"
    finally:
        w.shutdown(TIMEOUT)


def test_shutdown_cancels_the_running_answer_and_queued_ones(worker: ModelWorker) -> None:
    running, queued = Recorder(), Recorder()
    worker.submit(chat_job(running, max_tokens=100000))
    worker.submit(chat_job(queued))
    worker.shutdown(TIMEOUT)
    assert not worker.is_alive()
    assert running.done.is_set() and queued.done.is_set()
    assert queued.events == ["failed"] and "stopped" in queued.error


def test_a_job_submitted_after_shutdown_is_rejected_at_once(worker: ModelWorker) -> None:
    worker.shutdown(TIMEOUT)
    job = EmbedJob(["late"])
    worker.submit(job)
    with pytest.raises(EngineError, match="shut down"):
        job.result.result(timeout=1)
    late_chat = Recorder()
    worker.submit(chat_job(late_chat))
    assert late_chat.done.is_set() and "shut down" in late_chat.error


def _thread_nice(tid: int) -> int:
    # Field 19 of /proc/<pid>/task/<tid>/stat; the name (field 2) may hold spaces.
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def test_a_low_priority_worker_decodes_below_the_gui_thread(tiny_model: Path) -> None:
    import os
    import sys

    before = {int(t) for t in os.listdir("/proc/self/task")} if sys.platform == "linux" else set()
    seen: dict[int, int] = {}

    class Watcher(Recorder):
        def on_token(self, job: ChatJob, text: str) -> None:
            super().on_token(job, text)
            if sys.platform == "linux":  # every thread started since, ggml's included
                for tid in {int(t) for t in os.listdir("/proc/self/task")} - before:
                    seen[tid] = _thread_nice(tid)

    settings = LoadSettings(
        n_ctx=512, n_gpu_layers=0, n_threads=2, embedding=False, low_priority=True
    )
    w = ModelWorker("coder", tiny_model, settings, LlamaEngine.load)
    w.start()
    try:
        recorder = Watcher()
        w.submit(chat_job(recorder, max_tokens=8))
        assert recorder.done.wait(TIMEOUT)
        assert recorder.error == ""
    finally:
        w.shutdown(TIMEOUT)
    if sys.platform == "linux":
        assert seen and set(seen.values()) == {10}, seen
        assert _thread_nice(threading.get_native_id()) == 0  # this (the GUI's) thread is not
    else:
        from zeta_desktop.core.fleet.thread_priority import lower_current_thread_priority

        assert lower_current_thread_priority() is not None  # says why it cannot


def test_a_state_listener_that_raises_never_ends_the_models_thread(tiny_model: Path) -> None:
    def broken_listener(role: str, state: WorkerState, detail: str) -> None:
        raise KeyError(role)  # as a listener that does not know a replica's key

    w = ModelWorker("coder#2", tiny_model, SETTINGS, LlamaEngine.load, on_state=broken_listener)
    w.start()
    try:
        assert w.wait_loaded(TIMEOUT)
        recorder = Recorder()
        w.submit(chat_job(recorder))
        assert recorder.done.wait(TIMEOUT)
        assert recorder.events[-1] == "finished" and w.is_alive()
    finally:
        w.shutdown(TIMEOUT)


def test_an_idle_model_unloads_and_the_next_job_loads_it_again(tiny_model: Path) -> None:
    states: list[str] = []
    w = ModelWorker("coder", tiny_model, SETTINGS, LlamaEngine.load,
                    on_state=lambda _r, state, _d: states.append(state.value),
                    idle_unload_s=0.2)
    w.start()
    try:
        assert w.wait_loaded(TIMEOUT)
        first = Recorder()
        w.submit(chat_job(first))
        assert first.done.wait(TIMEOUT) and first.events[-1] == "finished"
        wait_until(lambda: w.state is WorkerState.UNLOADED, TIMEOUT, "the idle unload")
        assert w.detail.startswith("idle for") and w.is_alive()
        second = Recorder()
        w.submit(chat_job(second))
        assert second.done.wait(TIMEOUT) and second.events[-1] == "finished"
        assert w.loads == 2 and states.count("loading") == 2
    finally:
        w.shutdown(TIMEOUT)
    assert w.state is WorkerState.STOPPED
