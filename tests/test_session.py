"""The chat session over three real workers (tiny model in every role)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gated_engine import gated_loader
from session_events import TIMEOUT, events_of, make_session

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import WorkerState
from zeta_desktop.core.settings import AppConfig

pytestmark = pytest.mark.model


@pytest.fixture
def session(tiny_config: AppConfig) -> Iterator[ChatSession]:
    s = make_session(tiny_config)
    yield s
    s.shutdown(TIMEOUT)


@pytest.mark.parametrize(
    ("prompt", "kind", "role"),
    [
        ("hello there", "simple", "coder"),
        ("```python\ndef f(x):\n    return x\n```\nwhy does f fail?", "code", "coder"),
        ("Prove that the sum of two even numbers is even.", "reasoning", "reasoner"),
    ],
)
def test_each_kind_goes_to_its_preferred_role(
    session: ChatSession, prompt: str, kind: str, role: str
) -> None:
    events = events_of(session)
    turn_id = session.send(prompt)
    events.wait_done(turn_id)
    turn = session.turn(turn_id)
    assert turn.decision is not None and turn.decision.kind.value == kind
    assert turn.role == role and events.started[turn_id] == role
    assert turn.reason.startswith(f"{kind} -> {role}: preferred")
    assert turn.status == "done" and turn.answer == "".join(events.tokens[turn_id])


def test_history_is_sent_with_the_next_prompt(session: ChatSession) -> None:
    events = events_of(session)
    first = session.send("alpha beta")
    events.wait_done(first)
    second = session.send("gamma delta")
    events.wait_done(second)
    messages = session.turn(second).job.messages  # type: ignore[union-attr]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "alpha beta"
    assert messages[2]["content"] == session.turn(first).answer


def test_a_follow_up_is_routed_as_the_turn_it_follows(session: ChatSession) -> None:
    events = events_of(session)
    first = session.send("Prove that the sum of two even numbers is even.")
    events.wait_done(first)
    follow_up = session.send("why?")
    events.wait_done(follow_up)
    turn = session.turn(follow_up)
    assert turn.decision is not None and turn.decision.kind.value == "reasoning"
    assert turn.role == "reasoner"
    assert any(e.startswith("follow-up: read with the turn before (reasoning)")
               for e in turn.classification.evidence)  # type: ignore[union-attr]


def test_a_chain_of_follow_ups_keeps_the_first_turns_kind(session: ChatSession) -> None:
    events = events_of(session)
    turn_ids = []
    for prompt in ("Write a Python function that merges two sorted lists.", "now in Rust",
                   "shorter please"):  # alone, the last two read as simple
        turn_ids.append(session.send(prompt))
        events.wait_done(turn_ids[-1])
    last = session.turn(turn_ids[-1])
    assert last.decision is not None and last.decision.kind.value == "code"
    assert any(e.startswith("follow-up: read with the turn before (code)")
               for e in last.classification.evidence)  # type: ignore[union-attr]


def test_a_follow_up_sent_before_the_answer_ends_is_read_with_it(session: ChatSession) -> None:
    events = events_of(session)
    # Sent at once: whether the first answer has ended or still streams when
    # the second is routed, the second is read with the first.
    first = session.send("Prove that the sum of two even numbers is even.")
    follow_up = session.send("why?")
    events.wait_done(first, follow_up)
    turn = session.turn(follow_up)
    assert any(e.startswith("follow-up: read with the turn before (reasoning)")
               for e in turn.classification.evidence)  # type: ignore[union-attr]


def test_a_forced_role_is_used_and_recorded(session: ChatSession) -> None:
    events = events_of(session)
    turn_id = session.send("def f(): pass", role="embedder")
    events.wait_done(turn_id)
    turn = session.turn(turn_id)
    assert turn.role == "embedder" and turn.decision is not None
    assert turn.decision.policy == "override" and "chosen by you" in turn.reason


def test_stop_marks_the_turn_stopped_and_keeps_the_partial_answer(tiny_config: AppConfig) -> None:
    from gated_engine import gated_loader

    # Held after 3 tokens until Stop: the tiny model would otherwise finish first.
    reached, release = threading.Event(), threading.Event()
    session = make_session(tiny_config, gated_loader(3, reached, release))
    try:
        events = events_of(session)
        turn_id = session.send("talk forever")
        assert reached.wait(TIMEOUT)
        session.stop()
        events.wait_done(turn_id)
        turn = session.turn(turn_id)
        assert turn.status == "stopped" and events.finished[turn_id] is True
        assert turn.answer == "".join(events.tokens[turn_id]) and len(events.tokens[turn_id]) == 3
    finally:
        session.shutdown(TIMEOUT)


def test_time_to_first_token_is_known_while_the_answer_still_streams(
    session: ChatSession,
) -> None:
    events = events_of(session)
    session.roles["coder"].config.max_tokens = 100000
    turn_id = session.send("talk forever", role="coder")
    events.wait_tokens(turn_id, 3)
    signals = session.telemetry.snapshot().models["coder"]
    assert turn_id not in events.finished
    # Known from the first token (the card and the plot show it now); the
    # router's average still waits for finished answers.
    assert signals.last_ttft_s is not None and 0 < signals.last_ttft_s < TIMEOUT
    assert signals.ttft_s is None
    session.telemetry.sample()
    _, values = session.telemetry.model_series["coder"].copy(0.0)
    assert values["ttft_s"][-1] == signals.last_ttft_s
    session.stop()
    events.wait_done(turn_id)


def test_prompt_too_long_fails_clearly_keeps_the_prompt_and_blames_no_model(
    session: ChatSession,
) -> None:
    events = events_of(session)
    prompt = "alpha " * 2000
    turn_id = session.send(prompt)
    events.wait_done(turn_id)
    assert "context holds 512" in events.failed[turn_id]
    assert session.turn(turn_id).prompt == prompt
    assert all(m.failed == 0 for m in session.telemetry.models.values())


def test_a_too_long_prompt_goes_to_a_role_with_a_larger_context(tiny_config: AppConfig) -> None:
    tiny_config.roles["reasoner"].n_ctx = 4096
    session = make_session(tiny_config)
    try:
        events = events_of(session)
        # ~900 tokens of code: the coder (512) cannot hold it, the reasoner (4096) can
        turn_id = session.send("```\n" + "alpha " * 150 + "\n```")
        events.wait_done(turn_id)
        assert session.turn(turn_id).status == "done"
        assert session.turn(turn_id).role == "reasoner"
        assert events.retried[turn_id][0] == "coder"
    finally:
        session.shutdown(TIMEOUT)


def test_a_role_that_cannot_load_does_not_stop_the_others(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    tiny_config.roles["coder"].model_path = str(tmp_path / "missing.gguf")
    session = make_session(tiny_config)
    try:
        events = events_of(session)
        assert session.worker("coder").state is WorkerState.UNAVAILABLE
        turn_id = session.send("hello")
        events.wait_done(turn_id)
        # simple prefers the coder; the embedder (0.8) is the next best fit
        assert session.turn(turn_id).role == "embedder"
        assert session.turn(turn_id).status == "done"
    finally:
        session.shutdown(TIMEOUT)


def test_no_chat_role_at_all_is_reported(tiny_config: AppConfig, tmp_path: Path) -> None:
    for role in tiny_config.roles.values():
        role.model_path = str(tmp_path / "missing.gguf")
    session = make_session(tiny_config)
    try:
        events = events_of(session)
        turn_id = session.send("hello")
        events.wait_done(turn_id)
        assert "no model can serve a simple task" in events.failed[turn_id]
        assert "unavailable" in events.failed[turn_id]
    finally:
        session.shutdown(TIMEOUT)


def test_embed_commands_answer_in_the_chat(session: ChatSession) -> None:
    events = events_of(session)
    embed = session.send("/embed the quick brown fox")
    similar = session.send("/similar alpha beta | alpha beta")
    bad = session.send("/similar a | b | c")
    history = session.send("/similar only one side")  # the history, by meaning
    events.wait_done(embed, similar, bad, history)
    assert session.turn(embed).role == "embedder"
    assert session.turn(embed).answer.startswith("64-dimensional embedding")
    assert "cosine similarity 1.0000" in session.turn(similar).answer
    assert "usage: /similar" in events.failed[bad]
    # This session keeps no history on disk, so there is none to search.
    assert "needs the history to be saved" in events.failed[history]
    # embedding turns stay out of the chat history
    chat = session.send("hi")
    events.wait_done(chat)
    assert len(session.turn(chat).job.messages) == 2  # type: ignore[union-attr]
    assert len(session.embed(["a", "b"], timeout=TIMEOUT)) == 2


class CrashingLoader:
    """Loads the real tiny model; the chosen role's decode fails after a few tokens."""

    def __init__(self, crash_path: Path) -> None:
        self.crash_path = crash_path

    def __call__(self, path: Path, settings: LoadSettings):  # type: ignore[no-untyped-def]
        from test_worker import CrashesMidAnswer

        engine = LlamaEngine.load(path, settings)
        return CrashesMidAnswer(engine, after=3) if path == self.crash_path else engine


