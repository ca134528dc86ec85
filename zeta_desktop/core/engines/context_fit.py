"""Fitting a conversation into a model's context window before it is sent.

Once a conversation outgrows the context, old turns are dropped in large
steps rather than one at a time. The steps are cut from the conversation's
start, where the messages never change, so the same first kept turn comes
back at the next several turns: the model's cache still holds everything up
to the new question, and only that is read. Dropping one turn a turn would
change the prompt's start every time, and the whole prompt would be read
again at every turn once the context is full.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from zeta_desktop.core.engines.base import ChatMessage, PromptTooLongError

# Chat templates add role markers around every message; this covers the
# common ones (ChatML, Llama 3, Gemma) without asking the template.
TEMPLATE_TOKENS_PER_MESSAGE = 8
MIN_ANSWER_TOKENS = 16
# Old turns are dropped this share of the history's room at a time: after a
# step the prompt has that much room to grow before the next.
DROP_STEP_SHARE = 1 / 3


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
    """Drop the oldest exchanges, a step at a time, until the prompt leaves
    room for an answer.

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
    room = budget - required
    middle_costs = [costs[i] for i in middle]
    start = kept_from(middle_costs, [messages[i]["role"] for i in middle], room,
                      step_tokens(budget))
    kept = middle[start:]
    # Never start the kept history with an orphan assistant reply.
    while kept and messages[kept[0]]["role"] == "assistant":
        kept.pop(0)
    chosen = system + kept + [last]
    used = required + sum(costs[i] for i in kept)
    answer_budget = max(1, min(max_tokens, n_ctx - used))
    return [messages[i] for i in chosen], answer_budget, used


def step_tokens(budget: int) -> int:
    """How much history one step drops: a share of the room a prompt has,
    the same at every turn (the newest question's size does not move it)."""
    return max(1, int(budget * DROP_STEP_SHARE))


def kept_from(costs: Sequence[int], roles: Sequence[str], room: int, step: int) -> int:
    """The index of the first history message kept: 0 when it all fits; else
    the earliest step boundary whose rest fits in `room`.

    Boundaries fall where the history's running size from its start first
    passes each multiple of `step`, moved on to the next user message (a kept
    history opens with a question). They depend only on the oldest messages,
    which a new turn does not change, so successive turns pick the same one
    until the history outgrows it.
    """
    if sum(costs) <= room:
        return 0
    next_cut, dropped = step, 0
    for index, cost in enumerate(costs):
        dropped += cost
        if dropped < next_cut:
            continue
        while next_cut <= dropped:
            next_cut += step
        boundary = _next_question(roles, index + 1)
        if boundary < len(costs) and sum(costs[boundary:]) <= room:
            return boundary
    # Even the newest step does not fit (one huge turn): keep the newest
    # messages that do, one at a time.
    return _newest_that_fit(costs, room)


def _next_question(roles: Sequence[str], index: int) -> int:
    while index < len(roles) and roles[index] != "user":
        index += 1
    return index


def _newest_that_fit(costs: Sequence[int], room: int) -> int:
    used, start = 0, len(costs)
    for index in range(len(costs) - 1, -1, -1):
        if used + costs[index] > room:
            break
        used += costs[index]
        start = index
    return start
