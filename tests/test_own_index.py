"""An embedding index for the user's own embedder: built from the shipped
index's prompts with a real (tiny) embedding model, kept, found again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.routing.classifier import (
    EmbeddingVote,
    TaskClassifier,
    shipped_embedding_index,
)
from zeta_desktop.core.routing.learned import EmbeddingIndex, load_index_texts
from zeta_desktop.core.routing.own_index import (
    BATCH,
    BuildCancelledError,
    EmbedderTooSlowError,
    OwnIndexBuilder,
    affordable_prompts,
    fingerprint,
    sample_rows,
)

PROMPTS = 48


@pytest.fixture(scope="module")
def engine(tiny_embed_model: Path) -> Iterator[LlamaEngine]:
    loaded = LlamaEngine.load(tiny_embed_model, LoadSettings(512, 0, 1, embedding=True))
    yield loaded
    loaded.close()


@pytest.fixture
def shipped() -> EmbeddingIndex:
    index = shipped_embedding_index()
    assert index is not None
    return index


def builder_for(engine: LlamaEngine, shipped: EmbeddingIndex, folder: Path,
                prompts: int = PROMPTS, **options: object) -> OwnIndexBuilder:
    probe = engine.embed(list(shipped.probe_texts))
    return OwnIndexBuilder(shipped, engine.embed, probe, "tiny-embed.gguf", folder, prompts,
                           **options)  # type: ignore[arg-type]


def test_the_shipped_index_says_what_each_row_embedded(shipped: EmbeddingIndex) -> None:
    texts = load_index_texts(len(shipped.labels))
    assert len(texts) == len(shipped.labels) and all(texts)


def test_a_sample_keeps_every_kind_in_its_share(shipped: EmbeddingIndex) -> None:
    rows = sample_rows(shipped.labels, 1000)
    assert list(rows) == sorted(set(rows)) and list(sample_rows(shipped.labels, 1000)) == list(rows)
    whole = np.bincount(shipped.labels) / len(shipped.labels)
    part = np.bincount(shipped.labels[rows], minlength=len(whole)) / len(rows)
    assert np.abs(whole - part).max() < 0.01, (whole, part)


def test_an_own_index_is_built_kept_and_found_again(engine: LlamaEngine, shipped: EmbeddingIndex,
                                                     tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    builder = builder_for(engine, shipped, tmp_path, progress=lambda d, t: seen.append((d, t)))
    index = builder.build()
    assert len(index.labels) == len(index.vectors) == builder.prompts
    assert abs(builder.prompts - PROMPTS) <= 3  # each kind's share rounded
    assert index.model_name == "tiny-embed.gguf"
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-3)
    assert seen[0] == (0, builder.prompts) and seen[-1] == (builder.prompts, builder.prompts)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert builder.path.exists()
    # The vote works in this embedder's space: a prompt of the index finds itself.
    texts = load_index_texts(len(shipped.labels))
    row = int(sample_rows(shipped.labels, PROMPTS)[0])
    vote = EmbeddingVote(index, engine.embed)
    assert index.nearest(vote.vector(texts[row]))[1] > 0.99
    result = TaskClassifier(vote).classify("Please help me tidy up this little thing I wrote")
    assert any(e.startswith("nearest labelled prompts") for e in result.evidence)

    asked: list[int] = []
    again = builder_for(engine, shipped, tmp_path, progress=lambda d, t: asked.append(d))

    def counting(texts: list[str]) -> list[list[float]]:
        asked.append(-len(texts))
        return engine.embed(texts)

    again._embed = counting
    found = again.build()
    assert np.allclose(found.vectors, index.vectors, atol=2e-3)
    assert all(n >= 0 for n in asked), asked


def test_a_damaged_or_foreign_index_file_is_built_again(engine: LlamaEngine,
                                                         shipped: EmbeddingIndex,
                                                         tmp_path: Path) -> None:
    builder = builder_for(engine, shipped, tmp_path)
    builder.path.write_bytes(b"not an npz file")
    index = builder.build()
    assert len(index.vectors) == builder.prompts
    assert builder.path.stat().st_size > 100
    # Another embedder's probes give another file name.
    other = fingerprint([[1.0, 0.0]] * 3)
    assert other not in builder.path.name


def test_a_slow_embedder_gets_a_smaller_sample_and_keeps_it(engine: LlamaEngine,
                                                            shipped: EmbeddingIndex,
                                                            tmp_path: Path) -> None:
    # A budget no embedder meets: the sample is halved down to the fewest allowed.
    slow = builder_for(engine, shipped, tmp_path, prompts=4 * PROMPTS, budget_s=1e-9,
                       fewest=PROMPTS - 4)  # each kind's share rounded: about 4 x 48 halved twice
    assert abs(slow.prompts - 4 * PROMPTS) <= 3
    asked: list[str] = []

    def counting(texts: list[str]) -> list[list[float]]:
        asked.extend(texts)
        return engine.embed(texts)

    slow._embed = counting
    index = slow.build()
    # Cut after the first batch, which is kept: no prompt is embedded twice.
    assert len(asked) == len(set(asked)) == slow.prompts
    assert slow.seconds_per_prompt is not None and slow.seconds_per_prompt > 0
    assert len(index.labels) == slow.prompts and abs(slow.prompts - PROMPTS) <= 3
    assert slow.path.exists() and slow.path.name.endswith(f"-{slow.prompts}.npz")
    # The next start with the same setting finds it and embeds nothing.
    again = builder_for(engine, shipped, tmp_path, prompts=4 * PROMPTS)
    again._embed = lambda texts: pytest.fail("embedded again")  # type: ignore[assignment]
    assert len(again.build().labels) == slow.prompts
    # Another setting is another sample: built anew.
    other = builder_for(engine, shipped, tmp_path, prompts=2 * PROMPTS)
    assert len(other.build().labels) == other.prompts and abs(other.prompts - 2 * PROMPTS) <= 3


def test_an_embedder_too_slow_to_vote_is_told_after_one_batch(engine: LlamaEngine,
                                                                shipped: EmbeddingIndex,
                                                                tmp_path: Path) -> None:
    asked: list[int] = []

    def counting(texts: list[str]) -> list[list[float]]:
        asked.append(len(texts))
        return engine.embed(texts)

    builder = builder_for(engine, shipped, tmp_path, slowest_s=1e-9)
    builder._embed = counting
    with pytest.raises(EmbedderTooSlowError, match="s to embed a prompt"):
        builder.build()
    assert asked == [BATCH] and not builder.path.exists()


def test_prompts_are_timed_in_an_order_that_tells_the_rest(engine: LlamaEngine,
                                                           shipped: EmbeddingIndex,
                                                           tmp_path: Path) -> None:
    # The index runs from short prompts to long: timing its first rows made the
    # demo chat model look five times faster than it is (4000 prompts, not 1000).
    batches: list[list[str]] = []

    def counting(texts: list[str]) -> list[list[float]]:
        batches.append(list(texts))
        return engine.embed(texts)

    builder = builder_for(engine, shipped, tmp_path, prompts=4000, slowest_s=1e-9)
    builder._embed = counting
    with pytest.raises(EmbedderTooSlowError):
        builder.build()
    texts = load_index_texts(len(shipped.labels))
    sample = [len(texts[row]) for row in sample_rows(shipped.labels, 4000)]
    first = [len(text) for text in batches[0]]
    assert len(first) == BATCH
    assert 0.5 < np.mean(first) / np.mean(sample) < 2.0, (np.mean(first), np.mean(sample))


def test_the_sample_is_halved_until_the_embedder_can_make_it() -> None:
    assert affordable_prompts(4000, 0.01, 900) == 4000  # 40 s: all of it
    assert affordable_prompts(4000, 0.7, 900) == 1000  # the demo chat model on one thread
    assert affordable_prompts(4000, 20.0, 900) == 500  # a 4B model on a CPU: the fewest
    assert affordable_prompts(300, 20.0, 900, fewest=300) == 300


def test_a_build_stops_when_cancelled_and_keeps_nothing(engine: LlamaEngine,
                                                        shipped: EmbeddingIndex,
                                                        tmp_path: Path) -> None:
    cancelled = threading.Event()

    def progress(done: int, _total: int) -> None:
        if done >= 8:
            cancelled.set()  # the embedder was replaced mid-build

    builder = builder_for(engine, shipped, tmp_path, cancelled=cancelled, progress=progress)
    with pytest.raises(BuildCancelledError, match="stopped after 8 of"):
        builder.build()
    assert not builder.path.exists()
