"""An answer's body: its thinking, then Markdown prose and code blocks in order.

The text is split into parts (`core.conversation.answer_parts`), one widget
each. While the answer streams only the last part grows: it is re-parsed
from its start, and only its widget is touched (a prose part re-renders its
last block, a code block appends to its last line). A finished answer is
rendered once.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from zeta_desktop.core.chat.api import Code, Part, answer_parts, split_thinking
from zeta_desktop.ui.chat.code_view import CodeBlockView
from zeta_desktop.ui.chat.markdown_view import ProseView, link_citations
from zeta_desktop.ui.chat.thinking_view import ThinkingSection


class AnswerBody(QWidget):
    sig_internal_link = Signal(str)
    """A citation or a past message's link was clicked in the prose."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.citations = 0  # the answer's sources: [1]..[n] become links
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.thinking: ThinkingSection | None = None
        self.views: list[ProseView | CodeBlockView] = []
        self._parts: list[Part] = []
        self._answer = ""
        self._text = ""
        self._streaming = False
        self._thought_from: float | None = None  # when the thinking was first seen, live
        self.thinking_seconds: float | None = None  # known from the stats, or timed here

    def text(self) -> str:
        return self._text

    def set_text(self, text: str, streaming: bool) -> None:
        """All of the answer so far; `streaming`: more may come."""
        if text == self._text and streaming == self._streaming:
            return
        self._text, self._streaming = text, streaming
        thinking, answer = split_thinking(text)
        if thinking is not None:
            self._show_thinking(thinking.text, thinking.done, streaming)
        elif self.thinking is not None:
            self.thinking.hide()
        self._show_answer(answer, streaming)

    def set_citations(self, count: int) -> None:
        """The answer's [1]..[count] link to its passages; rendered again if it changed."""
        if count == self.citations:
            return
        self.citations = count
        _thinking, answer = split_thinking(self._text)
        self._answer, self._parts = "", []  # every prose part filled anew
        self._show_answer(answer, self._streaming)

    def finish(self) -> None:
        """The answer is complete: each part rendered once, whole."""
        self.set_text(self._text, streaming=False)

    def _show_thinking(self, text: str, done: bool, streaming: bool) -> None:
        if self.thinking is None:
            self.thinking = ThinkingSection()
            self._layout.insertWidget(0, self.thinking)
            if streaming:
                self._thought_from = time.monotonic()
        if done and self.thinking_seconds is None and self._thought_from is not None:
            self.thinking_seconds = time.monotonic() - self._thought_from
        self.thinking.show()
        self.thinking.set_thinking(text, done, self.thinking_seconds, streaming)

    def _show_answer(self, answer: str, streaming: bool) -> None:
        first_changed = 0
        if self._parts and answer.startswith(self._answer):
            last = self._parts[-1]
            parts = self._parts[:-1] + answer_parts(answer[last.start:], last.start)
            first_changed = len(self._parts) - 1
        else:
            parts = answer_parts(answer)
        self._answer, self._parts = answer, parts
        offset = 1 if self.thinking is not None else 0
        for index, part in enumerate(parts):
            if index < first_changed and streaming:
                continue  # final parts: untouched while the last one grows
            view = self.views[index] if index < len(self.views) else None
            if view is not None and not _fits(view, part):
                self._drop_views_from(index)
                view = None
            if view is None:
                view = _make_view(part)
                if isinstance(view, ProseView):
                    view.sig_internal_link.connect(self.sig_internal_link)
                self.views.append(view)
                self._layout.insertWidget(offset + index, view)
            _fill(view, part, streaming, self.citations)
        self._drop_views_from(len(parts))

    def _drop_views_from(self, index: int) -> None:
        for view in self.views[index:]:
            self._layout.removeWidget(view)
            view.hide()
            view.deleteLater()
        del self.views[index:]

    def code_blocks(self) -> list[CodeBlockView]:
        return [v for v in self.views if isinstance(v, CodeBlockView)]

    def prose_views(self) -> list[ProseView]:
        return [v for v in self.views if isinstance(v, ProseView)]


def _fits(view: QWidget, part: Part) -> bool:
    if isinstance(part, Code):
        return isinstance(view, CodeBlockView) and view.language == part.language
    return isinstance(view, ProseView)


def _make_view(part: Part) -> ProseView | CodeBlockView:
    if isinstance(part, Code):
        return CodeBlockView(part.language)
    return ProseView()


def _fill(view: QWidget, part: Part, streaming: bool, citations: int = 0) -> None:
    if isinstance(part, Code):
        assert isinstance(view, CodeBlockView)
        # A finished answer's open fence (stopped mid-block) is done growing too.
        view.set_code(part.code, part.closed or not streaming)
    else:
        assert isinstance(view, ProseView)
        text = link_citations(part.text, citations)
        if streaming:
            view.stream_markdown(text)
        elif view.markdown() != text or not view.textCursor().hasSelection():
            view.set_markdown(text)
