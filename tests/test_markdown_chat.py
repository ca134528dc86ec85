"""Answers as Markdown: rendering, code blocks, thinking, untrusted output, long chats."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import build_window, start_and_wait
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextCursor
from PySide6.QtWidgets import QApplication
from thinking_engine import thinking_loader

from zeta_desktop.core.conversation.model import Conversation
from zeta_desktop.core.settings import AppConfig
from zeta_desktop.core.store.history import DB_FILENAME, HistoryStore
from zeta_desktop.ui.chat.chat_pane import ChatPane
from zeta_desktop.ui.chat.code_view import CodeBlockView
from zeta_desktop.ui.chat.markdown_view import ProseView
from zeta_desktop.ui.chat.message_view import MessageView

TIMEOUT_MS = 60_000
RICH = """# Heading

Some **bold**, *italic* and `code`.

1. first
2. second
   - nested

| kind | role |
| --- | --- |
| code | coder |

````markdown
```python
print("inner fence")
```
````

```python
def add(a, b):
    return a + b
```
"""


def answer(qtbot, text: str, streaming: bool = False) -> MessageView:  # type: ignore[no-untyped-def]
    view = MessageView("coder", "", "#3b82f6", markdown=True)
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    if streaming:
        view.start_streaming()
    view.set_text_so_far(text)
    view.show_text() if streaming else view.finish_streaming()
    QApplication.processEvents()
    return view


def test_headings_lists_tables_and_nested_fences_render(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = answer(qtbot, RICH)
    body = view.answer
    assert [type(v) for v in body.views] == [ProseView, CodeBlockView, CodeBlockView]
    document = body.prose_views()[0].document()
    heading = document.findBlockByNumber(0)
    assert heading.text() == "Heading" and heading.blockFormat().headingLevel() == 1
    assert document.toPlainText().count("first") == 1 and "nested" in document.toPlainText()
    assert any(frame.__class__.__name__ == "QTextTable"
               for frame in document.rootFrame().childFrames())
    outer, inner = body.code_blocks()
    assert outer.language_label.text() == "markdown"
    assert outer.code == '```python\nprint("inner fence")\n```'  # the shorter fence is text
    assert inner.language_label.text() == "python" and inner.code.startswith("def add")
    # Highlighted: the keyword and the name look different.
    line = inner.code_text.document().firstBlock().layout().formats()
    assert len({(f.format.foreground().color().name(), f.format.fontWeight()) for f in line}) > 1
    # Long lines scroll sideways instead of wrapping.
    assert inner.code_text.lineWrapMode() == inner.code_text.LineWrapMode.NoWrap


def test_a_fence_left_open_mid_stream_is_a_code_block_that_grows(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = answer(qtbot, "Here:\n\n```python\ndef f(x):\n    return", streaming=True)
    (block,) = view.answer.code_blocks()
    assert block.code == "def f(x):\n    return"
    before = block.code_text.document()
    view.append(" x * 2\n```\n\nDone.")
    view.show_text()
    assert view.answer.code_blocks() == [block]  # the same widget, appended to
    assert block.code_text.document() is before
    assert block.code == "def f(x):\n    return x * 2"
    assert view.answer.prose_views()[-1].toPlainText() == "Done."


def test_an_answer_that_is_only_a_code_block(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = answer(qtbot, "```\nSELECT name FROM users\nWHERE id = 1\n;\n```")
    assert view.answer.prose_views() == []
    (block,) = view.answer.code_blocks()
    assert block.language_label.text() == "SQL (guessed)"


def test_copy_puts_exactly_the_blocks_code_on_the_clipboard(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = answer(qtbot, "Two blocks:\n\n```sh\nls -la\n```\n\nand\n\n```py\nx = 1\ny = 2\n```\n")
    first, second = view.answer.code_blocks()
    qtbot.mouseClick(second.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "x = 1\ny = 2"
    qtbot.mouseClick(first.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "ls -la"


def test_html_and_scripts_show_as_text_and_images_are_never_fetched(qtbot) -> None:  # type: ignore[no-untyped-def]
    text = ("<b>bold?</b> <script>alert('x')</script>\n\n"
            "![a cat](https://example.com/cat.png) and ![secret](/etc/passwd)")
    view = answer(qtbot, text)
    (prose,) = view.answer.prose_views()
    shown = prose.toPlainText()
    assert "<b>bold?</b>" in shown and "<script>alert('x')</script>" in shown
    requested: list[str] = []
    original = prose.loadResource
    prose.loadResource = lambda kind, url: requested.append(url.toString()) or original(kind, url)
    prose.viewport().repaint()
    document = prose.document()
    assert "image: a cat" in shown  # a link the user can see, not a picture
    images = [fragment for block in _blocks(document) for fragment in _fragments(block)
              if fragment.charFormat().isImageFormat()]
    assert images == [] and requested == []
    assert original(0, QUrl("https://example.com/cat.png")) is None  # nothing, ever


def _blocks(document):  # type: ignore[no-untyped-def]
    block = document.begin()
    while block.isValid():
        yield block
        block = block.next()


def _fragments(block):  # type: ignore[no-untyped-def]
    iterator = block.begin()
    while not iterator.atEnd():
        yield iterator.fragment()
        iterator += 1


def test_links_open_only_when_clicked_and_only_web_ones(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()))
    view = answer(qtbot, "[docs](https://docs.python.org/3/) and [run](file:///bin/sh)")
    (prose,) = view.answer.prose_views()
    assert opened == []  # shown, not opened
    hovered: list[str] = []
    prose.sig_link_hovered.connect(hovered.append)
    prose.highlighted.emit(QUrl("https://docs.python.org/3/"))
    assert hovered == ["https://docs.python.org/3/"]
    assert prose.viewport().toolTip() == "https://docs.python.org/3/"
    prose.anchorClicked.emit(QUrl("file:///bin/sh"))
    prose.anchorClicked.emit(QUrl("https://docs.python.org/3/"))
    assert opened == ["https://docs.python.org/3/"]


def test_text_selects_while_it_streams_and_copies_as_markdown(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = answer(qtbot, "A **bold** start\n\nand more", streaming=True)
    first = view.answer.prose_views()[0]
    cursor = first.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.Start)
    cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
    first.setTextCursor(cursor)
    view.append(" still coming")
    view.show_text()
    assert first.textCursor().selectedText() == "A bold start"  # untouched by the stream
    qtbot.keyClick(first, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "A **bold** start"


def thinking_halfway(qtbot, tiny_config: AppConfig, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The real window, an answer held halfway through its thinking: (window, release)."""
    reached, release = threading.Event(), threading.Event()
    win = start_and_wait(qtbot, build_window(
        qtbot, tiny_config, tmp_path, thinking_loader(8, reached, release)))
    win.chat.input.setPlainText("think about it")
    qtbot.mouseClick(win.chat.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: reached.is_set() and _thinking(win) is not None
                    and _thinking(win).text.toPlainText() != "", timeout=TIMEOUT_MS)
    return win, release


