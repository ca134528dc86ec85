"""Saved KV states of one local model, so a conversation that comes back after
another one is not read again from its start.

A state is keyed by the exact token ids it holds. It is kept in RAM up to a
byte budget, spilled to disk up to another, and evicted least recently used.
Every state carries the fingerprint of the model file and the load settings
that shape its KV; a state of another fingerprint is never used.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_SUFFIX = ".kvstate.npz"


def fingerprint(path: Path, settings: object) -> str:
    """The model file (path, size, mtime) and its load settings, hashed."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{settings!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class KvStats:
    hits: int = 0
    misses: int = 0
    ram_bytes: int = 0
    disk_bytes: int = 0
    states: int = 0


def _state_bytes(state: Any) -> int:
    return int(len(state.llama_state) + state.scores.nbytes + state.input_ids.nbytes)


def _digest(*parts: bytes) -> np.ndarray:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part)
    return np.frombuffer(hasher.digest(), dtype=np.uint8)


def _key(tokens: Sequence[int]) -> bytes:
    return np.asarray(tokens, dtype=np.intc).tobytes()


class KvStore:
    """LRU store of `llama_cpp.LlamaState`s of one model and fingerprint."""

    def __init__(self, model_fingerprint: str, ram_budget: int, disk_budget: int,
                 disk_dir: Path | None) -> None:
        self.fingerprint = model_fingerprint
        self.ram_budget = ram_budget
        self.disk_budget = disk_budget
        self.hits = 0
        self.misses = 0
        self._ram: OrderedDict[bytes, Any] = OrderedDict()
        self._ram_bytes = 0
        self._disk: OrderedDict[bytes, tuple[Path, int]] = OrderedDict()
        self._disk_total = 0
        self._disk_dir = disk_dir if disk_budget > 0 else None
        self._disk_full = False
        if self._disk_dir is not None:
            self._drop_stale_files()

    # -- what is kept -----------------------------------------------------

    @property
    def stats(self) -> KvStats:
        # Plain counters: another thread (the role card's) may read them mid-save.
        return KvStats(self.hits, self.misses, self._ram_bytes, self._disk_total,
                       len(self._ram) + len(self._disk))

    def save(self, tokens: Sequence[int], state: Any) -> None:
        """Keep `state`, which holds exactly `tokens`; too big for both budgets: not kept."""
        key = _key(tokens)
        self._forget(key)
        size = _state_bytes(state)
        if size <= self.ram_budget:
            while self._ram and self._ram_bytes + size > self.ram_budget:
                old_key, old = self._ram.popitem(last=False)
                self._ram_bytes -= _state_bytes(old)
                self._spill(old_key, old)
            self._ram[key] = state
            self._ram_bytes += size
        else:
            self._spill(key, state)

    def take(self, prompt: Sequence[int], at_least: int) -> tuple[int, Any] | None:
        """The state whose tokens are the longest exact prefix of `prompt`,
        longer than `at_least` and shorter than the prompt (its last token is
        read again for its logits); None if there is none. A spilled state
        whose file is bad is dropped and the next longest tried."""
        prompt_key = _key(prompt)
        width = np.dtype(np.intc).itemsize
        while True:
            fits = [key for key in (*self._ram, *self._disk)
                    if at_least < len(key) // width < len(prompt) and prompt_key.startswith(key)]
            if not fits:
                self.misses += 1
                return None
            best = max(fits, key=len)
            state = self._ram.get(best)
            if state is not None:
                self._ram.move_to_end(best)
            else:
                state = self._read(best)
                if state is None:
                    continue
            self.hits += 1
            return len(best) // width, state

    def drop(self, tokens: Sequence[int], reason: str) -> None:
        """Forget a state that did not load; said once in the log."""
        log.warning("dropped a saved KV state of %d tokens: %s", len(tokens), reason)
        self._forget(_key(tokens))

    def _forget(self, key: bytes) -> None:
        state = self._ram.pop(key, None)
        if state is not None:
            self._ram_bytes -= _state_bytes(state)
        entry = self._disk.pop(key, None)
        if entry is not None:
            self._disk_total -= entry[1]
            entry[0].unlink(missing_ok=True)

    def close(self) -> None:
        """Forget every state; its spill folder is removed."""
        self._ram.clear()
        self._ram_bytes = 0
        for file, _ in self._disk.values():
            file.unlink(missing_ok=True)
        self._disk.clear()
        self._disk_total = 0
        if self._disk_dir is not None:
            with contextlib.suppress(OSError):  # not empty (not ours) or gone: left
                self._disk_dir.rmdir()

    # -- disk -------------------------------------------------------------

    def _file(self, key: bytes) -> Path:
        assert self._disk_dir is not None
        name = hashlib.sha256(key).hexdigest()[:32]
        return self._disk_dir / f"{self.fingerprint}-{name}{_SUFFIX}"

    def _drop_stale_files(self) -> None:
        assert self._disk_dir is not None
        try:
            for file in self._disk_dir.glob(f"*{_SUFFIX}"):  # none if it is not there
                # Another fingerprint's states (or an earlier run's, whose index is gone).
                file.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("KV state directory %s unusable, not spilling: %s", self._disk_dir, exc)
            self._disk_dir = None

    def _spill(self, key: bytes, state: Any) -> None:
        if self._disk_dir is None or self._disk_full:
            return
        file = self._file(key)
        body = bytes(state.llama_state)
        input_ids, scores = np.asarray(state.input_ids), np.asarray(state.scores)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)  # made at the first spill
            with file.open("wb") as out:
                np.savez(out, input_ids=input_ids, scores=scores,
                         llama_state=np.frombuffer(body, dtype=np.uint8),
                         meta=np.array([state.n_tokens, state.llama_state_size, state.seed],
                                       dtype=np.int64),
                         digest=_digest(body, input_ids.tobytes(), scores.tobytes()),
                         fingerprint=np.frombuffer(self.fingerprint.encode(), dtype=np.uint8))
            size = file.stat().st_size
        except OSError as exc:
            file.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                self._disk_full = True
                log.warning("disk full: KV states are no longer spilled to %s", self._disk_dir)
            else:
                log.warning("could not spill a KV state to %s: %s", file, exc)
            return
        if size > self.disk_budget:
            file.unlink(missing_ok=True)
            return
        self._disk[key] = (file, size)
        self._disk_total += size
        while self._disk_total > self.disk_budget:
            _, (old, old_size) = self._disk.popitem(last=False)
            self._disk_total -= old_size
            old.unlink(missing_ok=True)

    def _read(self, key: bytes) -> Any | None:
        """The spilled state, checked; None (and dropped) if the file is bad."""
        from llama_cpp import LlamaState

        file, _ = self._disk[key]
        try:
            with np.load(file, allow_pickle=False) as data:
                body = data["llama_state"].tobytes()
                n_tokens, state_size, seed = (int(x) for x in data["meta"])
                if (data["fingerprint"].tobytes().decode() != self.fingerprint
                        or _digest(body, data["input_ids"].tobytes(), data["scores"].tobytes())
                        .tobytes() != data["digest"].tobytes()
                        or len(body) != state_size
                        or _key(data["input_ids"][:n_tokens]) != key):
                    raise ValueError("its contents do not match")
                state = LlamaState(input_ids=data["input_ids"].copy(),
                                   scores=data["scores"].copy(), n_tokens=n_tokens,
                                   llama_state=body, llama_state_size=state_size, seed=seed)
        except Exception as exc:  # a bad state is dropped, never raised
            log.warning("dropped KV state file %s: %s", file.name, exc)
            self._forget(key)
            return None
        self._disk.move_to_end(key)
        return state
