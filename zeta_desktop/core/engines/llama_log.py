"""Importing llama.cpp, and reading why a model failed to load from its log.

llama.cpp says why a load failed only in its log. Its log goes through our
callback: kept while a load is under way (loads are serialised), and sent to
Python logging at debug level otherwise.
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from zeta_desktop.core.engines.base import ModelLoadError

log = logging.getLogger(__name__)

# Loads are serialised: the log capture below belongs to one load at a time.
# (Llama(verbose=False) would swap the process's stdout/stderr file
# descriptors while it loads, silencing every other thread; we load with
# verbose=True and route the output instead.)
_LOAD_LOCK = threading.Lock()
_log_lines: list[tuple[int, str]] = []  # (ggml level, text) of the load under way
_log_capture_active = False
_log_callback_ref: Any = None  # ctypes keeps only a weak hold: keep the callback alive

# ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line)
_GGML_LOG_ERROR = 4
_GGML_LOG_CONT = 5
_ERROR_PREFIX = re.compile(r"^[\w:]*\s*(error loading model:\s*)?")


def _install_log_callback(llama_cpp: Any) -> None:
    """Route llama.cpp's log through Python logging and keep lines for load errors."""
    global _log_callback_ref
    if _log_callback_ref is not None:
        return

    def _on_log(level: int, text: bytes, _user_data: Any) -> None:
        line = text.decode("utf-8", errors="replace").rstrip("\n")
        if not line.strip():
            return
        if _log_capture_active:
            if level == _GGML_LOG_CONT and _log_lines:
                level = _log_lines[-1][0]
            _log_lines.append((level, line))
        log.debug("llama.cpp: %s", line)

    _log_callback_ref = llama_cpp.llama_log_callback(_on_log)  # the C function pointer
    llama_cpp.llama_log_set(_log_callback_ref, ctypes.c_void_p(0))


class _LoadOutputRouter(io.TextIOBase):
    """Stands in for sys.stderr during a load: the loading thread's prints go to
    the debug log, every other thread's output reaches the real stream."""

    def __init__(self, original: TextIO, loading_thread: int) -> None:
        self._original = original
        self._loading_thread = loading_thread

    def write(self, text: str) -> int:
        if threading.get_ident() == self._loading_thread:
            if text.strip():
                log.debug("llama-cpp-python: %s", text.rstrip())
            return len(text)
        return self._original.write(text)

    def flush(self) -> None:
        self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_import_failure: str | None = None


def import_llama_cpp() -> Any:
    global _import_failure
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    # A failed import leaves a half-initialised package behind: report the
    # first failure every time instead of a confusing AttributeError later.
    if _import_failure is not None:
        raise ModelLoadError(_import_failure)
    try:
        import llama_cpp
    except ImportError as exc:  # a broken or missing build, not a user error
        _import_failure = (
            f"llama-cpp-python is not installed or failed to import ({exc}); "
            "run `make run` to set it up"
        )
        raise ModelLoadError(_import_failure) from exc
    _install_log_callback(llama_cpp)
    return llama_cpp


def load_failure_reason(lines: list[tuple[int, str]]) -> str:
    """The root cause of a failed load, from llama.cpp's error-level log lines."""
    # llama.cpp reports one cause at several levels; "error loading model: X" is the root.
    for _level, text in lines:
        if "error loading model:" in text:
            return text.split("error loading model:", 1)[1].strip()
    errors = [text.strip() for level, text in lines if level == _GGML_LOG_ERROR]
    for text in errors:
        if "failed to load model" not in text:
            return _ERROR_PREFIX.sub("", text, count=1)
    if errors:
        return errors[0]
    return "llama.cpp could not load the model (no reason given in its log)"


@contextmanager
def load_output_captured() -> Iterator[list[tuple[int, str]]]:
    """One load at a time: llama.cpp's log lines of this load, and the loading
    thread's prints routed to the debug log (see _LoadOutputRouter)."""
    global _log_capture_active
    with _LOAD_LOCK:
        _log_lines.clear()
        _log_capture_active = True
        original_stderr = sys.stderr
        sys.stderr = _LoadOutputRouter(original_stderr, threading.get_ident())
        try:
            yield _log_lines
        finally:
            sys.stderr = original_stderr
            _log_capture_active = False
