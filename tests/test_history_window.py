"""Conversations in the real window: restart, switch while streaming, branches, delete, search."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import build_window, start_and_wait
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QPlainTextEdit

from zeta_desktop.core.settings import AppConfig
from zeta_desktop.ui.main_window import MainWindow

pytestmark = pytest.mark.model
TIMEOUT_MS = 60_000


def send_and_finish(qtbot, win: MainWindow, prompt: str) -> int:  # type: ignore[no-untyped-def]
    win.chat.input.setPlainText(prompt)
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS) as done:
        qtbot.mouseClick(win.chat.send_button, Qt.MouseButton.LeftButton)
    return int(done.args[0].turn_id)


def shown_texts(win: MainWindow) -> list[str]:
    return [v.text for v in win.chat.message_views() if v.key is not None]


def test_a_restart_reopens_the_conversation_where_it_was(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    win = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path))
    turn = send_and_finish(qtbot, win, "remember the word marmalade")
    answer = win.api.turn(turn).answer
    win.close()
    again = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path))
    assert shown_texts(again) == ["remember the word marmalade", answer]
    assert again.sidebar.titles() == ["remember the word marmalade"]
    footer = again.chat.answer_view(again.api.conversation.visible()[-1].id).footer.text()
    assert "tokens" in footer and "tiny-chat.gguf" in footer  # the stored stats and model
    again.turns.show_decision(again.api.conversation.visible()[-1].id)  # old answers too
    assert "policy: adaptive" in again.turns.decision_dialog.findChild(  # type: ignore[union-attr]
        QPlainTextEdit).toPlainText()
    again.close()


def test_switching_away_while_an_answer_streams(qtbot, gated_window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    win = gated_window
    win.chat.input.setPlainText("a long answer please")
    win.chat.send_button.click()
    qtbot.waitUntil(win.gate_reached.is_set, timeout=TIMEOUT_MS)  # type: ignore[attr-defined]
    streaming = win.api.conversation.id
    win.history.new_chat()
    assert win.api.conversation.id != streaming and shown_texts(win) == []
    qtbot.waitUntil(lambda: win.sidebar.item_for(streaming) is not None
                    and win.sidebar.item_for(streaming).text().startswith("●"),  # type: ignore[union-attr]
                    timeout=5000)
    win.gate_release.set()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: win.api.turn(1).status == "done", timeout=TIMEOUT_MS)
    assert shown_texts(win) == []  # nothing leaked into the chat shown
    win.sidebar.sig_open.emit(streaming, "")
    qtbot.waitUntil(lambda: len(shown_texts(win)) == 2, timeout=5000)
    assert shown_texts(win)[1] == win.api.turn(1).answer
    assert not win.sidebar.item_for(streaming).text().startswith("●")  # type: ignore[union-attr]


def test_regenerate_and_edit_make_branches_to_page_through(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    send_and_finish(qtbot, window, "first version")
    conversation = window.api.conversation
    question, first_answer = conversation.visible()
    view = window.chat.answer_view(first_answer.id)
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        window.history.regenerate(first_answer.id, "reasoner")  # the menu's "On reasoner"
    second = conversation.visible()[-1]
    assert second.id != first_answer.id and second.meta.role == "reasoner"
    view = window.chat.answer_view(second.id)
    assert view is not None and view.pager_label.text() == "2/2"  # type: ignore[union-attr]
    view.prev_button.click()
    assert window.chat.answer_view(first_answer.id).pager_label.text() == "1/2"  # type: ignore[union-attr]
    # Edit the prompt: the old one stays as a branch.
    prompt_view = next(v for v in window.chat.message_views() if v.key == question.id)
    prompt_view.action_buttons["Edit"].click()
    assert window.chat.input.toPlainText() == "first version"
    window.chat.input.setPlainText("second version")
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        window.chat.send_button.click()
    edited = conversation.visible()[0]
    assert edited.content == "second version" and edited.id != question.id
    assert shown_texts(window)[0] == "second version"
    edited_view = next(v for v in window.chat.message_views() if v.key == edited.id)
    assert edited_view.pager_label.text() == "2/2"  # type: ignore[union-attr]
    edited_view.prev_button.click()
    assert shown_texts(window)[0] == "first version"
    window.api.history.flush()
    stored = window.api.history.load_conversation(conversation.id).result(10)
    assert len(stored) == 5  # two prompts, three answers: nothing overwritten


def test_copy_puts_the_message_on_the_clipboard(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    turn = send_and_finish(qtbot, window, "copy me")
    window.answer_view(turn).action_buttons["Copy"].click()  # type: ignore[union-attr]
    assert QGuiApplication.clipboard().text() == window.api.turn(turn).answer


def test_delete_has_undo_and_search_finds_messages(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    send_and_finish(qtbot, window, "a question about zebras")
    zebra = window.api.conversation.id
    window.history.new_chat()
    send_and_finish(qtbot, window, "something else")
    qtbot.waitUntil(lambda: len(window.sidebar.titles()) == 2, timeout=5000)
    window.sidebar.delete(zebra)
    assert window.sidebar.titles() == ["something else"] and window.sidebar.undo_bar.isVisibleTo(
        window)
    window.api.history.flush()
    assert window.api.history.load_conversation(zebra).result(10)  # still on disk
    window.sidebar.undo_button.click()
    qtbot.waitUntil(lambda: len(window.sidebar.titles()) == 2, timeout=5000)
    window.sidebar.search_box.setText("zebras")
    qtbot.waitUntil(lambda: any("[zebras]" in t for t in window.sidebar.titles()), timeout=5000)
    hit = next(i for i in range(window.sidebar.list.count())
               if "[zebras]" in window.sidebar.list.item(i).text())
    window.sidebar.list.itemClicked.emit(window.sidebar.list.item(hit))
    qtbot.waitUntil(lambda: window.api.conversation.id == zebra, timeout=5000)
    assert shown_texts(window)[0] == "a question about zebras"


def test_export_and_import_round_trip_and_a_bad_file_changes_nothing(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    send_and_finish(qtbot, window, "export this chat")
    json_path, md_path = tmp_path / "chat.json", tmp_path / "chat.md"
    window.history.export_to(json_path, as_json=True)
    window.history.export_to(md_path, as_json=False)
    qtbot.waitUntil(lambda: json_path.exists() and md_path.exists(), timeout=5000)
    assert "## You\n\nexport this chat" in md_path.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "zeta-desktop.conversation", "version": 1}')
    window.history.import_from(bad)
    qtbot.waitUntil(lambda: "Nothing was changed" in window.alert_label.text(), timeout=5000)
    assert len(window.sidebar.titles()) == 1
    window.history.import_from(json_path)
    qtbot.waitUntil(lambda: len(window.sidebar.titles()) == 2, timeout=5000)
    assert shown_texts(window)[0] == "export this chat"
    assert json.loads(json_path.read_text())["messages"][0]["content"] == "export this chat"


def test_the_system_prompt_is_used_and_kept(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.chat.system_button.click()
    dialog = window.history.system_dialog
    assert dialog is not None
    dialog.presets.setCurrentIndex(dialog.presets.findText("Concise"))
    assert "as few words" in dialog.text.toPlainText()
    dialog.save_preset("mine")  # saved presets live in the history
    dialog.accept_changes()
    turn = send_and_finish(qtbot, window, "hi")
    job = window.api.turn(turn).job
    assert job is not None and "as few words" in job.messages[0]["content"]
    assert job.messages[0]["role"] == "system"
    assert "mine" in window.api.history.presets().result(10)


def test_rename_in_the_sidebar_is_saved(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    send_and_finish(qtbot, window, "old title")
    conversation = window.api.conversation
    qtbot.waitUntil(lambda: window.sidebar.item_for(conversation.id) is not None, timeout=5000)
    window.sidebar.item_for(conversation.id).setText("Groceries")  # type: ignore[union-attr]
    window.api.history.flush()
    (info,) = window.api.history.list_conversations().result(10)
    assert info.title == "Groceries" == conversation.info.title


def test_a_damaged_history_is_kept_aside_and_the_window_says_where(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    import os

    data = Path(os.environ["ZETA_DATA_DIR"])
    data.mkdir(parents=True)
    (data / "history.sqlite3").write_bytes(b"this was never a database" * 100)
    win = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path))
    kept = next(p for p in data.glob("history.sqlite3.corrupt-*")
                if not p.name.endswith(("-wal", "-shm")))
    qtbot.waitUntil(lambda: str(kept) in win.alert_label.text(), timeout=5000)
    send_and_finish(qtbot, win, "still works")  # on a fresh history
    win.api.history.flush()
    assert len(win.api.history.list_conversations().result(10)) == 1
    win.close()


def test_choosing_a_model_while_the_role_still_loads_never_blocks_the_window(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    import threading

    from tiny_gguf import write_tiny_llama

    from zeta_desktop.core.engines.llama import LlamaEngine

    other = write_tiny_llama(tmp_path / "other.gguf", seed=7)
    held, release, load_went_on = threading.Event(), threading.Event(), threading.Event()

    def slow_first_reasoner(path, settings):  # type: ignore[no-untyped-def]
        if path.name == "tiny-chat.gguf" and settings.n_ctx == 1024 and not held.is_set():
            held.set()
            release.wait(60)  # a slow disk; the window must not wait for it
            load_went_on.set()
        return LlamaEngine.load(path, settings)

    tiny_config.roles["reasoner"].n_ctx = 1024  # tells the reasoner's load apart
    win = build_window(qtbot, tiny_config, tmp_path, slow_first_reasoner)
    win.show()
    win.start_models()
    qtbot.waitUntil(held.is_set, timeout=TIMEOUT_MS)
    win.models.set_role_model("reasoner", str(other))  # returns at once: the swap runs apart
    assert not load_went_on.is_set()  # the old load is still held: nothing waited for it
    assert win.roles_panel.cards["reasoner"].model_label.text() == "other.gguf"
    release.set()
    card = win.roles_panel.cards["reasoner"]
    qtbot.waitUntil(lambda: card.state == "ready"
                    and win.api.session.roles["reasoner"].source.path == other,  # type: ignore[union-attr]
                    timeout=TIMEOUT_MS)
    win.close()


def test_an_answer_cut_short_by_a_crash_shows_interrupted_with_retry(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    import os

    from zeta_desktop.core.conversation.model import Conversation, MessageStatus
    from zeta_desktop.core.store.history import HistoryStore

    # What a killed app leaves: a prompt, and an answer still marked streaming.
    store = HistoryStore(Path(os.environ["ZETA_DATA_DIR"]) / "history.sqlite3")
    conversation = Conversation.new()
    question = conversation.add(None, "user", "tell me about tides")
    cut = conversation.add(question.id, "assistant", "Tides are", MessageStatus.STREAMING)
    for message in (question, cut):
        store.save_message(message, conversation.info)
    store.close()
    win = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path))
    assert shown_texts(win) == ["tell me about tides", "Tides are"]
    view = win.chat.answer_view(cut.id)
    assert view is not None and "interrupted" in view.footer.text()
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        view.action_buttons["Retry"].click()
    retried = win.api.conversation.visible()[-1]
    assert retried.id != cut.id and retried.status is MessageStatus.DONE and retried.content
    assert win.chat.answer_view(retried.id).pager_label.text() == "2/2"  # type: ignore[union-attr]
    win.close()


def test_deleting_a_chat_while_its_question_is_searched_leaves_the_next_chat_empty(
        qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """The stop that a delete makes ends the turn on the GUI thread; the window
    hears of it only after the delete, so nothing lands in the new chat's box."""
    reached, gate = threading.Event(), threading.Event()

    def held_search(question: str, collection_ids: object) -> list[object]:
        reached.set()
        gate.wait(TIMEOUT_MS / 1000)
        return []

    window.api.session.runner.retrieve = held_search
    window.api.set_collections(["notes"])
    window.chat.input.setPlainText("What do my notes say?")
    qtbot.mouseClick(window.chat.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(reached.is_set, timeout=TIMEOUT_MS)
    deleted = window.api.conversation.id
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS) as ended:
        window.history.delete(deleted)
    gate.set()
    assert ended.args[0].conversation_id == deleted and ended.args[0].stopped
    assert window.api.conversation.id != deleted
    assert window.chat.input.toPlainText() == ""
