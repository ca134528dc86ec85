"""Documents in the window, as a user meets them: add a folder, see the
progress, attach the collection, ask, and click a citation in the answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from conftest import build_window, start_and_wait
from doc_files import write_collection
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QFileDialog, QInputDialog
from wrapped_engine import WrappedEngine

from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig
from zeta_desktop.ui.chat.markdown_view import ProseView, link_citations

TIMEOUT_MS = 60_000


class CitesFirstPassage(WrappedEngine):
    """The tiny model's real answer, opened with a citation as a real model writes one."""

    def stream_chat(self, messages, **kwargs) -> Iterator[str]:  # type: ignore[no-untyped-def]
        yield "As the report says [1], "
        yield from self._inner.stream_chat(messages, **kwargs)


class GatedEmbedder(WrappedEngine):
    """The embedding model, held inside its first batch of chunks (its worker
    busy, as the router's panel shows it) until the test lets it go."""

    reached = threading.Event()
    release = threading.Event()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if len(texts) > 1:  # a batch of chunks (a question is one text)
            type(self).reached.set()
            assert type(self).release.wait(TIMEOUT_MS / 1000)
        return self._inner.embed(texts)


def loader(path, settings):  # type: ignore[no-untyped-def]
    engine = LlamaEngine.load(path, settings)
    return GatedEmbedder(engine) if settings.embedding else CitesFirstPassage(engine)


def test_add_a_folder_see_progress_ask_and_open_a_citation(  # type: ignore[no-untyped-def]
        qtbot, docs_config: AppConfig, tmp_path: Path, monkeypatch) -> None:
    folder = write_collection(tmp_path / "notes")
    win = start_and_wait(qtbot, build_window(qtbot, docs_config, tmp_path, loader))
    gate = GatedEmbedder
    gate.reached.clear()
    gate.release.clear()
    # The user picks a folder and a name in the file and name dialogs.
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(folder))
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("Field notes", True))
    win.documents.show_window()
    documents = win.documents.window
    assert documents is not None and documents.isVisible()
    qtbot.mouseClick(documents.new_folder, Qt.MouseButton.LeftButton)

    # Held at the first batch: the window shows the collection embedding.
    qtbot.waitUntil(lambda: gate.reached.is_set() and documents.table.rowCount() == 1
                    and documents.table.item(0, 4) is not None
                    and documents.table.item(0, 4).text().startswith("embedding 0/"),
                    timeout=TIMEOUT_MS)
    assert documents.table.item(0, 0).text() == "Field notes"
    assert documents.bars[documents.infos[0].id].value() == 0
    qtbot.waitUntil(lambda: win.documents.chips.status.text().startswith("indexing:"),
                    timeout=TIMEOUT_MS)
    # The embedder is busy on the router's panel; the chat models are not.
    assert win.api.session.worker("embedder").in_flight == 1
    qtbot.waitUntil(lambda: win.roles_panel.cards["embedder"].state == "busy",
                    timeout=TIMEOUT_MS)
    gate.release.set()
    qtbot.waitUntil(lambda: documents.table.item(0, 4).text().startswith("ready"),
                    timeout=TIMEOUT_MS)
    assert documents.bars[documents.infos[0].id].value() == 100
    problems = documents.problems.toPlainText()
    assert "broken.pdf: a broken PDF" in problems and "noise.txt: binary content" in problems

    # Attach it to the conversation from the chips' menu.
    chips = win.documents.chips
    chips._fill_menu()
    [attach] = [a for a in chips.menu.actions() if a.text().startswith("Field notes")]
    attach.trigger()
    assert chips.chip_texts() == ["Field notes  ✕"]
    assert win.api.conversation.collections == (documents.infos[0].id,)

    win.chat.input.setPlainText("Where will the new warehouse open?")
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        qtbot.mouseClick(win.chat.send_button, Qt.MouseButton.LeftButton)
    turn = win.api.turns[-1]
    view = win.answer_view(turn.turn_id)
    qtbot.waitUntil(lambda: "Sources: [1]" in view.footer.text(), timeout=TIMEOUT_MS)
    first = turn.sources[0]
    # What the search found was told as it happened, before the answer was routed.
    assert f"turn {turn.turn_id}: found {len(turn.passages)} passage(s) in the documents" \
        in win.router_log.toPlainText()

    # The [1] in the answer is a link: click it where it is drawn, once it is
    # drawn there (the answer's last text is laid out on the chat's timer).
    def citation_spot() -> QPoint | None:
        prose = view.answer.prose_views()[0]
        assert isinstance(prose, ProseView)
        cursor = QTextCursor(prose.document())
        cursor.setPosition(prose.toPlainText().index("[1]") + 1)
        spot = prose.cursorRect(cursor).center()
        return spot if prose.anchorAt(spot) == "zeta-cite:1" else None

    qtbot.waitUntil(lambda: citation_spot() is not None, timeout=TIMEOUT_MS)
    prose = view.answer.prose_views()[0]
    qtbot.mouseClick(prose.viewport(), Qt.MouseButton.LeftButton, pos=citation_spot())
    qtbot.waitUntil(lambda: win.documents.passage is not None
                    and win.documents.passage.isVisible(), timeout=TIMEOUT_MS)
    dialog = win.documents.passage
    assert dialog.source.number == 1 and dialog.source.path == first.path
    assert dialog.text.toPlainText() == first.text
    assert dialog.windowTitle() == f"[1] {first.label()}"
    dialog.close()
    documents.close()
    win.close()


