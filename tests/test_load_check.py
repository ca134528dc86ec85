"""A model file that makes ggml abort, or hang, is found out in a child
process: the app stays up and the role says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from session_events import TIMEOUT, events_of, make_session

from zeta_desktop.core.fleet.worker import WorkerState
from zeta_desktop.core.models import load_check
from zeta_desktop.core.models.load_check import check_model_loads
from zeta_desktop.core.settings import AppConfig, RoleConfig

pytestmark = pytest.mark.model


def copy_of(model: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(model, folder / name))


def test_a_file_that_aborts_or_hangs_in_the_check_leaves_the_app_up(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aborts = copy_of(tiny_model, tmp_path / "m", "aborts.gguf")
    hangs = copy_of(tiny_model, tmp_path / "m", "hangs.gguf")
    good = copy_of(tiny_model, tmp_path / "m", "good.gguf")
    # What a malformed file does to ggml, done on purpose in the child only.
    monkeypatch.setenv("ZETA_LOAD_CHECK_HOOK", "abort:aborts.gguf")
    monkeypatch.setattr(load_check, "CHECK_TIMEOUT_S", 600.0)
    result = check_model_loads(aborts, 512, embedding=False)
    assert not result.ok
    assert "llama.cpp crashed loading it (SIGABRT, in a separate process" in result.reason
    monkeypatch.setenv("ZETA_LOAD_CHECK_HOOK", "hang:hangs.gguf")
    hung = check_model_loads(hangs, 512, embedding=False, timeout_s=3)
    assert not hung.ok and "did not finish within 3 s" in hung.reason

    monkeypatch.setenv("ZETA_LOAD_CHECK_HOOK", "abort:aborts.gguf")
    config = AppConfig(roles={
        "coder": RoleConfig(model_path=str(good), n_ctx=512, n_threads=1, max_tokens=8),
        "reasoner": RoleConfig(model_path=str(aborts), n_ctx=512, n_threads=1, max_tokens=8),
    })
    config.router.semantic = False
    session = make_session(config)
    try:
        reasoner = session.fleet.worker("reasoner")
        assert reasoner.state is WorkerState.UNAVAILABLE
        assert "crashed loading it (SIGABRT" in reasoner.detail
        turn = session.send("def add(a, b): return a + b  # explain")
        events_of(session).wait_done(turn)
        assert turn in events_of(session).finished
    finally:
        session.shutdown(TIMEOUT)


def test_a_file_that_passed_is_not_checked_again_until_it_changes(
        tiny_model: Path, tmp_path: Path) -> None:
    model = copy_of(tiny_model, tmp_path, "checked.gguf")
    first = check_model_loads(model, 512, embedding=False)
    assert first.ok and not first.cached and first.seconds > 0
    again = check_model_loads(model, 512, embedding=False)
    assert again.ok and again.cached
    with model.open("ab") as changed:
        changed.write(b"\0" * 32)  # padding after the data: still loads, but is new
    assert not check_model_loads(model, 512, embedding=False).cached
