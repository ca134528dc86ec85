from __future__ import annotations

import sys

import pytest

from zeta_desktop.ui.platform_check import display_problem, missing_xcb_libraries


def test_offscreen_needs_nothing() -> None:
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 check is Linux-only")
def test_no_display_names_what_to_do() -> None:
    message = display_problem({})
    assert message is not None
    assert "DISPLAY is not set" in message and "Xvfb" in message and "offscreen" in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 check is Linux-only")
def test_missing_libraries_are_named_with_packages() -> None:
    missing = missing_xcb_libraries()
    message = display_problem({"DISPLAY": ":99"})
    if missing:
        assert message is not None and "apt-get install" in message
        assert all(lib in message for lib in missing)
    else:
        assert message is None