def test_a_crash_mid_answer_is_retried_on_another_model(
    tiny_config: AppConfig, tiny_model: Path, tmp_path: Path
) -> None:
    crashing = tmp_path / "crashing.gguf"
    crashing.write_bytes(tiny_model.read_bytes())
    tiny_config.roles["coder"].model_path = str(crashing)
    session = make_session(tiny_config, CrashingLoader(crashing))
    try:
        events = events_of(session)
        turn_id = session.send("hello")
        events.wait_done(turn_id)
        turn = session.turn(turn_id)
        assert events.retried[turn_id][0] == "coder"
        assert "llama_decode returned -1" in events.retried[turn_id][1]
        assert turn.status == "done" and turn.role != "coder" and turn.retried
        assert turn.answer and turn.answer == "".join(events.tokens[turn_id][3:])
        coder = session.telemetry.snapshot().models["coder"]
        assert coder.failed == 1 and coder.cooling_down
        # while the coder cools down, the next simple prompt avoids it
        again = session.send("hello again")
        events.wait_done(again)
        assert session.turn(again).role != "coder"
        assert "cooling down" in session.turn(again).reason
    finally:
        session.shutdown(TIMEOUT)


def test_an_overloaded_model_spills_to_a_capable_one(tiny_config: AppConfig) -> None:
    tiny_config.roles["coder"].max_tokens = 400
    tiny_config.router.max_queue = 1
    # The coder's first answer holds after 12 tokens, so it is surely still
    # busy when the others are routed (the tiny model would otherwise finish
    # each before the next arrives).
    reached, release = threading.Event(), threading.Event()
    session = make_session(tiny_config, loader=gated_loader(12, reached, release))
    try:
        events = events_of(session)
        ids = [session.send("```\nfix bug 0\n```")]
        assert reached.wait(TIMEOUT)
        ids += [session.send(f"```\nfix bug {i}\n```") for i in range(1, 4)]
        with events.changed:
            assert events.changed.wait_for(lambda: all(i in events.routed for i in ids), TIMEOUT)
        release.set()
        events.wait_done(*ids)
        roles = [session.turn(i).role for i in ids]
        assert roles[0] == "coder"
        assert set(roles[1:]) - {"coder"}, roles  # some code prompts spilled
        spilled = [session.turn(i) for i in ids if session.turn(i).role != "coder"]
        assert all("coder queue" in t.reason for t in spilled)
        assert all(t.decision and t.decision.spilled for t in spilled)
        assert all(session.turn(i).status == "done" for i in ids)
    finally:
        session.shutdown(TIMEOUT)


