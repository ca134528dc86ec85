"""Files opened with the app (`zeta-desktop FILE`, "Open with", a second start):
each goes where its kind belongs, and a bad one is said and changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from zeta_desktop.cli import _app_parser
from zeta_desktop.ui.main_window import MainWindow
from zeta_desktop.ui.open_files import FileOpener, kind_of
from zeta_desktop.ui.single_instance import SingleInstance

pytestmark = pytest.mark.model
TIMEOUT_MS = 60_000


def test_the_command_line_takes_files() -> None:
    args = _app_parser().parse_args(["model.gguf", "notes.md"])
    assert args.files == [Path("model.gguf"), Path("notes.md")]
    assert _app_parser().parse_args([]).files == []


def test_each_suffix_has_its_kind() -> None:
    assert [kind_of(Path(name)) for name in ("a.GGUF", "c.json", "d.pdf", "e.html", "f.zip")] \
        == ["model", "conversation", "document", "document", ""]


def test_a_second_start_hands_its_files_to_the_first_as_absolute_paths(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = SingleInstance(tmp_path / "data")
    second = SingleInstance(tmp_path / "data")
    assert first.primary and not second.primary
    monkeypatch.chdir(tmp_path)
    with qtbot.waitSignal(first.sig_open, timeout=5000) as opened:
        assert second.ask_primary_to_raise([Path("model.gguf"), Path("sub/notes.md")])
    assert opened.args[0] == [str(tmp_path / "model.gguf"), str(tmp_path / "sub/notes.md")]
    first.release()


def test_a_gguf_opens_the_picker_with_it_selected_for_the_role_it_suits(  # type: ignore[no-untyped-def]
        qtbot, window: MainWindow, tiny_model: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "downloads" / "tiny-coder.gguf"  # outside every place scanned
    elsewhere.parent.mkdir()
    shutil.copy(tiny_model, elsewhere)
    FileOpener(window).open([elsewhere])
    qtbot.waitUntil(lambda: window.models.model_picker is not None, timeout=TIMEOUT_MS)
    picker = window.models.model_picker
    qtbot.waitUntil(lambda: not picker.scanning and bool(picker.found), timeout=TIMEOUT_MS)
    assert picker.role == "coder"
    selected = picker.table.selectionModel().selectedRows()[0].row()
    assert picker.table.item(selected, 0).text().endswith("(opened for coder)")
    assert any("it suits the coder role" in text for text in window.chat.notice_texts())


def test_a_file_that_is_not_a_model_says_so_and_opens_nothing(  # type: ignore[no-untyped-def]
        qtbot, window: MainWindow, tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf at all" * 8)
    (tmp_path / "archive.zip").write_bytes(b"PK")
    FileOpener(window).open([fake, tmp_path / "missing.json", tmp_path / "archive.zip"])

    def said(fragment: str) -> bool:
        return any(fragment in text for text in window.chat.notice_texts())

    qtbot.waitUntil(lambda: said(f"Could not open {fake}"), timeout=TIMEOUT_MS)
    assert said("there is no such file")
    assert said("Zeta Desktop opens .gguf models")
    assert window.models.model_picker is None


def test_an_exported_conversation_is_imported_and_a_malformed_one_changes_nothing(  # type: ignore[no-untyped-def]
        qtbot, window: MainWindow, tmp_path: Path) -> None:
    window.chat.input.setPlainText("open me later")
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        qtbot.mouseClick(window.chat.send_button, Qt.MouseButton.LeftButton)
    exported = tmp_path / "chat.json"
    window.history.export_to(exported, as_json=True)
    qtbot.waitUntil(exported.exists, timeout=5000)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "zeta-desktop.conversation"')
    opener = FileOpener(window)
    opener.open([bad])
    qtbot.waitUntil(lambda: "Nothing was changed" in window.alert_label.text(), timeout=5000)
    assert len(window.sidebar.titles()) == 1
    opener.open([exported])
    qtbot.waitUntil(lambda: len(window.sidebar.titles()) == 2, timeout=5000)
    assert window.sidebar.titles().count("open me later") == 2


def test_a_document_is_offered_to_a_new_collection(  # type: ignore[no-untyped-def]
        qtbot, window: MainWindow, tmp_path: Path) -> None:
    notes = tmp_path / "Trip notes.md"
    notes.write_text("# Trip\n\nThe ferry leaves at nine from pier four.\n")
    opener = FileOpener(window)
    opener.open([notes])
    qtbot.waitUntil(lambda: opener.add_dialog is not None, timeout=TIMEOUT_MS)
    dialog = opener.add_dialog
    assert dialog.collection.currentData() == ""  # no collection yet: a new one
    assert dialog.name.text() == "Trip notes"
    library = window.api.documents
    assert library is not None
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("Added Trip notes.md" in text
                                for text in window.chat.notice_texts()), timeout=TIMEOUT_MS)
    names = [info.name for info in library.collections().result(timeout=10)]
    assert names == ["Trip notes"]
