"""kill -9 mid-answer loses neither the prompt nor what was written of the answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from zeta_desktop.core.conversation.model import MessageStatus
from zeta_desktop.core.store.history import HistoryStore

pytestmark = pytest.mark.model
CHILD = Path(__file__).with_name("crash_child.py")


def test_sigkill_mid_answer_keeps_the_prompt_and_the_partial_answer(
    tmp_path: Path, tiny_model: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(tiny_model), "40"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    said = ""
    try:
        assert child.stdout is not None
        for line in child.stdout:  # blocks on the child, no sleeps
            event = json.loads(line)
            if "token" in event:
                said += event["token"]
            if event.get("held"):
                break
        else:
            pytest.fail(f"the child ended (code {child.wait()}) before its answer was held")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    store = HistoryStore(db)
    try:
        assert store.wait_open() == []
        assert store.mark_interrupted().result(10) == 1
        (info,) = store.list_conversations().result(10)
        conversation = store.load_conversation(info.id).result(10)
        question, answer = conversation.visible()
        assert question.content.startswith("Tell me a very long story")
        assert answer.status is MessageStatus.INTERRUPTED
        assert answer.content and said.startswith(answer.content)
        assert store.integrity_check().result(10) == "ok"
    finally:
        store.close()