def test_the_demo_embedder_votes_on_prompts_and_never_chats(tiny_config: AppConfig) -> None:
    tiny_config.router.semantic = True
    tiny_config.roles["embedder"].model_path = ""  # the demo's: all-MiniLM-L6-v2
    session = make_session(tiny_config)
    try:
        events = events_of(session)
        assert session.roles["embedder"].source is not None
        assert not session.can_chat("embedder") and session.can_embed("embedder")
        assert session.embedding_vote_ready.wait(TIMEOUT)
        ids = [session.send(p) for p in ("hello", "Write a SQL query that counts the rows",
                                         "If two trains leave at once, which arrives first?")]
        for turn_id in ids:
            events.wait_done(turn_id)
            turn = session.turn(turn_id)
            assert turn.role != "embedder"
            evidence = turn.classification.evidence  # type: ignore[union-attr]
            assert any(e.startswith("nearest labelled prompts:") for e in evidence), evidence
        assert session.embed(["a vector"], timeout=TIMEOUT)[0]
    finally:
        session.shutdown(TIMEOUT)


def test_an_embedder_of_another_model_gets_no_vote_and_says_why(tiny_config: AppConfig) -> None:
    tiny_config.router.semantic = True  # the embedder is the tiny random model
    tiny_config.router.own_index_prompts = 0  # and no index of its own is built
    session = make_session(tiny_config)
    try:
        events = events_of(session)
        assert session.embedding_vote_checked.wait(TIMEOUT)
        assert not session.embedding_vote_ready.is_set()
        assert session.classifier.embedding_vote is None
        turn_id = session.send("hello")
        events.wait_done(turn_id)
        evidence = session.turn(turn_id).classification.evidence  # type: ignore[union-attr]
        assert any("is not all-MiniLM-L6-v2" in e and "own_index_prompts is 0" in e
                   for e in evidence), evidence
    finally:
        session.shutdown(TIMEOUT)


