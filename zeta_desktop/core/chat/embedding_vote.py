"""The embedding vote: the embedder's say in how a prompt's kind is read.

Once a role that embeds has loaded, a thread of its own checks whether its
model is the one the shipped index of labelled prompts was embedded with
(a probe: a few texts embedded and compared). If it is, the index votes on
every prompt; if not, an index for this embedder is built from the corpus
while the embedder is idle, and votes once done. A slow embedder gets no
vote: a prompt never waits long on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from zeta_desktop.core.engines.base import EngineError
from zeta_desktop.core.fleet.fleet import Fleet
from zeta_desktop.core.routing.classifier import (
    EmbeddingVote,
    TaskClassifier,
    shipped_embedding_index,
)
from zeta_desktop.core.routing.learned import PROBE_MATCH, EmbeddingIndex
from zeta_desktop.core.routing.own_index import (
    BuildCancelledError,
    EmbedderTooSlowError,
    OwnIndexBuilder,
)

log = logging.getLogger(__name__)

# A prompt never waits long on a busy embedder: the text model answers instead.
EMBED_VOTE_TIMEOUT_S = 2.0
OWN_INDEX_TIMEOUT_S = 300.0  # one batch of the own index's prompts, on a slow embedder
VOTE_SLOWEST_S = 1.0  # an embedder slower than this a prompt delays every answer: no vote
IDLE_POLL_S = 0.05  # how often the own index's build looks whether the embedder is free


class EmbeddingVoteKeeper:
    def __init__(self, fleet: Fleet, classifier: TaskClassifier,
                 own_index_prompts: Callable[[], int]) -> None:
        self._fleet = fleet
        self._classifier = classifier
        self._own_index_prompts = own_index_prompts
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()  # stops an own index's build
        self.ready = threading.Event()  # the index votes on prompts
        self.checked = threading.Event()  # set once either way is known
        self.note = ""  # why it does not vote, when it does not

    def start_if_needed(self, role: str) -> None:
        """A role that embeds is ready: check it, unless a vote is in place or on its way."""
        if self._classifier.embedding_vote is None and self._thread is None:
            self._start(role)

    def forget(self) -> None:
        """The embedder changes: no vote until the new model has been checked."""
        self._cancel.set()  # an own index for the old model is not wanted now
        self._classifier.embedding_vote = None
        self.ready.clear()
        self.checked.clear()

    def restart(self, role: str) -> None:
        """The embedder was reloaded in place: check its model again now."""
        self.stop()
        self.forget()
        self._cancel = threading.Event()
        self._start(role)

    def stop(self, timeout: float | None = None) -> None:
        """End the check, and an own index's build, if running."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """An own index's build stops at its next batch (the app is closing)."""
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _start(self, role: str) -> None:
        self._thread = threading.Thread(target=self._attach, args=(role,),
                                        name="zeta-embed-vote", daemon=True)
        self._thread.start()

    def _attach(self, role: str) -> None:
        try:
            build = self._check(role)
        finally:
            self.checked.set()
        if build is not None:
            self._build_own_index(role, build)

    def _check(self, role: str) -> OwnIndexBuilder | None:
        """Let the embedding index vote, if the embedding role runs the index's
        model; else return what builds this embedder's own index."""
        index = shipped_embedding_index()
        if index is None:
            self.note = "embedding vote off: the index could not be read"
            return None
        try:
            probe = self._fleet.embed_on(role, list(index.probe_texts), timeout=120)
        except (EngineError, OSError, ValueError, TimeoutError) as exc:
            self.note = f"embedding vote off: the {role} failed to embed ({exc})"
            log.warning("%s", self.note)
            return None
        similarity = index.matches(probe)
        if similarity >= PROBE_MATCH:
            self._vote_with(role, index)
            return None
        model = self._fleet.model_file(role) or role
        prompts = self._own_index_prompts()
        if prompts <= 0:
            self.note = (
                f"embedding vote off: the {role}'s model ({model}) is not {index.model_name}, "
                "which the index was built with, and router.own_index_prompts is 0"
            )
            log.info("%s (probe similarity %.3f)", self.note, similarity)
            return None
        cancelled = self._cancel

        def wait_idle() -> None:
            worker = self._fleet.worker(role)
            while (worker.queue_depth or worker.in_flight) and not cancelled.is_set():
                cancelled.wait(IDLE_POLL_S)

        def progress(done: int, total: int) -> None:
            self.note = (
                f"embedding vote not yet: the {role}'s model ({model}) is not "
                f"{index.model_name}; building its own index, {done:,} of {total:,} prompts"
            )

        return OwnIndexBuilder(
            index,
            lambda texts: self._fleet.embed_on(role, list(texts), timeout=OWN_INDEX_TIMEOUT_S),
            probe, model, own_index_dir(), prompts, wait_idle, cancelled, progress,
            slowest_s=VOTE_SLOWEST_S,
        )

    def _build_own_index(self, role: str, builder: OwnIndexBuilder) -> None:
        try:
            own = builder.build()
        except BuildCancelledError as exc:
            log.info("the embedding index for %s was not finished: %s", role, exc)
            return
        except EmbedderTooSlowError as exc:
            self.note = (f"embedding vote off: the {role}'s model is too slow to vote ({exc}); "
                         "prompts are read by the text model")
            log.info("%s", self.note)
            return
        except Exception as exc:  # whatever the embedder raised: routing goes on, text only
            if builder.cancelled.is_set():  # the model went away mid-build
                return
            self.note = (f"embedding vote off: building an index for the {role}'s model "
                         f"failed ({exc})")
            log.warning("%s", self.note)
            return
        if not builder.cancelled.is_set():
            self._vote_with(role, own, own_index=True)

    def _vote_with(self, role: str, index: EmbeddingIndex, own_index: bool = False) -> None:
        self._classifier.embedding_vote = EmbeddingVote(
            index,
            lambda texts: self._fleet.embed_on(role, list(texts), timeout=EMBED_VOTE_TIMEOUT_S),
        )
        self.note = ""
        self.ready.set()
        log.info("the embedding index votes on prompts (embeddings from %s%s)", role,
                 f", its own index of {len(index.labels)} prompts" if own_index else "")


def own_index_dir() -> Path:
    """Where indexes built for the user's own embedders are kept: derived
    data, so the cache directory (found again, or built again, next start)."""
    from zeta_desktop.core.models.load_check import cache_dir

    return cache_dir() / "classifier"
