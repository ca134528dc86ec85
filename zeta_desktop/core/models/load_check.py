"""A model file the app has not loaded before is loaded first in a child process.

Some malformed GGUF files make ggml abort (SIGABRT) or hang instead of
raising, and in the app's own process that would close the window with every
conversation in it. The child loads the file with llama.cpp under a timeout;
a crash or a hang there is reported with the child's last log lines, and the
app stays up. Files that passed are remembered by path, size and mtime, so
the check costs nothing the second time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import platformdirs

CHECK_TIMEOUT_S = 300.0  # a large file on a slow disk
KNOWN_GOOD_FILE = "models-known-good.json"
LOG_TAIL_LINES = 6
CHILD_COMMAND = "_load-check"  # a hidden subcommand of the app (works frozen too)
_lock = threading.Lock()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str = ""  # why not, with the child's last log lines
    seconds: float = 0.0
    cached: bool = False


def cache_dir() -> Path:
    override = os.environ.get("ZETA_CACHE_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_cache_dir("zeta-desktop", appauthor=False))


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _known_good() -> set[str]:
    try:
        data = json.loads((cache_dir() / KNOWN_GOOD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return set(data) if isinstance(data, list) else set()


def _remember(fingerprint: str) -> None:
    with _lock:
        known = _known_good() | {fingerprint}
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (KNOWN_GOOD_FILE + ".tmp")
        tmp.write_text(json.dumps(sorted(known)), encoding="utf-8")
        os.replace(tmp, folder / KNOWN_GOOD_FILE)


def child_command(path: Path, n_ctx: int, embedding: bool) -> list[str]:
    head = [sys.executable] if getattr(sys, "frozen", False) else [
        sys.executable, "-m", "zeta_desktop"]
    return [*head, CHILD_COMMAND, str(path), str(n_ctx), "1" if embedding else "0"]


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def check_model_loads(path: Path, n_ctx: int, embedding: bool,
                      timeout_s: float = CHECK_TIMEOUT_S) -> CheckResult:
    """Load `path` once in a child process, unless it passed before."""
    import time

    try:
        fingerprint = _fingerprint(path)
    except OSError as exc:
        return CheckResult(False, f"{path.name}: {exc.strerror or exc}")
    if fingerprint in _known_good():
        return CheckResult(True, cached=True)
    started = time.perf_counter()
    env = {**os.environ, "GGML_NO_BACKTRACE": "1", "PYTHONUNBUFFERED": "1"}
    # CPU only and a small context: the question is whether the file loads at all.
    command = child_command(path, min(n_ctx, 512), embedding)
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                               env=env, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        tail = _tail((exc.stderr or b"").decode("utf-8", "replace")
                     if isinstance(exc.stderr, bytes) else exc.stderr or "")
        return CheckResult(False, f"{path.name}: loading it did not finish within "
                                  f"{timeout_s:g} s (checked in a separate process)" + tail,
                           time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if child.returncode == 0:
        _remember(fingerprint)
        return CheckResult(True, seconds=seconds)
    said = child.stdout.strip().splitlines()
    if child.returncode < 0:
        reason = (f"{path.name}: llama.cpp crashed loading it ({_signal_name(child.returncode)}, "
                  "in a separate process; the app is fine)")
    else:
        reason = said[-1] if said else f"{path.name}: the load check failed ({child.returncode})"
    return CheckResult(False, reason + _tail(child.stderr), seconds)


def _tail(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()][-LOG_TAIL_LINES:]
    return ("\nlast log lines:\n" + "\n".join(lines)) if lines else ""