def test_an_embedder_of_another_model_gets_its_own_index_then_votes(
        tiny_config: AppConfig) -> None:
    tiny_config.router.semantic = True  # the embedder is the tiny random model
    tiny_config.router.own_index_prompts = 40
    session = make_session(tiny_config)
    try:
        events = events_of(session)
        assert session.embedding_vote_checked.wait(TIMEOUT)
        assert session.embedding_vote_ready.wait(TIMEOUT), session.embedding_vote_note
        assert session.embedding_vote_note == ""
        vote = session.classifier.embedding_vote
        assert vote is not None and vote.index.model_name == "tiny-chat.gguf"
        assert abs(len(vote.index.labels) - 40) <= 3
        turn_id = session.send("Please help me tidy up this little thing I wrote")
        events.wait_done(turn_id)
        evidence = session.turn(turn_id).classification.evidence  # type: ignore[union-attr]
        assert any(e.startswith("nearest labelled prompts:") for e in evidence), evidence
    finally:
        session.shutdown(TIMEOUT)


class HangsMidAnswer:
    """The real engine; the chosen role's answer goes silent after two tokens (until cancelled)."""

    counts_tokens = True

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self._inner, self.n_ctx = inner, inner.n_ctx
        self.count_tokens, self.embed, self.close = inner.count_tokens, inner.embed, inner.close

    def stream_chat(self, messages, *, cancel, **kwargs):  # type: ignore[no-untyped-def]
        for index, piece in enumerate(self._inner.stream_chat(messages, cancel=cancel, **kwargs)):
            yield piece
            if index == 1:
                cancel.wait()  # silent: no token, no error, until someone cancels


def test_the_watchdog_fails_over_a_model_that_goes_silent(
    tiny_config: AppConfig, tiny_model: Path, tmp_path: Path
) -> None:
    silent = tmp_path / "silent.gguf"
    silent.symlink_to(tiny_model)
    tiny_config.roles["coder"].model_path = str(silent)
    tiny_config.router.token_timeout_s = 0.5

    def loader(path: Path, settings: LoadSettings):  # type: ignore[no-untyped-def]
        engine = LlamaEngine.load(path, settings)
        return HangsMidAnswer(engine) if path == silent else engine

    session = make_session(tiny_config, loader)
    try:
        events = events_of(session)
        hung = session.send("hello")  # simple -> the coder, which goes silent
        events.wait_tokens(hung, 2)
        queued = session.send("hello again", role="coder")  # waits behind the hung answer
        events.wait_done(hung, queued)
        turn = session.turn(hung)
        assert events.retried[hung][0] == "coder"
        assert "no token for" in events.retried[hung][1] and "watchdog" in events.retried[hung][1]
        assert turn.status == "done" and turn.role != "coder" and turn.answer
        assert session.telemetry.snapshot().models["coder"].cooling_down
        # The prompt queued behind the hung model went elsewhere, without counting as a failure.
        behind = session.turn(queued)
        assert behind.status == "done" and behind.role != "coder" and behind.attempts == []
    finally:
        session.shutdown(TIMEOUT)


def test_with_two_models_failing_the_third_still_answers(
    tiny_config: AppConfig, tiny_model: Path, tmp_path: Path
) -> None:
    from test_worker import CrashesMidAnswer

    crashing = {tmp_path / "coder-crashes.gguf", tmp_path / "reasoner-crashes.gguf"}
    for link in crashing:
        link.symlink_to(tiny_model)
    tiny_config.roles["coder"].model_path = str(tmp_path / "coder-crashes.gguf")
    tiny_config.roles["reasoner"].model_path = str(tmp_path / "reasoner-crashes.gguf")

    def loader(path: Path, settings: LoadSettings):  # type: ignore[no-untyped-def]
        engine = LlamaEngine.load(path, settings)
        return CrashesMidAnswer(engine, after=3) if path in crashing else engine

    session = make_session(tiny_config, loader)
    try:
        events = events_of(session)
        turn_id = session.send("Prove that the square root of two is irrational.")
        events.wait_done(turn_id)
        turn = session.turn(turn_id)
        assert [role for role, _ in turn.attempts] == ["reasoner", "coder"]
        assert turn.status == "done" and turn.role == "embedder" and turn.answer
    finally:
        session.shutdown(TIMEOUT)


