"""The core layer stays usable without Qt."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import zeta_desktop.core


def test_core_imports_no_qt_and_no_llama_cpp_eagerly() -> None:
    modules = [
        m.name
        for m in pkgutil.walk_packages(zeta_desktop.core.__path__, "zeta_desktop.core.")
    ]
    assert "zeta_desktop.core.fleet.worker" in modules
    assert "zeta_desktop.core.store.history" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'pyqtgraph', 'llama_cpp', 'pynvml'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
