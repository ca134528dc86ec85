"""How fast one endpoint reads a prompt, measured there.

A model's reading speed (prompt processing) differs from its decoding speed
by a ratio that depends on the model, the batch size and the hardware: a
fixed multiple of the decode rate was wrong by several times across this
project's machines. So each endpoint measures its own: a local model reads a
short text once at load (before any answer has measured it), then every
answer's reading counts, timed by the engine where it can (a local model:
the prefill alone) or as the time to the first token (a server).

In seconds per estimated prompt token (estimate_prompt_tokens), the unit the
router sizes prompts in, so the estimate's bias for this tokenizer cancels.
"""

from __future__ import annotations

import threading

EWMA_ALPHA = 0.3
# Fewer tokens than this read in one go time the per-call overhead and the
# first decode step more than the reading: not counted.
MIN_READ_TOKENS = 16.0
# What a local model reads at load to measure its speed: about 30 estimated
# tokens of plain prose (some 1-3 s for a 14B model on a laptop CPU, a few
# ms for small models or on a GPU).
PROBE_TEXT = (
    "The lighthouse keeper climbed the stairs at dusk, trimmed the wick and wrote "
    "the weather in the log: wind from the west, a light swell."
)


def estimated_tokens(text: str) -> int:
    """Plain text's size in the router's estimate (no message around it)."""
    return len(text) // 4


class ReadingSpeed:
    """Seconds per estimated prompt token on one endpoint. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._s_per_token: float | None = None
        self.samples = 0  # answers measured (the load's probe not counted)

    @property
    def s_per_token(self) -> float | None:
        return self._s_per_token

    def probed(self, seconds: float, tokens: float) -> None:
        """The load's measurement: the starting value, until answers say more."""
        if tokens > 0 and seconds > 0:
            with self._lock:
                if self.samples == 0:
                    self._s_per_token = seconds / tokens

    def record(self, seconds: float, tokens: float) -> None:
        """`tokens` (estimated) were read in `seconds`."""
        if tokens < MIN_READ_TOKENS or seconds <= 0:
            return
        sample = seconds / tokens
        with self._lock:
            previous = self._s_per_token
            self._s_per_token = (sample if previous is None
                                 else EWMA_ALPHA * sample + (1 - EWMA_ALPHA) * previous)
            self.samples += 1
