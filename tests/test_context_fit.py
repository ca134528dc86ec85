from __future__ import annotations

import itertools

import pytest

from zeta_desktop.core.engines.base import PromptTooLongError
from zeta_desktop.core.engines.context_fit import TEMPLATE_TOKENS_PER_MESSAGE, fit_messages


def words(text: str) -> int:
    return len(text.split())


def conversation(turns: int, size: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "sys"}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"q{i} " + "w " * size})
        messages.append({"role": "assistant", "content": f"a{i} " + "w " * size})
    messages.append({"role": "user", "content": "latest question"})
    return messages


def test_short_conversation_is_sent_whole() -> None:
    messages = conversation(2, 5)
    kept, budget = fit_messages(messages, n_ctx=1000, max_tokens=100, count_tokens=words)
    assert kept == messages
    assert budget == 100


def test_oldest_exchanges_are_dropped_first() -> None:
    messages = conversation(10, 20)
    kept, budget = fit_messages(messages, n_ctx=200, max_tokens=50, count_tokens=words)
    assert kept[0]["role"] == "system"
    assert kept[-1]["content"] == "latest question"
    assert kept[1]["role"] == "user"  # never an orphan reply first
    assert "q9" in kept[-3]["content"]  # the newest exchange survives
    assert not any("q0" in m["content"] for m in kept)
    used = sum(words(m["content"]) + TEMPLATE_TOKENS_PER_MESSAGE for m in kept)
    assert used + budget <= 200


def test_a_prompt_bigger_than_the_context_is_refused_with_numbers() -> None:
    messages = [{"role": "user", "content": "w " * 600}]
    with pytest.raises(PromptTooLongError, match=r"about 60\d tokens .* holds 512"):
        fit_messages(messages, n_ctx=512, max_tokens=64, count_tokens=words)


def fit_old_way(messages: list[dict[str, str]], n_ctx: int,
                max_tokens: int) -> list[dict[str, str]]:
    """The fit before steps: the newest history that fits, one message at a time."""
    costs = [words(m["content"]) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages]
    budget = n_ctx - min(max_tokens, max(16, n_ctx // 4))
    used = costs[0] + costs[-1]
    kept: list[int] = []
    for index in range(len(messages) - 2, 0, -1):
        if used + costs[index] > budget:
            break
        kept.append(index)
        used += costs[index]
    kept.sort()
    while kept and messages[kept[0]]["role"] == "assistant":
        kept.pop(0)
    return [messages[i] for i in [0, *kept, len(messages) - 1]]


def grown(turns: int, size: int = 20) -> list[dict[str, str]]:
    """The conversation after `turns` exchanges, with a new question: each
    turn adds an exchange and leaves the ones before it as they were."""
    messages = conversation(turns, size)
    messages[-1] = {"role": "user", "content": f"question {turns}"}
    return messages


def test_what_fits_is_sent_as_before() -> None:
    for turns in range(0, 4):
        messages = grown(turns)
        assert fit_messages(messages, 400, 50, words)[0] == fit_old_way(messages, 400, 50)


def test_once_the_context_is_full_old_turns_go_in_steps_and_the_start_stays_put() -> None:
    firsts = []
    for turns in range(1, 40):
        kept, _ = fit_messages(grown(turns, 5), n_ctx=400, max_tokens=50, count_tokens=words)
        assert kept[0]["role"] == "system" and kept[-1]["content"] == f"question {turns}"
        assert kept[1]["role"] == "user"  # never an orphan reply first
        firsts.append(kept[1]["content"])
    # An exchange is 2 x 13 tokens and a step a third of the 350-token
    # budget: once the history fills it, four exchanges go at once, and the
    # next four turns keep the same first turn. The old fit moved it at
    # every turn.
    changes = [i for i in range(1, len(firsts)) if firsts[i] != firsts[i - 1]]
    assert len(changes) >= 3
    assert all(b - a >= 4 for a, b in itertools.pairwise(changes))
    old = [fit_old_way(grown(t, 5), 400, 50)[1]["content"] for t in range(1, 40)]
    assert all(old[i] != old[i - 1] for i in range(changes[0], len(old)))
    # Follow-ups after a step share their prompt up to the newer one's new
    # messages: each next prompt starts with the one before, question aside.
    for turn in range(changes[0] + 1, changes[1]):
        before, after = (fit_messages(grown(t + 1, 5), 400, 50, words)[0] for t in (turn - 1, turn))
        assert after[: len(before) - 1] == before[:-1]


def test_one_turn_bigger_than_a_step_still_keeps_what_fits() -> None:
    messages = [{"role": "system", "content": "sys"},
                {"role": "user", "content": "w " * 300}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": "latest"}]
    kept, _ = fit_messages(messages, n_ctx=200, max_tokens=50, count_tokens=words)
    assert [m["content"] for m in kept] == ["sys", "q", "a", "latest"]
