"""What the installed llama.cpp build can do, as `make setup` and the app read it."""

from __future__ import annotations

import json
import subprocess
import sys

from zeta_desktop.core.engines.build_info import (
    BuildInfo,
    backend_of,
    build_info,
    matches,
    offloaded_layers,
)
from zeta_desktop.core.engines.llama_log import import_llama_cpp


def test_the_build_is_read_from_the_installed_library() -> None:
    llama_cpp = import_llama_cpp()
    info = build_info()
    assert not info.error
    assert info.can_offload == bool(llama_cpp.llama_supports_gpu_offload())
    assert "CPU" in info.registered  # ggml registers its CPU backend in every build
    assert (info.backend == "cpu") == (not info.can_offload)
    assert info.system_info  # llama_print_system_info: "CPU : SSE3 = 1 | ..."


def test_backend_names_map_to_what_make_setup_takes() -> None:
    assert backend_of(("CPU",), False) == "cpu"
    assert backend_of(("CUDA", "CPU"), True) == "cuda"
    assert backend_of(("CPU", "Vulkan"), True) == "vulkan"
    assert backend_of(("Metal", "BLAS", "CPU"), True) == "metal"
    assert backend_of(("CPU", "SomethingNew"), True) == "gpu"


def test_a_cpu_build_says_it_cannot_offload_and_how_to_get_one_that_can() -> None:
    cpu = BuildInfo("cpu", False, ("CPU",), "")
    assert "cannot offload" in cpu.describe() and "make setup GPU=cuda" in cpu.describe()
    assert matches(cpu, "cpu") and not matches(cpu, "cuda")
    cuda = BuildInfo("cuda", True, ("CUDA", "CPU"), "")
    assert "can offload" in cuda.describe()
    assert matches(cuda, "cuda") and not matches(cuda, "cpu") and not matches(cuda, "vulkan")
    broken = BuildInfo("cpu", False, (), "", "libllama.so: cannot open shared object file")
    assert "unknown" in broken.describe() and not matches(broken, "cpu")


def test_the_load_log_says_how_many_layers_went_to_the_gpu() -> None:
    log = [(2, "load_tensors: loading model tensors, this can take a while..."),
           (2, "load_tensors: offloading 24 repeating layers to GPU"),
           (2, "load_tensors: offloaded 25/25 layers to GPU")]
    assert offloaded_layers(log) == (25, 25)
    assert offloaded_layers([(2, "load_tensors:   CPU_Mapped model buffer size = 4.0 MiB")]) \
        is None


def test_make_setup_check_exits_1_when_the_build_is_not_the_one_asked_for() -> None:
    module = [sys.executable, "-m", "zeta_desktop.core.engines.build_info"]
    shown = subprocess.run([*module, "--json"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0
    backend = json.loads(shown.stdout)["backend"]
    assert backend == build_info().backend
    same = subprocess.run([*module, "--expect", backend], capture_output=True, text=True,
                          timeout=120)
    assert same.returncode == 0 and "llama.cpp build:" in same.stdout
    other = "vulkan" if backend != "vulkan" else "cuda"
    wrong = subprocess.run([*module, "--expect", other], capture_output=True, text=True,
                           timeout=120)
    assert wrong.returncode == 1
    assert f"not the {other.upper()} build asked for" in wrong.stderr
