"""Chat pane costs on the GUI thread, no models: `make bench-chat`.

Two things the chat does while models stream, each against its baseline in
the same run, in a conversation of CHAT_BENCH_MESSAGES finished answers:

- show a token batch in the answer being streamed: `StreamingText` (the app)
  against a selectable word-wrapped QLabel (what a label-based chat does);
- add a message: the painted `MessageView` (the app) against the same
  message styled with a style sheet per widget.

Each sample is the call plus the layout and paint it causes (processEvents).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QVBoxLayout

from zeta_desktop.ui.chat_pane import ChatPane
from zeta_desktop.ui.message_view import MessageView

MESSAGES = int(os.environ.get("CHAT_BENCH_MESSAGES", "30"))
ANSWER = "word " * 400
BATCHES = 60


def conversation() -> ChatPane:
    pane = ChatPane()
    pane.resize(700, 700)
    pane.show()
    for turn in range(MESSAGES):
        pane.add_user_message(f"prompt number {turn}, please")
        pane.add_pending_answer(turn)
        view = pane.answer_view(turn)
        assert view is not None
        view.append(ANSWER)
        pane._finish(turn)
        view.make_selectable()  # as once the pointer has been over them: QLabels
    QApplication.processEvents()
    return pane


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    QApplication.processEvents()
    return (time.perf_counter() - start) * 1000


def token_batches() -> tuple[list[float], list[float]]:
    pane = conversation()
    pane.add_pending_answer(MESSAGES)
    view = pane.answer_view(MESSAGES)
    assert view is not None
    app_ms = []
    for _ in range(BATCHES):
        view.append(" more words")
        app_ms.append(timed(view.show_text))
    # Baseline: the same conversation, the answer streaming into a QLabel.
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    frame = QFrame()
    QVBoxLayout(frame).addWidget(label)
    pane._list_layout.insertWidget(pane._list_layout.count() - 1, frame)
    QApplication.processEvents()
    text, label_ms = "", []
    for _ in range(BATCHES):
        text += " more words"
        label_ms.append(timed(lambda text=text: label.setText(text)))
    pane.close()
    return app_ms, label_ms


class StyledMessage(QFrame):
    """The baseline message: the same widgets, each styled by a style sheet."""

    def __init__(self, text: str, colour: str) -> None:
        super().__init__()
        self.setObjectName("message")
        self.setStyleSheet(
            f"QFrame#message {{ border-left: 4px solid {colour}; border-radius: 4px;"
            " background: palette(base); }"
        )
        layout = QVBoxLayout(self)
        header = QLabel("coder")
        header.setStyleSheet(f"color: {colour}; font-weight: 600;")
        badge = QLabel("coder · code")
        badge.setStyleSheet(
            f"color: white; background: {colour}; border-radius: 8px; padding: 1px 8px;"
        )
        body = QLabel(text)
        body.setWordWrap(True)
        footer = QLabel("code -> coder: preferred")
        footer.setStyleSheet("color: palette(mid); font-size: 11px;")
        for widget in (header, badge, body, footer):
            layout.addWidget(widget)


def new_messages() -> tuple[list[float], list[float]]:
    pane = conversation()

    def add_painted() -> None:
        view = MessageView("coder", "hello", "#3b82f6")
        view.set_badge("coder · code", "#3b82f6")
        view.set_footer("code -> coder: preferred")
        pane._add(view)

    def add_styled() -> None:
        pane._add(StyledMessage("hello", "#3b82f6"))

    painted, styled = [], []
    for _ in range(20):  # interleaved, so both see the same growing chat
        painted.append(timed(add_painted))
        styled.append(timed(add_styled))
    pane.close()
    return painted, styled


def main() -> int:
    QApplication.instance() or QApplication(sys.argv[:1])
    print(f"a conversation of {MESSAGES} answers of {len(ANSWER)} characters, offscreen")
    app_ms, label_ms = token_batches()
    a, b = statistics.median(app_ms), statistics.median(label_ms)
    print(f"token batch into the streaming answer: StreamingText {a:.2f} ms,"
          f" QLabel {b:.2f} ms (median of {BATCHES}); ratio {a / b:.3f}")
    painted, styled = new_messages()
    a, b = statistics.median(painted), statistics.median(styled)
    print(f"new message: painted {a:.2f} ms, style-sheeted {b:.2f} ms"
          f" (median of {len(painted)}); ratio {a / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