@pytest.mark.model
def test_a_thinking_model_thinks_live_then_the_section_folds(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    win, release = thinking_halfway(qtbot, tiny_config, tmp_path)
    section = _thinking(win)
    assert section.expanded and section.toggle.text() == "Thinking…"
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        release.set()
    assert not section.expanded and section.toggle.text().startswith("Thought for ")
    view = win.answer_view(1)
    assert view is not None and view.answer.prose_views()  # the answer below it
    assert "thinking)" in view.footer.text()
    stored = win.api.conversation.visible()[-1]
    # "<think>\n", eight of the model's tokens, then "</think>": ten pieces of thinking.
    assert stored.meta.thinking_tokens == 10
    assert stored.meta.answer_tokens and stored.meta.answer_tokens > 10
    card = win.roles_panel.cards[win.api.turn(1).role or ""]
    qtbot.waitUntil(lambda: card.thinking_label.isVisible(), timeout=5000)
    assert "thinking" in card.thinking_label.text()
    win.close()


@pytest.mark.model
def test_stop_while_thinking_leaves_the_thought_open(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    win, _release = thinking_halfway(qtbot, tiny_config, tmp_path)
    with qtbot.waitSignal(win.turns.sig_turn_ended, timeout=TIMEOUT_MS):
        qtbot.mouseClick(win.chat.stop_button, Qt.MouseButton.LeftButton)
    section = _thinking(win)
    assert section.expanded and section.toggle.text() == "Stopped while thinking"
    assert win.api.turn(1).answer.startswith("<think>")  # the text is kept as it came
    win.close()


def _thinking(win):  # type: ignore[no-untyped-def]
    view = win.answer_view(1)
    return view.answer.thinking if view is not None and view._answer is not None else None


def test_a_thousand_message_conversation_builds_only_what_is_in_view(  # type: ignore[no-untyped-def]
    qtbot, tiny_config: AppConfig, tmp_path: Path
) -> None:
    import os

    store = HistoryStore(Path(os.environ["ZETA_DATA_DIR"]) / DB_FILENAME)
    long = Conversation.new()
    parent = None
    for turn in range(1000):
        author = "user" if turn % 2 == 0 else "assistant"
        text = (f"question {turn}" if author == "user"
                else f"**Answer {turn}**\n\n```py\nx = {turn}\n```")
        parent = long.add(parent, author, text).id
    short = Conversation.new()
    short.add(short.add(None, "user", "a short chat").id, "assistant", "yes")
    store.import_conversation(long)
    store.import_conversation(short)
    store.flush(60)
    store.close()
    win = build_window(qtbot, tiny_config, tmp_path)
    win.show()
    win.resize(1000, 700)
    qtbot.waitUntil(lambda: win.history.restored, timeout=TIMEOUT_MS)
    win.history.open(long.id)
    chat = win.chat
    qtbot.waitUntil(lambda: len(chat.messages.keys()) == 1000 and bool(chat.message_views()),
                    timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: chat.messages.at_bottom, timeout=5000)
    built = chat.message_views()
    assert 0 < len(built) < 60, len(built)
    assert built[-1].text.startswith("**Answer 999**")  # it opens at the newest
    # Scroll up a long way: what comes into view is built, the bottom let go.
    bar = chat.scroll.verticalScrollBar()
    bar.setValue(bar.maximum() // 3)
    qtbot.waitUntil(lambda: not chat.messages.at_bottom and chat.jump_button.isVisible(),
                    timeout=5000)
    qtbot.waitUntil(lambda: chat.messages.view(long.visible()[-1].id) is None, timeout=5000)
    here = chat.messages.position()
    assert here is not None
    assert len(chat.message_views()) < 120
    # Another conversation and back: the same place.
    win.history.open(short.id)
    qtbot.waitUntil(lambda: len(chat.messages.keys()) == 2, timeout=TIMEOUT_MS)
    win.history.open(long.id)
    qtbot.waitUntil(lambda: len(chat.messages.keys()) == 1000, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: chat.messages.position() == here, timeout=5000)
    qtbot.mouseClick(chat.jump_button, Qt.MouseButton.LeftButton)
    assert chat.messages.at_bottom and not chat.jump_button.isVisible()
    win.close()


def test_streaming_never_moves_the_view_of_a_reader_higher_up(qtbot) -> None:  # type: ignore[no-untyped-def]
    pane = ChatPane()
    qtbot.addWidget(pane)
    pane.resize(700, 400)
    pane.show()
    for turn in range(12):
        pane.add_user_message(f"question {turn}")
        pane.add_answer(f"a{turn}", "an answer\n\nwith two paragraphs " * 3)
    streaming = pane.add_pending_answer("live")
    QApplication.processEvents()
    bar = pane.scroll.verticalScrollBar()
    bar.setValue(bar.maximum() // 4)
    qtbot.waitUntil(lambda: pane.jump_button.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: pane.messages.view(pane.messages.position()[0]) is not None,
                    timeout=5000)  # type: ignore[index]
    reading = pane.messages.position()
    assert reading is not None
    watched = pane.messages.view(reading[0])
    assert watched is not None
    on_screen = watched.mapTo(pane.scroll.viewport(), QPoint(0, 0)).y()
    for _ in range(20):
        streaming.append("more words in a growing answer\n\n")
        streaming.show_text()
        QApplication.processEvents()
    assert pane.messages.position() == reading
    assert watched.mapTo(pane.scroll.viewport(), QPoint(0, 0)).y() == on_screen
    pane.messages.scroll_to_bottom()
    QApplication.processEvents()
    assert bar.value() == bar.maximum() and not pane.jump_button.isVisible()


def test_words_typed_in_fast_still_render_as_the_markdown_reader_would(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Plain words are appended without the reader; anything that could change
    the Markdown before it (an asterisk, an underscore, a break) goes through it."""
    stream = answer(qtbot, "Some", streaming=True)
    for piece in (" plain", " words", " and **bo", "ld** then", " _it_", " more", "\n\n# Head",
                  "ing", "\n\nend"):
        stream.append(piece)
        stream.show_text()
    whole = answer(qtbot, stream.text)
    (streamed,) = stream.answer.prose_views()
    (rendered,) = whole.answer.prose_views()
    assert streamed.toPlainText() == rendered.toPlainText()  # the same words, as they came
    bold = [f for b in _blocks(streamed.document()) for f in _fragments(b)
            if f.charFormat().fontWeight() > 400]
    assert [f.text() for f in bold][:1] == ["bold"]  # the asterisks were read, not typed in
    stream.finish_streaming()  # rendered once, whole: exactly what the reader makes of it
    assert streamed.document().toMarkdown() == rendered.document().toMarkdown()
