"""An answer's text in parts: thinking, prose, fenced code (no Qt)."""

from __future__ import annotations

from zeta_desktop.core.conversation.answer_parts import Code, Prose, answer_parts
from zeta_desktop.core.engines.thinking import ThinkingCounter, split_thinking


def test_prose_and_code_blocks_in_order() -> None:
    text = "Intro\n\n```python\nprint(1)\n```\n\nBetween\n\n~~~\nplain\n~~~\nEnd"
    parts = answer_parts(text)
    assert [type(p) for p in parts] == [Prose, Code, Prose, Code, Prose]
    assert parts[1] == Code("python", "print(1)", True, "```", start=7)
    assert parts[3].code == "plain" and parts[3].language == ""  # type: ignore[union-attr]
    assert [p.text for p in parts if isinstance(p, Prose)] == ["Intro", "Between", "End"]


def test_a_longer_fence_holds_a_shorter_one() -> None:
    text = "````markdown\n```py\nx = 1\n```\n````\nafter"
    code, after = answer_parts(text)
    assert isinstance(code, Code) and code.closed and code.language == "markdown"
    assert code.code == "```py\nx = 1\n```"
    assert after == Prose("after", start=len(text) - len("after"))


def test_a_fence_still_open_runs_to_the_end() -> None:
    (code,) = answer_parts("```js\nlet a = 1;\nlet b")
    assert code == Code("js", "let a = 1;\nlet b", False, "```")
    # An answer that is only a code block has no prose at all.
    assert answer_parts("```\nonly code\n```") == [Code("", "only code", True, "```")]


def test_an_inline_triple_backtick_is_not_a_fence() -> None:
    assert answer_parts("use ```x``` here") == [Prose("use ```x``` here")]


def test_re_parsing_from_the_last_part_gives_the_same_parts() -> None:
    text = "a\n\n```py\nx\n```\n\nb and more\n\n```sh\nls"
    parts = answer_parts(text)
    last = parts[-1]
    assert parts[:-1] + answer_parts(text[last.start:], last.start) == parts


def test_thinking_is_told_apart_from_the_answer() -> None:
    thinking, answer = split_thinking("<think>\nweigh it\n</think>\n\nThe answer")
    assert thinking is not None and thinking.text == "weigh it" and thinking.done
    assert answer == "The answer"
    # Still thinking (the stream stopped inside it): everything is thinking.
    thinking, answer = split_thinking("<think>half a thou")
    assert thinking is not None and not thinking.done and answer == ""
    # The chat template opened the tag in the prompt: only the closing one shows.
    thinking, answer = split_thinking("weigh it</think>answer")
    assert thinking is not None and thinking.text == "weigh it" and answer == "answer"
    assert split_thinking("[THINK]a[/THINK]b")[1] == "b"
    assert split_thinking("no thinking here") == (None, "no thinking here")


def test_thinking_tokens_are_counted_apart_once_the_stream_ends() -> None:
    counter = ThinkingCounter()
    for at, piece in enumerate(["<think>", "one", " two", "</think>", "\n", "Answer", "!"]):
        counter.feed(piece, float(at))
    assert counter.thinking_tokens() == 5
    assert counter.thinking_seconds(0.0) == 4.0
    plain = ThinkingCounter()
    plain.feed("just an answer", 1.0)
    assert plain.thinking_tokens() == 0 and plain.thinking_seconds(0.0) is None
