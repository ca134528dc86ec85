"""What each model's cache holds, with the real tiny model: the worker's record,
its reading speed, a long conversation's fit, and a follow-up routed to the
model holding its conversation."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from session_events import TIMEOUT, events_of, make_session

from zeta_desktop.core.engines.base import ChatMessage, LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.prefix_cache import PromptKeys
from zeta_desktop.core.fleet.worker import ChatJob, ChatListener, ChatStats, ModelWorker
from zeta_desktop.core.routing.router import HELD_PREFIX_MIN_TOKENS
from zeta_desktop.core.settings import AppConfig

pytestmark = pytest.mark.model

SETTINGS = LoadSettings(n_ctx=512, n_gpu_layers=0, n_threads=1, embedding=False)
SYSTEM: ChatMessage = {"role": "system", "content": "You are a helpful assistant."}


class Answer(ChatListener):
    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.pieces: list[str] = []
        self.stats: ChatStats | None = None
        self.error = ""
        self.done = threading.Event()

    def on_token(self, job: ChatJob, text: str) -> None:
        self.pieces.append(text)
        if len(self.pieces) == self.stop_after:
            job.cancel.set()  # the tiny model never ends an answer by itself

    def on_finished(self, job: ChatJob, role: str, stopped: bool, stats: ChatStats) -> None:
        self.stats = stats
        self.done.set()

    def on_failed(self, job: ChatJob, role: str, message: str, partial: bool,
                  error: Exception | None = None) -> None:
        self.error = message
        self.done.set()


def ask(worker: ModelWorker, messages: list[ChatMessage], max_tokens: int = 12,
        stop_after: int | None = None) -> tuple[str, ChatStats]:
    answer = Answer(stop_after)
    worker.submit(ChatJob(messages=messages, listener=answer, max_tokens=max_tokens,
                          temperature=0.0))
    assert answer.done.wait(TIMEOUT) and not answer.error, answer.error
    assert answer.stats is not None
    return "".join(answer.pieces), answer.stats


@pytest.fixture
def worker(tiny_model: Path) -> Iterator[ModelWorker]:
    w = ModelWorker("coder", tiny_model, SETTINGS, LlamaEngine.load)
    w.start()
    assert w.wait_loaded(TIMEOUT)
    yield w
    w.shutdown(TIMEOUT)


def test_a_local_model_knows_its_reading_speed_before_its_first_answer(
        worker: ModelWorker) -> None:
    probed = worker.reading_speed.s_per_token
    assert probed is not None and probed > 0
    ask(worker, [SYSTEM, {"role": "user", "content": "alpha beta gamma delta " * 12}])
    assert worker.reading_speed.samples == 1  # the answer's own reading counted


def test_the_record_holds_the_prompt_and_answer_the_cache_holds(worker: ModelWorker) -> None:
    first = [SYSTEM, {"role": "user", "content": "alpha beta gamma delta " * 10}]
    answer, stats = ask(worker, first)
    follow_up = [*first, {"role": "assistant", "content": answer},
                 {"role": "user", "content": "code model"}]
    reading = worker.reading(PromptKeys.of(follow_up))
    assert reading.held_tokens == PromptKeys.of(follow_up[:-1]).tokens()
    assert reading.prompt_tokens == PromptKeys.of(follow_up).tokens()
    assert worker.prefix.exact_tokens >= stats.prompt_tokens  # the prompt and the answer
    # And the engine agrees: the follow-up reads only what the turn added.
    _, again = ask(worker, follow_up)
    assert again.cached_tokens >= stats.prompt_tokens
    # (the tiny model spells the template's role names letter by letter)
    assert again.prompt_tokens - again.cached_tokens < again.prompt_tokens // 4
    # An embedding empties llama.cpp's cache, and the record says so.
    from zeta_desktop.core.fleet.worker import EmbedJob
    embedding = LoadSettings(n_ctx=512, n_gpu_layers=0, n_threads=1, embedding=True)
    embedder = ModelWorker("embedder", worker.model_path, embedding, LlamaEngine.load)
    embedder.start()
    try:
        ask(embedder, first)
        assert embedder.reading(PromptKeys.of(follow_up)).held_tokens > 0
        job = EmbedJob(["some text"])
        embedder.submit(job)
        job.result.result(TIMEOUT)
        assert embedder.reading(PromptKeys.of(follow_up)).held_tokens == 0
        _, cold = ask(embedder, follow_up)
        assert cold.cached_tokens == 0
    finally:
        embedder.shutdown(TIMEOUT)


def test_answers_are_the_same_as_a_fresh_models_when_nothing_is_dropped(
        worker: ModelWorker, tiny_model: Path) -> None:
    conversation = [SYSTEM, {"role": "user", "content": "alpha beta"},
                    {"role": "assistant", "content": "gamma delta"},
                    {"role": "user", "content": "code model stream"}]
    ours, _ = ask(worker, conversation, max_tokens=24)  # after the load's reading probe
    engine = LlamaEngine.load(tiny_model, SETTINGS)
    try:
        fresh = "".join(engine.stream_chat(conversation, max_tokens=24, temperature=0.0,
                                           cancel=threading.Event()))
    finally:
        engine.close()
    assert ours == fresh


def test_a_full_context_drops_turns_in_steps_and_follow_ups_read_only_their_new_part(
        worker: ModelWorker) -> None:
    messages = [SYSTEM]
    turns: list[ChatStats] = []
    for turn in range(40):
        messages.append({"role": "user",
                         "content": ("alpha beta", "gamma delta", "code model")[turn % 3]})
        # Room kept for a long answer (the fit's estimate of the tiny model's
        # template is short), then stopped after a few words.
        answer, stats = ask(worker, messages, max_tokens=96, stop_after=6)
        messages.append({"role": "assistant", "content": answer})
        turns.append(stats)
    # The context filled (a prompt shorter than the one before: turns dropped)...
    dropped = [i for i in range(1, len(turns))
               if turns[i].prompt_tokens < turns[i - 1].prompt_tokens]
    assert len(dropped) >= 2, [t.prompt_tokens for t in turns]
    # ...in steps: between two drops, several turns...
    assert all(b - a >= 3 for a, b in itertools.pairwise(dropped))
    # ...each of which found the turn before it, answer and all, in the cache.
    after = range(dropped[0] + 1, len(turns))
    reused = [i for i in after if i not in dropped
              and turns[i].cached_tokens >= turns[i - 1].prompt_tokens]
    assert reused == [i for i in after if i not in dropped]
    for i in reused:
        # The new question only, where a re-read would read them all.
        assert turns[i].prompt_tokens - turns[i].cached_tokens < turns[i].prompt_tokens // 4


READ_S_PER_TOKEN = 0.002  # a big model on a laptop CPU reads some 500 tokens a second


def slow_reader(path: Path, settings: LoadSettings) -> LlamaEngine:
    """The tiny model, reading (and decoding) at a big model's pace: it
    reads a few hundred tokens in milliseconds, which no routing would notice."""
    engine = LlamaEngine.load(path, settings)
    read = engine._llm.eval

    def read_slowly(tokens: list[int]) -> None:
        time.sleep(READ_S_PER_TOKEN * len(tokens))
        read(tokens)

    engine._llm.eval = read_slowly
    return engine


@pytest.fixture
def equal_roles(tiny_config: AppConfig) -> AppConfig:
    """Every role as good at every kind: only the cache tells them apart."""
    for role in tiny_config.roles.values():
        role.preference = {"simple": 1.0, "code": 1.0, "reasoning": 1.0}
        role.temperature = 0.0
    return tiny_config


def test_a_follow_up_goes_to_the_model_that_holds_its_conversation(
        equal_roles: AppConfig) -> None:
    session = make_session(equal_roles, loader=slow_reader)
    events = events_of(session)
    try:
        for role in ("coder", "embedder", "reasoner"):  # every model has answered once
            events.wait_done(session.send("hello there", role=role, with_history=False))
        session.new_conversation()
        first = session.send("Tell me about " + "alpha beta gamma delta " * 12, role="reasoner")
        events.wait_done(first)
        session.router.reset_learned()  # choosing a role taught it: equal again
        follow_up = session.send("and the delta?")
        events.wait_done(follow_up)
        turn = session.turn(follow_up)
        assert turn.role == "reasoner" and events.started[follow_up] == "reasoner"
        reading = session.fleet.worker("reasoner").reading(
            PromptKeys.of(turn.job.messages))  # type: ignore[union-attr]
        assert turn.reason.startswith("simple -> reasoner: holds ~"), turn.reason
        held = int(turn.reason.split("holds ~", 1)[1].split(" ", 1)[0].replace(",", ""))
        assert held >= HELD_PREFIX_MIN_TOKENS + PromptKeys.of([SYSTEM]).tokens()
        assert reading.held_tokens > held  # now it holds the follow-up as well
        # The same words in a new chat: nothing held anywhere, the preferred model.
        alone = session.send("and the delta?", with_history=False)
        events.wait_done(alone)
        assert session.turn(alone).role == "coder"
        assert "holds" not in session.turn(alone).reason
    finally:
        session.shutdown(TIMEOUT)
