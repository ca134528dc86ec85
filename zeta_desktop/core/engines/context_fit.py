"""Fitting a conversation into a model's context window before it is sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from zeta_desktop.core.engines.base import ChatMessage, PromptTooLongError

# Chat templates add role markers around every message; this covers the
# common ones (ChatML, Llama 3, Gemma) without asking the template.
TEMPLATE_TOKENS_PER_MESSAGE = 8
MIN_ANSWER_TOKENS = 16


def fit_messages(
    messages: Sequence[ChatMessage],
    n_ctx: int,
    max_tokens: int,
    count_tokens: Callable[[str], int],
) -> tuple[list[ChatMessage], int]:
    """The messages to send and the answer budget (see fit_messages_counted)."""
    chosen, budget, _prompt_tokens = fit_messages_counted(
        messages, n_ctx, max_tokens, count_tokens
    )
    return chosen, budget


def fit_messages_counted(
    messages: Sequence[ChatMessage],
    n_ctx: int,
    max_tokens: int,
    count_tokens: Callable[[str], int],
) -> tuple[list[ChatMessage], int, int]:
    """Drop the oldest exchanges until the prompt leaves room for an answer.

    Returns the messages to send, the answer budget and the prompt's size in
    tokens (template markers estimated). The system message and
    the newest user message are always kept; if those alone do not fit, the
    prompt is too long and the user is told by how much.
    """
    costs = [count_tokens(m["content"]) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages]
    system = [0] if messages and messages[0]["role"] == "system" else []
    last = len(messages) - 1
    middle = [i for i in range(len(messages)) if i not in system and i != last]
    budget = n_ctx - min(max_tokens, max(MIN_ANSWER_TOKENS, n_ctx // 4))
    required = sum(costs[i] for i in system) + costs[last]
    if required + min(max_tokens, MIN_ANSWER_TOKENS) > n_ctx:
        raise PromptTooLongError(
            f"the prompt is about {costs[last]} tokens but this model's context holds "
            f"{n_ctx}; shorten it, or point this role at a model with a larger n_ctx"
        )
    kept: list[int] = []
    used = required
    for index in reversed(middle):  # newest history first
        if used + costs[index] > budget:
            break
        kept.append(index)
        used += costs[index]
    # Never start the kept history with an orphan assistant reply.
    kept.sort()
    while kept and messages[kept[0]]["role"] == "assistant":
        used -= costs[kept.pop(0)]
    chosen = system + kept + [last]
    answer_budget = max(1, min(max_tokens, n_ctx - used))
    return [messages[i] for i in chosen], answer_budget, used
