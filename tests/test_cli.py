"""The command line, run as a user runs it: a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "zeta_desktop", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=full_env,
        check=False,
    )


def test_self_test_with_tiny_models(tiny_model: Path) -> None:
    result = run_cli(
        "--self-test",
        "--coder",
        str(tiny_model),
        "--embedder",
        str(tiny_model),
        "--reasoner",
        str(tiny_model),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for role in ("coder", "embedder", "reasoner"):
        line = next(li for li in lines if li.startswith(f"ok   {role}: "))
        assert tiny_model.name in line and "tok/s" in line and "load" in line
    embedder = next(li for li in lines if li.startswith("ok   embedder"))
    assert "embedding 2x64" in embedder
    server = next(li for li in lines if li.startswith("ok   server: "))
    assert "http://127.0.0.1:" in server and "answered through" in server
    assert "window: ok (offscreen)" in lines
    from zeta_desktop.core.engines.build_info import build_info

    build = build_info()
    assert build.describe() in lines  # the backend, and whether it can offload
    # llama.cpp names the layers it offloaded only on a build that can.
    assert ("layers on the GPU" in embedder) == build.can_offload


def test_self_test_with_roles_on_servers(tiny_model: Path) -> None:
    from servers import LlamaServer

    server = LlamaServer(tiny_model, "tiny", embedding=True, n_ctx=512).start()
    try:
        result = run_cli(
            "--self-test",
            "--coder", server.url,  # as the server prints it: its one model is asked for
            "--embedder", server.endpoint,
            "--reasoner", f"{server.url}#no-such-model",
        )
    finally:
        server.stop()
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    coder = next(li for li in lines if li.startswith("ok   coder: "))
    assert f"tiny@127.0.0.1:{server.port}" in coder and "tok/s" in coder
    embedder = next(li for li in lines if li.startswith("ok   embedder: "))
    assert "embedding 2x64" in embedder
    reasoner = next(li for li in lines if li.startswith("FAIL reasoner: "))
    assert "has no model 'no-such-model' (it serves: tiny)" in reasoner
    assert "warning" not in result.stderr  # loopback over plain HTTP is fine
    assert (f"zeta-desktop: --coder: the server at {server.url} serves one model, tiny: "
            "using it") in result.stderr


def test_self_test_fails_naming_the_broken_role(tiny_model: Path, tmp_path: Path) -> None:
    result = run_cli(
        "--self-test",
        "--coder",
        str(tiny_model),
        "--embedder",
        str(tiny_model),
        "--reasoner",
        str(tmp_path / "nowhere.gguf"),
    )
    assert result.returncode == 1
    assert "FAIL reasoner: " in result.stdout and "not found" in result.stdout
    assert "ok   coder" in result.stdout


def test_no_display_gives_a_clear_message_not_a_qt_abort(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, "-m", "zeta_desktop"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot open a window" in result.stderr and "DISPLAY" in result.stderr


def test_corrupt_config_is_reported_on_the_command_line(tiny_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[[[")
    result = run_cli(
        "--config",
        str(config),
        "--self-test",
        "--coder",
        str(tiny_model),
        "--embedder",
        str(tiny_model),
        "--reasoner",
        str(tiny_model),
    )
    assert result.returncode == 0
    assert "not valid TOML" in result.stderr and str(config) in result.stderr
    assert list(tmp_path.glob("bad.toml.bad-*"))


def test_route_prints_one_json_decision_per_prompt() -> None:
    import json

    prompts = (
        "hello there\n```\nint main() { return 0; }\n```\n"
        "If 3 workers build a wall in 12 days, how many days do 9 workers need? "
        "Explain step by step.\n"
    )
    result = run_cli("route", "--json", stdin=prompts)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 5  # one per non-empty stdin line
    for row in rows:
        assert {"kind", "confidence", "role", "reason"} <= row.keys()
        assert row["reason"].startswith(f"{row['kind']} -> {row['role']}: ")
    assert rows[0]["kind"] == "simple" and rows[0]["role"] == "coder"
    assert rows[-1]["kind"] == "reasoning" and rows[-1]["role"] == "reasoner"


def test_route_with_a_policy_from_arguments() -> None:
    result = run_cli("route", "--policy", "static", "why is the sky blue")
    assert result.returncode == 0
    assert "(static)" in result.stdout


def test_a_second_start_says_one_is_running_and_raises_the_first(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from zeta_desktop.ui.single_instance import SingleInstance

    first = SingleInstance(tmp_path / "data")
    assert first.primary
    second = SingleInstance(tmp_path / "data")
    assert not second.primary
    with qtbot.waitSignal(first.sig_raise, timeout=5000):
        assert second.ask_primary_to_raise()
    first.release()
    third = SingleInstance(tmp_path / "data")  # the lock goes with the first app
    assert third.primary
    third.release()


def test_the_lock_of_an_app_that_was_killed_is_taken_over(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import signal
    import subprocess
    import sys

    from zeta_desktop.ui.single_instance import LOCK_NAME, SingleInstance

    data = tmp_path / "data"
    data.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom PySide6.QtCore import QLockFile\n"
         f"lock = QLockFile({str(data / LOCK_NAME)!r}); lock.setStaleLockTime(0)\n"
         "assert lock.tryLock(0)\nprint('held', flush=True)\ntime.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not SingleInstance(data).primary  # held by a live process
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        taken = SingleInstance(data)  # its process is gone: the lock is stale
        assert taken.primary
        taken.release()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_gui_start_exits_when_another_app_holds_the_history(  # type: ignore[no-untyped-def]
    qtbot, tmp_path, capsys
) -> None:
    import os

    from zeta_desktop.core.config import load_config
    from zeta_desktop.core.engines.llama import LlamaEngine
    from zeta_desktop.ui.app import run_gui
    from zeta_desktop.ui.single_instance import SingleInstance

    first = SingleInstance(Path(os.environ["ZETA_DATA_DIR"]))
    loaded = load_config(tmp_path / "absent.toml")
    try:
        with qtbot.waitSignal(first.sig_raise, timeout=5000):
            assert run_gui(loaded, loaded.config, LlamaEngine.load) == 0
    finally:
        first.release()
    assert "already running" in capsys.readouterr().err
