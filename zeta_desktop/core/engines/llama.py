"""The llama-cpp-python engine. `llama_cpp` is imported lazily, on first load."""

from __future__ import annotations

import ctypes
import inspect
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zeta_desktop.core.engines.base import (
    ChatMessage,
    EngineError,
    LoadSettings,
    ModelLoadError,
    PromptTooLongError,
)
from zeta_desktop.core.engines.build_info import offloaded_layers
from zeta_desktop.core.engines.kv_store import KvStats, KvStore, fingerprint
from zeta_desktop.core.engines.llama_log import (
    import_llama_cpp,
    load_failure_reason,
    load_output_captured,
)
from zeta_desktop.core.engines.stop_text import StopText
from zeta_desktop.core.models.files import ModelFileError, check_model_file

# create_completion's sampling settings that Llama.generate takes under the same name.
_SAMPLING = (
    "top_k", "top_p", "min_p", "typical_p", "repeat_penalty", "frequency_penalty",
    "presence_penalty", "tfs_z", "mirostat_mode", "mirostat_tau", "mirostat_eta",
    "logits_processor", "stopping_criteria", "grammar",
)


class _CompletionRequest:
    """Stands in for the Llama while its chat handler runs, keeping the
    completion request the handler makes instead of running it."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.request: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_completion(self, **request: Any) -> Iterator[Any]:
        self.request = request
        return iter(())


# llama.cpp's own account of what a load allocated, from its log:
# "CPU_Mapped model buffer size = 92.10 MiB", "CPU KV buffer size = 45.00 MiB",
# "CPU compute buffer size = 99.38 MiB", "CPU  output buffer size = 0.19 MiB".
_BUFFER_LINE = re.compile(
    r"(?P<device>\S+)\s+(?P<kind>model|KV|compute|output) buffer size\s*=\s*(?P<mib>[\d.]+) MiB")


def allocated_bytes(log_lines: list[tuple[int, str]]) -> dict[str, int]:
    """Bytes per kind (model, KV, compute, output) that llama.cpp said it allocated."""
    taken: dict[str, int] = {}
    for _level, line in log_lines:
        match = _BUFFER_LINE.search(line)
        if match is not None:
            kind = match.group("kind")
            taken[kind] = taken.get(kind, 0) + int(float(match.group("mib")) * 2**20)
    return taken


def _too_long(prompt_tokens: int, n_ctx: int) -> str:
    return (
        f"the prompt is {prompt_tokens} tokens but this model's context holds {n_ctx}; "
        "shorten it, start a new chat, or raise n_ctx"
    )


def default_thread_count() -> int:
    # Three models share the machine; half the cores each leaves room for
    # the GUI and lets two roles decode at once without thrashing.
    return max(1, (os.cpu_count() or 2) // 2)


class LlamaEngine:
    """A loaded `llama_cpp.Llama`. Only the owning worker thread may call it."""

    counts_tokens = True

    def __init__(self, llm: Any, path: Path, settings: LoadSettings) -> None:
        self._llm = llm
        self.path = path
        self.settings = settings
        self.allocated: dict[str, int] = {}  # what llama.cpp allocated, by kind (its log)
        # (layers on the GPU, of) as llama.cpp's load said; None: it said nothing (a CPU build)
        self.offloaded: tuple[int, int] | None = None
        self._llama_cpp = import_llama_cpp()
        self._piece_buffer = ctypes.create_string_buffer(64)
        self.last_prompt_tokens = 0
        self.last_answer_tokens = 0
        self.last_hit_limit = False
        # Of the last prompt, the tokens found in the cache (not read again),
        # and the seconds reading the rest took (None: not measured here).
        self.last_cached_tokens = 0
        self.last_read_s: float | None = None
        self._load_seed = int(llm._seed)  # restored after an answer that named its own
        # Saved states of conversations this model left (None: not kept).
        self.kv_store: KvStore | None = None
        model = llm._model.model
        # Recurrent and hybrid models cannot drop the end of their cache and
        # keep its start, so a prompt is always read from its beginning.
        self._partial_cache_reuse = not (
            self._llama_cpp.llama_model_is_recurrent(model)
            or self._llama_cpp.llama_model_is_hybrid(model)
        )
        # A decoder reads a prompt token by token into its cache; an encoder
        # has no such reading to measure. A BERT embedder says it has a decoder
        # (llama.cpp keeps "encoder" for T5), but its context has no KV memory.
        self._reads_prompts = bool(self._llama_cpp.llama_model_has_decoder(model)
                                   and not self._llama_cpp.llama_model_has_encoder(model)
                                   and getattr(llm._ctx, "memory", None) is not None)

    @classmethod
    def load(cls, path: Path, settings: LoadSettings) -> LlamaEngine:
        try:
            check_model_file(path)
        except ModelFileError as exc:
            raise ModelLoadError(str(exc)) from exc
        llama_cpp = import_llama_cpp()
        kwargs: dict[str, Any] = {
            "model_path": str(path),
            "n_ctx": settings.n_ctx,
            "n_gpu_layers": settings.n_gpu_layers,
            "n_threads": settings.n_threads or default_thread_count(),
            # llama-cpp-python defaults prompt processing to every core; with
            # three models at once that oversubscribes the CPU and they stall
            # each other. Same count as decoding.
            "n_threads_batch": settings.n_threads or default_thread_count(),
            "verbose": True,  # output is routed, see llama_log
        }
        if settings.embedding:
            kwargs["embedding"] = True
            # Without a pooling type, embed() returns one vector per token.
            kwargs["pooling_type"] = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        with load_output_captured() as log_lines:
            try:
                llm = llama_cpp.Llama(**kwargs)
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelLoadError(f"{path.name}: {load_failure_reason(log_lines)}") from exc
        llm.verbose = False  # no per-request prints from here on
        engine = cls(llm, path, settings)
        engine.allocated = allocated_bytes(log_lines)
        engine.offloaded = offloaded_layers(log_lines)
        return engine

    @property
    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    @property
    def cached_tokens(self) -> int:
        """How many tokens the cache holds now: the last prompt and its answer."""
        return int(self._llm.n_tokens)

    def measure_reading(self, text: str) -> tuple[int, float] | None:
        """Read `text` as a prompt and forget it: (its tokens, the seconds it
        took), the model's reading speed before any answer has measured it.
        None for a model that reads no prompts (an encoder)."""
        if not self._reads_prompts:
            return None
        llm = self._llm
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        seconds = time.perf_counter() - started
        llm.reset()  # the next prompt is read from the start, as after a fresh load
        return len(tokens), seconds

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        cancel: threading.Event,
        sampling: Mapping[str, float] | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Iterator[str]:
        # The model's own chat handler formats the prompt and picks the stop
        # rules and sampling; the tokens are then pulled here rather than
        # through create_completion, whose per-token bookkeeping re-decodes
        # the whole answer so far. That Python work holds the GIL, and with
        # three models doing it the window waited for the GIL (make bench-ui,
        # window never shown: p99 stall 1.7-2.8 -> 1.0 ms).
        request = self._chat_request(messages, max_tokens=max_tokens, temperature=temperature,
                                     sampling=sampling, stop=stop)
        yield from self._generate(request, max_tokens, cancel, seed)

    def stream_completion(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        cancel: threading.Event,
        sampling: Mapping[str, float] | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Iterator[str]:
        """Raw text on, no chat template (the OpenAI API's /v1/completions),
        sampled with create_completion's own defaults."""
        defaults = {name: parameter.default for name, parameter in
                    inspect.signature(type(self._llm).create_completion).parameters.items()
                    if name in _SAMPLING and parameter.default is not None}
        request: dict[str, Any] = {
            **defaults,
            **{k: (int(v) if k == "top_k" else v) for k, v in (sampling or {}).items()},
            "prompt": self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True),
            "temperature": temperature, "stop": list(stop)}
        yield from self._generate(request, max_tokens, cancel, seed)

    def _generate(self, request: dict[str, Any], max_tokens: int, cancel: threading.Event,
                  seed: int | None) -> Iterator[str]:
        """Read the request's prompt tokens, then sample with its settings."""
        prompt: list[int] = request["prompt"]
        self.last_prompt_tokens = len(prompt)  # as read: the template's tokens and BOS too
        n_ctx = self.n_ctx
        if len(prompt) >= n_ctx:
            raise PromptTooLongError(_too_long(len(prompt), n_ctx))
        budget = min(max_tokens, n_ctx - len(prompt))
        if not self._prefill(prompt, cancel):
            return
        text = StopText(request.get("stop") or [])
        # generate's sampler draws from the Llama's seed: this answer's, or the
        # one it was loaded with (random unless set) for every other answer.
        self._llm.set_seed(seed if seed is not None else self._load_seed)
        tokens = self._llm.generate(
            prompt,
            temp=request["temperature"],
            **{name: request[name] for name in _SAMPLING if name in request},
        )
        vocab = self._llm._model.vocab
        is_end = self._llama_cpp.llama_vocab_is_eog
        # The answer's tokens as sampled (a piece may hold a part of one, or
        # text held back for a stop string), and whether the budget ended it.
        self.last_answer_tokens, self.last_hit_limit = 0, False
        try:
            for _ in range(budget):
                # Check before pulling the next token so Stop costs at most one.
                if cancel.is_set():
                    return
                try:
                    token = next(tokens)
                except StopIteration:
                    break
                except ValueError as exc:
                    raise self._translate(exc) from exc
                if is_end(vocab, token):
                    break
                self.last_answer_tokens += 1
                piece = text.feed(self._piece(token))
                if piece:
                    yield piece
                if text.stopped:
                    return
            else:
                self.last_hit_limit = True
            tail = text.finish()
            if tail:
                yield tail
        finally:
            # Closing the generator ends the decode loop and leaves the Llama
            # usable for the next job.
            tokens.close()

    def _prefill(self, prompt: list[int], cancel: threading.Event) -> bool:
        """Read the prompt a batch at a time, hearing Stop between batches;
        False if stopped.

        Left to Llama.generate, the whole prompt is one call that Stop cannot
        interrupt (a long prompt on a big model: many seconds). This reads it
        as generate would, in the same batches from the same cached start (the
        conversation so far), so generate finds it all in its cache and
        samples at once, from the same numbers.
        """
        llm = self._llm
        self.last_cached_tokens, self.last_read_s = 0, None
        if not self._partial_cache_reuse:
            return True  # generate re-reads a recurrent model's prompt whole anyway
        cached = llm.input_ids[: min(llm.n_tokens, len(prompt))]
        same = cached == np.asarray(prompt[: len(cached)])
        kept = len(cached) if same.all() else int(np.argmin(same))
        if self.kv_store is not None:
            kept = self._restore_state(prompt, kept)
        if kept == len(prompt):
            if llm.n_tokens == kept:
                # Asked again: generate samples from what is there.
                self.last_cached_tokens, self.last_read_s = kept, 0.0
                return True
            kept -= 1  # the last token is read again for its logits, as generate does
        llm.n_tokens = kept  # eval drops what the cache holds past this
        self.last_cached_tokens = kept
        started = time.perf_counter()
        for start in range(kept, len(prompt), llm.n_batch):
            if cancel.is_set():
                return False
            llm.eval(prompt[start : start + llm.n_batch])
        self.last_read_s = time.perf_counter() - started
        return True

    def keep_states(self, ram_budget: int, disk_budget: int, disk_dir: Path | None) -> None:
        """Save the KV state of a conversation this model leaves, to restore it
        when that conversation comes back (budgets in bytes; 0 RAM: off)."""
        if ram_budget <= 0 or not self._partial_cache_reuse:
            self.kv_store = None
            return
        self.kv_store = KvStore(fingerprint(self.path, self.settings), ram_budget,
                                disk_budget, disk_dir)

    @property
    def kv_stats(self) -> KvStats | None:
        return self.kv_store.stats if self.kv_store is not None else None

    def _restore_state(self, prompt: list[int], kept: int) -> int:
        """Save what the cache holds if this prompt leaves it, then load the
        saved state holding the longest start of the prompt; the tokens now
        held. A state that does not load is dropped and the prompt read whole."""
        llm, store = self._llm, self.kv_store
        assert store is not None
        if llm.n_tokens > kept:
            store.save(llm.input_ids[: llm.n_tokens].tolist(), llm.save_state())
        found = store.take(prompt, kept)
        if found is None:
            return kept
        held, state = found
        try:
            llm.load_state(state)
        except Exception as exc:  # a bad state is dropped, never raised
            store.drop(prompt[:held], str(exc))
            llm.n_tokens = 0
            return 0
        return held

    def _chat_request(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float,
        sampling: Mapping[str, float] | None = None, stop: Sequence[str] = (),
    ) -> dict[str, Any]:
        """What the model's chat handler would ask create_completion for: the
        prompt tokens, stop strings and sampling settings of this chat format."""
        capture = _CompletionRequest(self._llm)
        try:
            # Called on the stand-in, so every default is create_chat_completion's own.
            type(self._llm).create_chat_completion(
                capture,
                messages=list(messages),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stop=list(stop) or None,  # the chat format adds its own after these
                **{k: (int(v) if k == "top_k" else v) for k, v in (sampling or {}).items()},
            )
        except ValueError as exc:  # a template that rejects the conversation
            raise EngineError(f"{self.path.name}: chat template: {exc}") from exc
        if capture.request is None:
            raise EngineError(f"{self.path.name}: its chat format made no completion request")
        return capture.request

    def _piece(self, token: int) -> bytes:
        size = self._llama_cpp.llama_token_to_piece(
            self._llm._model.vocab, token, self._piece_buffer, len(self._piece_buffer), 0, False
        )
        if size < 0:  # a longer piece than the buffer: -size is what it needs
            self._piece_buffer = ctypes.create_string_buffer(-size)
            return self._piece(token)
        return self._piece_buffer.raw[:size]

    def _translate(self, exc: ValueError) -> EngineError:
        text = str(exc)
        if "exceed context window" in text:
            numbers = re.findall(r"\d+", text)
            if len(numbers) >= 2:
                return PromptTooLongError(_too_long(int(numbers[0]), int(numbers[1])))
            return PromptTooLongError(text)
        return EngineError(text)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self.settings.embedding:
            raise EngineError("this model was not loaded for embeddings")
        try:
            vectors = self._llm.embed(list(texts), normalize=True)
        except ValueError as exc:
            raise self._translate(exc) from exc
        return [list(map(float, vector)) for vector in vectors]

    def close(self) -> None:
        if self.kv_store is not None:
            self.kv_store.close()
        self._llm.close()
