"""Say clearly what is missing before Qt aborts on a machine that cannot show a window.

Qt's xcb platform plugin calls qFatal (the process aborts) when its system
libraries are missing or there is no display. We check first, without
loading the plugin, and print what to install or set instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Debian/Ubuntu package for each library Qt 6's xcb plugin needs and a
# minimal system may lack.
_DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-util.so.1": "libxcb-util1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def _qt_dir() -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    return Path(PySide6.__file__).parent / "Qt"


def missing_xcb_libraries() -> list[str]:
    """Shared libraries the xcb platform plugin needs but the loader cannot find."""
    qt = _qt_dir()
    ldd = shutil.which("ldd")
    if qt is None or ldd is None:
        return []
    targets = [
        qt / "plugins" / "platforms" / "libqxcb.so",
        *sorted((qt / "lib").glob("libQt6XcbQpa.so*")),
    ]
    missing: set[str] = set()
    for target in targets:
        if not target.exists():
            continue
        try:
            out = subprocess.run(
                [ldd, str(target)], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.splitlines():
            if "not found" in line:
                missing.add(line.split("=>")[0].strip())
    return sorted(missing)


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """A message naming what to install or set, or None when a window can open."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform.startswith(("offscreen", "minimal")):
        return None
    if platform.startswith("wayland") or (not platform and env.get("WAYLAND_DISPLAY")):
        return None
    if not env.get("DISPLAY"):
        return (
            "No display to open a window on: DISPLAY is not set.\n"
            "  - On a desktop, run from a terminal inside your session.\n"
            "  - On a server, start a virtual display: apt-get install xvfb && "
            "Xvfb :99 & export DISPLAY=:99\n"
            "  - Or run without a window: QT_QPA_PLATFORM=offscreen zeta-desktop --self-test"
        )
    missing = missing_xcb_libraries()
    if missing:
        packages = sorted({_DEBIAN_PACKAGES.get(lib, lib) for lib in missing})
        return (
            "Qt's X11 (xcb) platform cannot start: these system libraries are missing: "
            f"{', '.join(missing)}.\n"
            f"  On Debian/Ubuntu: sudo apt-get install {' '.join(packages)}\n"
            "  Or run without a window: QT_QPA_PLATFORM=offscreen zeta-desktop --self-test"
        )
    return None
