from __future__ import annotations

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
