"""Turn a model's token bytes into text that ends before the first stop string."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopText:
    """Decodes byte pieces as they come and cuts the text at the first stop string.

    A token can end inside a UTF-8 character, and a stop string such as
    "<|im_end|>" can arrive over several tokens, so text that might still turn
    into either is held back until a later piece settles it. Each call costs
    the length of the held text, not of the whole answer.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self.stopped = False

    def feed(self, piece: bytes) -> str:
        """The text this piece releases; empty while held back or once stopped."""
        if self.stopped:
            return ""
        return self._release(self._held + self._decoder.decode(piece))

    def finish(self) -> str:
        """The held-back text once the model has ended without a stop string."""
        if self.stopped:
            return ""
        text = self._release(self._held + self._decoder.decode(b"", final=True))
        text, self._held = text + self._held, ""
        return text

    def _release(self, text: str) -> str:
        cut = min((at for stop in self._stops if (at := text.find(stop)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = self._stop_prefix_length(text)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def _stop_prefix_length(self, text: str) -> int:
        """Length of the longest end of `text` that begins some stop string."""
        longest = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:length]):
                    longest = length
                    break
        return longest
