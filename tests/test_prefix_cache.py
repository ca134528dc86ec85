"""What an endpoint's cache holds of a request, from its record (no model needed)."""

from __future__ import annotations

from zeta_desktop.core.engines.base import ChatMessage
from zeta_desktop.core.fleet.prefix_cache import (
    NO_PROMPT,
    PrefixRecord,
    PromptKeys,
    held_part,
)
from zeta_desktop.core.fleet.reading_speed import MIN_READ_TOKENS, ReadingSpeed
from zeta_desktop.core.fleet.worker import estimate_prompt_tokens

SYSTEM: ChatMessage = {"role": "system", "content": "You are a helpful assistant."}


def chat(turns: int, question: str = "next?") -> list[ChatMessage]:
    messages = [SYSTEM]
    for i in range(turns):
        messages += [{"role": "user", "content": f"question {i} " + "word " * 40},
                     {"role": "assistant", "content": f"answer {i} " + "word " * 60}]
    return [*messages, {"role": "user", "content": question}]


def keys(messages: list[ChatMessage]) -> PromptKeys:
    return PromptKeys.of(messages)


def test_sizes_are_the_routers_estimate() -> None:
    messages = chat(3)
    assert keys(messages).tokens() == estimate_prompt_tokens(messages)
    assert keys(messages).tokens(0, 2) == estimate_prompt_tokens(messages[:2])


def test_a_follow_up_holds_everything_but_its_new_question() -> None:
    before = chat(2)
    answered = [*before, {"role": "assistant", "content": "the answer"}]
    now = [*answered, {"role": "user", "content": "and then?"}]
    held, prompt = held_part(keys(answered), keys(now))
    assert prompt == estimate_prompt_tokens(now)
    assert held == estimate_prompt_tokens(answered)
    # A different answer in the history (edited, or another model's): held up to it.
    other = [*before, {"role": "assistant", "content": "another answer"},
             {"role": "user", "content": "and then?"}]
    assert held_part(keys(answered), keys(other))[0] == estimate_prompt_tokens(before)


def test_another_system_prompt_or_conversation_holds_nothing() -> None:
    answered = chat(2)
    elsewhere = [{"role": "system", "content": "Be terse."}, *answered[1:]]
    assert held_part(keys(answered), keys(elsewhere))[0] == 0
    unrelated = [SYSTEM, {"role": "user", "content": "what is zeta?"}]
    assert held_part(keys(answered), keys(unrelated))[0] == estimate_prompt_tokens([SYSTEM])
    assert held_part(NO_PROMPT, keys(unrelated)) == (0, estimate_prompt_tokens(unrelated))


def test_a_prompt_that_lost_old_turns_to_its_fit_matches_from_its_first_kept_turn() -> None:
    full = chat(6)
    fitted = [SYSTEM, *full[5:]]  # the fit dropped the first two exchanges
    answered = [*fitted, {"role": "assistant", "content": "the answer"}]
    now = [*full, {"role": "assistant", "content": "the answer"},
           {"role": "user", "content": "more?"}]
    held, prompt = held_part(keys(answered), keys(now))
    assert held == estimate_prompt_tokens(answered)
    # The dropped turns are not read either (the next fit drops them again).
    assert prompt == estimate_prompt_tokens([SYSTEM, *now[5:]])


def test_a_short_message_seen_in_another_chat_is_no_match() -> None:
    one = [SYSTEM, {"role": "user", "content": "why?"}, {"role": "assistant", "content": "a"}]
    other = [*chat(2), {"role": "assistant", "content": "b"}, {"role": "user", "content": "why?"},
             {"role": "assistant", "content": "c"}, {"role": "user", "content": "ok"}]
    assert held_part(keys(one), keys(other)) == (estimate_prompt_tokens([SYSTEM]),
                                                 estimate_prompt_tokens(other))


def test_the_record_follows_the_queue_not_the_order_jobs_end_in() -> None:
    record = PrefixRecord()
    first, second = chat(1, "first"), chat(1, "second")
    one = record.expect(keys(first))
    two = record.expect(keys(second))  # queued behind the first
    record.hold(one, keys([*first, {"role": "assistant", "content": "x"}]))
    # Once the second has run, the cache holds the second's prompt.
    assert record.held(keys(second))[0] == estimate_prompt_tokens(second)
    record.withdraw(two)  # it was stopped before it ran: the first's is what is left
    assert record.held(keys(first))[0] == estimate_prompt_tokens(first)
    record.forget()
    assert record.held(keys(first))[0] == 0


def test_a_server_with_slots_holds_one_prompt_each() -> None:
    record = PrefixRecord(slots=2)
    a, b, c = chat(1, "a"), chat(1, "b"), chat(1, "c")
    for prompt in (a, b):
        record.hold(record.expect(keys(prompt)), keys(prompt))
    assert record.held(keys(a))[0] == estimate_prompt_tokens(a)
    assert record.held(keys(b))[0] == estimate_prompt_tokens(b)
    record.hold(record.expect(keys(c)), keys(c))  # the oldest slot's prompt is gone
    assert record.held(keys(a))[0] < estimate_prompt_tokens(a)


def test_reading_speed_starts_at_the_probe_and_learns_from_answers() -> None:
    speed = ReadingSpeed()
    assert speed.s_per_token is None
    speed.probed(0.5, 50)
    assert speed.s_per_token == 0.01
    speed.record(0.1, MIN_READ_TOKENS - 1)  # too few tokens to say anything
    assert speed.s_per_token == 0.01 and speed.samples == 0
    speed.record(2.0, 100)
    assert speed.s_per_token is not None and 0.01 < speed.s_per_token < 0.02
    speed.probed(5.0, 10)  # a reload measures nothing once answers have
    assert speed.s_per_token < 0.02


def test_repeated_turns_match_where_the_held_prompt_runs_to_its_end() -> None:
    hello = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    question = {"role": "user", "content": "tell me " + "word " * 40}
    answered = [SYSTEM, *hello, question, {"role": "assistant", "content": "told"}]
    # The fit dropped the first of two identical exchanges: the held prompt
    # starts like the request's first exchange but continues like its second.
    now = [SYSTEM, *hello, *hello, question, {"role": "assistant", "content": "told"},
           {"role": "user", "content": "more"}]
    held, prompt = held_part(keys(answered), keys(now))
    assert held == estimate_prompt_tokens(answered)
    assert prompt == estimate_prompt_tokens(now) - estimate_prompt_tokens(hello)


def test_saved_states_count_the_prompts_the_model_left() -> None:
    a = PromptKeys.of([{"role": "user", "content": "alpha " * 80}])
    b = PromptKeys.of([{"role": "user", "content": "beta " * 80}])
    c = PromptKeys.of([{"role": "user", "content": "gamma " * 80}])
    record = PrefixRecord(slots=1)
    for prompt in (a, b, c):
        record.hold(record.expect(prompt), prompt)
    assert record.held(a)[0] == 0  # one slot: only c is in the cache
    record.set_saved(1)  # the store kept one state: b's, the latest left
    assert record.held(b)[0] == b.tokens() and record.held(a)[0] == 0
    record.set_saved(2)
    assert record.held(a)[0] == a.tokens()
    record.set_saved(0)  # the store was emptied (evicted, or the model changed)
    assert record.held(b)[0] == 0
