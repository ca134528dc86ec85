"""A real engine behind a wrapper that changes only how an answer streams.

Tests and benchmarks wrap llama.cpp's engine to hold a stream, to make it
think, or to shape it as Markdown; everything else goes straight through.
"""

from __future__ import annotations

from collections.abc import Sequence

from zeta_desktop.core.engines.base import Engine


class WrappedEngine:
    counts_tokens = True

    def __init__(self, inner: Engine) -> None:
        self._inner = inner

    @property
    def n_ctx(self) -> int:
        return self._inner.n_ctx

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self._inner.embed(texts)

    def close(self) -> None:
        self._inner.close()
