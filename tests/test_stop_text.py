"""StopText: token bytes to text, cut at the first stop string, nothing lost."""

from __future__ import annotations

import pytest

from zeta_desktop.core.engines.stop_text import StopText


def stream(pieces: list[bytes], stops: list[str]) -> tuple[list[str], StopText]:
    text = StopText(stops)
    released = [text.feed(piece) for piece in pieces]
    released.append(text.finish())
    return released, text


def test_plain_pieces_pass_straight_through() -> None:
    released, text = stream([b"Hello", b" world", b"!"], ["<|im_end|>"])
    assert released == ["Hello", " world", "!", ""]
    assert not text.stopped


def test_a_stop_string_over_several_tokens_is_cut_and_never_shown() -> None:
    released, text = stream([b"Done.", b"<|im", b"_", b"end|>", b"more"], ["<|im_end|>"])
    assert "".join(released) == "Done."
    assert released[:4] == ["Done.", "", "", ""]  # held back, then dropped
    assert text.stopped


def test_held_text_that_was_not_a_stop_string_comes_out() -> None:
    released, _ = stream([b"a <", b"|i", b"s fine"], ["<|im_end|>"])
    assert released == ["a ", "", "<|is fine", ""]


def test_text_held_at_the_end_is_released_by_finish() -> None:
    released, text = stream([b"x <|im"], ["<|im_end|>"])
    assert released == ["x ", "<|im"]
    assert not text.stopped


def test_a_character_split_across_tokens_is_joined() -> None:
    snowman = "☃".encode()
    released, _ = stream([b"it", snowman[:1], snowman[1:], b"s"], [])
    assert released == ["it", "", "☃", "s", ""]


def test_an_unfinished_character_at_the_end_is_replaced_not_lost() -> None:
    released, _ = stream([b"ok", "é".encode()[:1]], [])
    assert "".join(released) == "ok\ufffd"


@pytest.mark.parametrize("stops", [["END", "<|im_end|>"], ["<|im_end|>", "END"]])
def test_the_first_stop_string_in_the_text_wins(stops: list[str]) -> None:
    released, text = stream([b"one END two <|im_end|>"], stops)
    assert "".join(released) == "one "
    assert text.stopped


def test_nothing_comes_out_after_the_stop() -> None:
    text = StopText(["</s>"])
    assert text.feed(b"hi</s>") == "hi"
    assert text.feed(b"later") == ""
    assert text.finish() == ""