def test_choosing_a_role_teaches_the_router_once_and_app_retries_do_not(
    session: ChatSession,
) -> None:
    events = events_of(session)
    prompt = "Write a Python function that reverses a linked list."
    routed = session.route(prompt).role
    other = next(r for r in ("coder", "reasoner") if r != routed)
    turn_id = session.send(prompt, role=other)
    events.wait_done(turn_id)
    learned = [a for a in session.router.adjustments if "you chose" in a.reason]
    kind = session.turn(turn_id).decision.kind.value  # type: ignore[union-attr]
    assert {a.role for a in learned} == {other, routed}
    assert all(a.what == f"{kind} preference" for a in learned)
    assert session.router.learned_shift()[other][kind] > 0
    again = session.send(prompt)  # through the router: nothing more to learn
    events.wait_done(again)
    assert len([a for a in session.router.adjustments if "you chose" in a.reason]) == 2


def test_what_the_router_learned_survives_a_restart_and_reset_clears_it(
    tiny_config: AppConfig, tmp_path: Path
) -> None:
    from zeta_desktop.core.store.history import HistoryStore

    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    first = make_session(tiny_config, store=store)
    try:
        events = events_of(first)
        prompt = "Write a Python function that reverses a linked list."
        routed = first.route(prompt).role
        other = next(r for r in ("coder", "reasoner") if r != routed)
        events.wait_done(first.send(prompt, role=other))
        learned = first.router.learned_shift()
        assert learned
    finally:
        first.shutdown(TIMEOUT)
        store.close()
    store = HistoryStore(path)  # the app started again
    second = make_session(tiny_config, store=store)
    try:
        # One store thread runs jobs in order: once this read is back, the
        # session's earlier read (and its restore callback) has run.
        store.get_state("router.learned").result(TIMEOUT)
        assert second.router.learned_shift() == learned
        second.reset_learned()
        assert second.router.learned_shift() == {}
        assert json.loads(store.get_state("router.learned").result(TIMEOUT)) == {}
    finally:
        second.shutdown(TIMEOUT)
        store.close()


class DownWhileCleared:
    """A real engine that refuses every answer while its `up` flag is clear."""

    counts_tokens = True

    def __init__(self, inner: LlamaEngine, up: threading.Event) -> None:
        self._inner, self._up = inner, up
        self.n_ctx, self.count_tokens = inner.n_ctx, inner.count_tokens
        self.embed, self.close = inner.embed, inner.close

    def stream_chat(self, messages, **kwargs):  # type: ignore[no-untyped-def]
        if not self._up.is_set():
            raise RuntimeError("injected: the model is down")
        yield from self._inner.stream_chat(messages, **kwargs)


def sessions_whose_models_are_down(tiny_config: AppConfig, tiny_model: Path, tmp_path: Path
                                   ) -> tuple[ChatSession, dict[str, threading.Event]]:
    up = {role: threading.Event() for role in tiny_config.roles}
    by_path = {}
    for role in tiny_config.roles:
        copy = tmp_path / f"{role}.gguf"
        copy.write_bytes(tiny_model.read_bytes())
        tiny_config.roles[role].model_path = str(copy)
        by_path[copy] = up[role]

    def loader(path: Path, settings: LoadSettings):  # type: ignore[no-untyped-def]
        return DownWhileCleared(LlamaEngine.load(path, settings), by_path[path])

    return make_session(tiny_config, loader), up


def test_when_every_model_fails_the_prompt_waits_for_one_to_recover(
    tiny_config: AppConfig, tiny_model: Path, tmp_path: Path
) -> None:
    from servers import wait_until

    session, up = sessions_whose_models_are_down(tiny_config, tiny_model, tmp_path)
    try:
        events = events_of(session)
        turn_id = session.send("hello")
        wait_until(lambda: "every model failed" in events.retried.get(turn_id, ("", ""))[1],
                   TIMEOUT, "the turn to wait for a model to recover")
        assert turn_id not in events.failed
        up["reasoner"].set()  # one comes back
        events.wait_done(turn_id)
        turn = session.turn(turn_id)
        assert turn.status == "done" and turn.role == "reasoner" and turn.answer
        assert {role for role, _ in turn.attempts} == {"coder", "embedder", "reasoner"}
    finally:
        session.shutdown(TIMEOUT)


def test_a_prompt_no_model_recovers_for_fails_visibly_once_its_window_is_over(
    tiny_config: AppConfig, tiny_model: Path, tmp_path: Path
) -> None:
    session, _up = sessions_whose_models_are_down(tiny_config, tiny_model, tmp_path)
    session.runner.recovery_window_s = 1.0
    try:
        events = events_of(session)
        turn_id = session.send("hello")
        events.wait_done(turn_id)
        assert "the model is down" in events.failed[turn_id]
        assert session.turn(turn_id).status == "failed"
    finally:
        session.shutdown(TIMEOUT)