def test_only_cited_numbers_the_answer_was_given_become_links() -> None:
    assert link_citations("see [1] and [4]", 3) == "see [\\[1\\]](zeta-cite:1) and [4]"
    assert link_citations("`a[1]` and x[1] and [1](http://x)", 3) == (
        "`a[1]` and x[1] and [1](http://x)")
    assert link_citations("[1]", 0) == "[1]"


def test_a_past_message_link_opens_it_in_its_conversation(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.chat.input.setPlainText("the supply boat comes on Tuesdays")
    with qtbot.waitSignal(window.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        qtbot.mouseClick(window.chat.send_button, Qt.MouseButton.LeftButton)
    first = window.api.conversation
    question = first.visible()[0]
    window.history.new_chat()
    assert window.api.conversation.id != first.id
    # As `/similar`'s answer links it: the app's own scheme, never a file or URL.
    window.documents.open_link("any answer", f"zeta-message:{first.id}/{question.id}")
    qtbot.waitUntil(lambda: window.api.conversation.id == first.id, timeout=TIMEOUT_MS)
    assert window.sidebar.list.currentItem() is not None


def test_the_sidebar_search_finds_a_message_by_meaning_and_jumps_to_it(  # type: ignore[no-untyped-def]
        qtbot, docs_config: AppConfig, tmp_path: Path) -> None:
    win = start_and_wait(qtbot, build_window(qtbot, docs_config, tmp_path))
    win.chat.input.setPlainText("My puppy keeps chewing the legs of the sofa")
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        qtbot.mouseClick(win.chat.send_button, Qt.MouseButton.LeftButton)
    first = win.api.conversation
    question = first.visible()[0]
    library = win.api.documents
    qtbot.waitUntil(library.is_idle, timeout=TIMEOUT_MS)  # its vector, in the background
    win.history.new_chat()
    # No word in common with the message: only its meaning matches.
    win.sidebar.search_box.setText("young dog damaging furniture")
    qtbot.waitUntil(lambda: any(t.startswith(first.info.title) and "≈" in t
                                for t in win.sidebar.titles()), timeout=TIMEOUT_MS)
    row = next(i for i, t in enumerate(win.sidebar.titles()) if "≈ My puppy" in t)
    item = win.sidebar.list.item(row)
    qtbot.mouseClick(win.sidebar.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=win.sidebar.list.visualItemRect(item).center())
    qtbot.waitUntil(lambda: win.api.conversation.id == first.id, timeout=TIMEOUT_MS)
    # The message it found is on screen, built.
    qtbot.waitUntil(lambda: question.id in [v.key for v in win.chat.message_views()],
                    timeout=TIMEOUT_MS)
    win.close()


def test_rename_a_collection_and_remove_one_of_its_folders(  # type: ignore[no-untyped-def]
        qtbot, docs_config: AppConfig, tmp_path: Path, monkeypatch) -> None:
    birds, trees = tmp_path / "birds", tmp_path / "trees"
    for folder, text in ((birds, "Herons nest in colonies."), (trees, "Oaks live for centuries.")):
        folder.mkdir()
        (folder / "note.txt").write_text(text + "\n")
    win = start_and_wait(qtbot, build_window(qtbot, docs_config, tmp_path))
    library = win.api.documents
    collection = library.create_collection("nature", [str(birds), str(trees)]).result(10)
    win.api.session.set_collections([collection])
    win.documents.show_window()
    documents = win.documents.window
    qtbot.waitUntil(lambda: documents.table.rowCount() == 1
                    and documents.table.item(0, 1).text() == "2"
                    and documents.table.item(0, 4).text().startswith("ready"),
                    timeout=TIMEOUT_MS)
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("Field notes", True))
    qtbot.mouseClick(documents.rename, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: documents.table.item(0, 0).text() == "Field notes",
                    timeout=TIMEOUT_MS)
    win.documents.chips.set_attached(win.api.conversation.collections)
    assert win.documents.chips.chip_texts() == ["Field notes  ✕"]

    [row] = [i for i in range(documents.sources.count())
             if documents.sources.item(i).text() == str(trees.resolve())]
    documents.sources.setCurrentRow(row)
    assert documents.remove_source.isEnabled()
    qtbot.mouseClick(documents.remove_source, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: documents.table.item(0, 1).text() == "1"
                    and documents.sources.count() == 1, timeout=TIMEOUT_MS)
    qtbot.waitUntil(library.is_idle, timeout=TIMEOUT_MS)
    assert not library.retrieve("oak trees", [collection], mode="keyword")
    assert library.retrieve("herons", [collection], mode="keyword")
    documents.close()
    win.close()
