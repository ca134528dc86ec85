"""The core layer stays usable without Qt, and the window reaches it through one door."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import zeta_desktop.core
import zeta_desktop.ui


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


# What the window may import of the core: the door, the settings types and
# the conversation's read-only types (everything else comes through the door).
UI_MAY_IMPORT = ("zeta_desktop.core.chat.api", "zeta_desktop.core.settings",
                 "zeta_desktop.core.conversation.model")


def core_imports(path: Path) -> list[tuple[int, str]]:
    """Every `zeta_desktop.core...` module a file imports, at any depth, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.level == 0 else []
            if node.module == "zeta_desktop.core":  # `from zeta_desktop.core import x`
                names = [f"zeta_desktop.core.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.startswith("zeta_desktop.core")]
    return found


def test_the_window_reaches_the_core_only_through_the_door() -> None:
    ui = Path(zeta_desktop.ui.__file__).parent
    files = sorted(ui.rglob("*.py"))
    assert len(files) > 30 and (ui / "main_window.py") in files
    used = {name for f in files for _line, name in core_imports(f)}
    strays = [f"{f.relative_to(ui.parent)}:{line} imports {name}"
              for f in files for line, name in core_imports(f)
              if not name.startswith(UI_MAY_IMPORT)]
    assert strays == []
    assert "zeta_desktop.core.chat.api" in used  # the check reads the imports at all


def test_the_server_reaches_the_core_only_through_the_door() -> None:
    """The server is a client of the session like the window, not a second wiring."""
    server = Path(zeta_desktop.__file__).parent / "server"
    files = sorted(server.rglob("*.py"))
    assert (server / "app.py") in files
    strays = [f"{f.relative_to(server.parent)}:{line} imports {name}"
              for f in files for line, name in core_imports(f)
              if not name.startswith(("zeta_desktop.core.chat.api", "zeta_desktop.core.settings"))]
    assert strays == []
    assert any(name == "zeta_desktop.core.chat.api"
               for f in files for _line, name in core_imports(f))


def test_the_import_check_catches_a_stray(tmp_path: Path) -> None:
    stray = tmp_path / "widget.py"
    stray.write_text("def f():\n    from zeta_desktop.core.fleet.worker import ChatStats\n"
                     "from zeta_desktop.core import config\n")
    assert sorted(name for _line, name in core_imports(stray)) == [
        "zeta_desktop.core.config", "zeta_desktop.core.fleet.worker"]
