"""What the installed llama.cpp build can do: its GPU backend, and whether it offloads.

`make setup` runs `python -m zeta_desktop.core.engines.build_info --expect BACKEND`
after installing, and rebuilds llama-cpp-python when the installed build is not
the one asked for (pip's wheel cache is keyed by version, not by CMAKE_ARGS, so
a CPU wheel would otherwise be reused for a GPU build). The app reads the same
facts to keep layers on the CPU when the build cannot offload.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# ggml's backend registry names, lower-cased, to the name `make setup GPU=` takes.
GPU_BACKENDS = {"cuda": "cuda", "vulkan": "vulkan", "metal": "metal", "hip": "hip",
                "sycl": "sycl", "opencl": "opencl", "cann": "cann", "musa": "musa"}
REBUILD_HINT = "make setup GPU=cuda"  # or GPU=vulkan; on macOS the default build is Metal

# llama.cpp's load_tensors, once per load and only on a build that can offload:
# "load_tensors: offloaded 25/25 layers to GPU" (the output layer counts as one).
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")


@dataclass(frozen=True)
class BuildInfo:
    backend: str  # "cuda", "vulkan", "metal", ... or "cpu"
    can_offload: bool  # llama_supports_gpu_offload()
    registered: tuple[str, ...]  # ggml's registered backends, as named there
    system_info: str  # llama_print_system_info()
    error: str = ""  # llama-cpp-python failed to import: nothing else is known

    def describe(self) -> str:
        """One line for the log, the self-test and `zeta-desktop models`."""
        if self.error:
            return f"llama.cpp build: unknown ({self.error})"
        if self.can_offload:
            return f"llama.cpp build: {self.backend.upper()}, can offload layers to the GPU"
        return (f"llama.cpp build: {self.backend.upper()}, cannot offload to a GPU: every layer "
                f"runs on the CPU; `{REBUILD_HINT}` builds one that can")

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "can_offload": self.can_offload,
                "registered": list(self.registered), "error": self.error}


def backend_of(registered: tuple[str, ...], can_offload: bool) -> str:
    """The build's GPU backend from ggml's registered backend names ("CPU", "CUDA", ...)."""
    for name in registered:
        backend = GPU_BACKENDS.get(name.lower())
        if backend is not None:
            return backend
    return "gpu" if can_offload else "cpu"  # offloads through a backend not named above


def _registered_backends(llama_cpp: Any) -> tuple[str, ...]:
    """ggml_backend_reg_* are exported by libggml but not bound by llama-cpp-python."""
    binding = getattr(llama_cpp, "ggml_backend_reg_count", None)
    try:
        if binding is not None:  # a later llama-cpp-python may bind them
            return tuple(llama_cpp.ggml_backend_reg_name(llama_cpp.ggml_backend_reg_get(i))
                         .decode() for i in range(binding()))
        from llama_cpp._ggml import libggml

        libggml.ggml_backend_reg_count.restype = ctypes.c_size_t
        libggml.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
        libggml.ggml_backend_reg_get.restype = ctypes.c_void_p
        libggml.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
        libggml.ggml_backend_reg_name.restype = ctypes.c_char_p
        return tuple(libggml.ggml_backend_reg_name(libggml.ggml_backend_reg_get(i)).decode()
                     for i in range(libggml.ggml_backend_reg_count()))
    except (ImportError, AttributeError, OSError):
        return ()


@functools.cache
def build_info() -> BuildInfo:
    """The installed build's facts (read once: a build does not change under a process)."""
    from zeta_desktop.core.engines.base import ModelLoadError
    from zeta_desktop.core.engines.llama_log import import_llama_cpp

    try:
        llama_cpp = import_llama_cpp()
    except ModelLoadError as exc:
        return BuildInfo("cpu", False, (), "", str(exc))
    can_offload = bool(llama_cpp.llama_supports_gpu_offload())
    registered = _registered_backends(llama_cpp)
    system = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()
    info = BuildInfo(backend_of(registered, can_offload), can_offload, registered, system)
    log.info("%s (ggml backends: %s)", info.describe(), ", ".join(registered) or "?")
    return info


def can_offload() -> bool:
    return build_info().can_offload


def offloaded_layers(log_lines: list[tuple[int, str]]) -> tuple[int, int] | None:
    """(offloaded, of) as llama.cpp's load log says; None: it said nothing (a CPU build)."""
    for _level, line in log_lines:
        match = _OFFLOADED.search(line)
        if match is not None:
            return int(match.group(1)), int(match.group(2))
    return None


def matches(info: BuildInfo, expected: str) -> bool:
    """Whether the installed build is the one `make setup` was asked for."""
    if info.error:
        return False
    if expected == "cpu":
        return not info.can_offload
    return info.can_offload and info.backend == expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zeta_desktop.core.engines.build_info",
        description="Say what the installed llama.cpp build can do.")
    parser.add_argument("--expect", metavar="BACKEND",
                        help="exit 1 unless the build is this one (cuda, vulkan, metal, cpu)")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    info = build_info()
    if args.json:
        print(json.dumps(info.as_dict()))
    else:
        print(f"zeta: {info.describe()} (ggml backends: {', '.join(info.registered) or '?'})")
    if args.expect and not matches(info, args.expect.lower()):
        print(f"zeta: the installed llama.cpp build is {info.backend.upper()}, "
              f"not the {args.expect.upper()} build asked for", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
