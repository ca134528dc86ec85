"""Chat pane costs on the GUI thread, no models: `make bench-chat`.

In a conversation of CHAT_BENCH_MESSAGES finished Markdown answers (each with
prose and a code block), each against its baseline in the same run:

- a token batch into the answer being streamed: the Markdown answer (prose,
  then a code block, then prose) against the plain-text `StreamingText` the
  chat used before (benchmarks/plain_text_baseline.py), batches alternating
  between the two in the same pane;
- a new message: the painted `MessageView` against the same message styled
  with a style sheet per widget;
- opening a conversation of 1,000 Markdown messages: time to the first paint
  and the memory it takes, against opening a two-message one;
- one scroll step (a mouse-wheel notch) over rendered Markdown, bottom to top
  of the 1,000: median and p99 (it includes building what scrolls into view).

Each sample is the call plus the layout and paint it causes (processEvents).
Writes benchmarks/results/chat.json.

`--quick` (or QUICK=1): a conversation of 8 answers, 5 new messages, one
opening of 150 messages (and of two), scrolling over those 150: a smoke run.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from bench_results import quick_parser, write_results
from plain_text_baseline import StreamingText
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QVBoxLayout

from zeta_desktop.ui.chat.chat_pane import ChatPane
from zeta_desktop.ui.chat.message_view import MessageView

MESSAGES = int(os.environ.get("CHAT_BENCH_MESSAGES", "30"))
LONG = 1000
NEW_MESSAGES = 20
OPENINGS = 3
FINISHED = (
    "Here is how it works, with **bold**, *italics* and `inline code`:\n\n"
    + "A paragraph of explanation that wraps over a few lines in the chat. " * 4
    + "\n\n```python\ndef handler(event):\n    total = sum(x * 2 for x in event.values)\n"
    "    return {'total': total, 'count': len(event.values)}\n```\n\n"
    "- first point\n- second point\n"
)
STREAMED = (
    "Sure. Here is a function that does it, and why it is fast:\n\n"
    + "It reads the file once and keeps only what it needs in memory. " * 3
    + "\n\n```python\n"
    + "".join(f"def step_{i}(values):\n    return [v * {i} for v in values if v > {i}]\n\n"
              for i in range(8))
    + "```\n\nEach step filters before it multiplies, so the lists stay short.\n"
)
PIECE = 4  # characters per token
BATCH = 3  # tokens per batch: ~40 ms of three models streaming


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    QApplication.processEvents()
    return (time.perf_counter() - start) * 1000


def conversation(messages: int | None = None) -> ChatPane:
    messages = MESSAGES if messages is None else messages
    pane = ChatPane()
    pane.resize(800, 700)
    pane.show()
    for turn in range(messages):
        pane.add_user_message(f"prompt number {turn}, please")
        pane.add_answer(turn, FINISHED).finish_streaming()
    QApplication.processEvents()
    return pane


class PlainAnswer(MessageView):
    """The baseline: an answer streaming into the old plain-text widget."""

    def __init__(self) -> None:
        super().__init__("coder", "", "#3b82f6")
        self.plain = StreamingText()
        self._layout.insertWidget(1, self.plain)

    def show_text(self) -> None:
        self.plain.set_text(self.text)


def token_batches() -> dict[str, list[float]]:
    pane = conversation()
    markdown = pane.add_pending_answer("md")
    plain = PlainAnswer()
    pane.add_message("plain", lambda: plain, "")
    pane.messages.build("plain", keep=True)
    QApplication.processEvents()
    samples: dict[str, list[float]] = {"markdown": [], "plain": [], "markdown in code": [],
                                       "markdown in prose": []}
    step = PIECE * BATCH
    for end in range(step, len(STREAMED) + step, step):
        piece = STREAMED[end - step:end]
        in_code = STREAMED[:end].count("```") % 2 == 1
        for name, view in (("markdown", markdown), ("plain", plain)):
            view.append(piece)
            ms = timed(view.show_text)
            samples[name].append(ms)
            if name == "markdown":
                samples["markdown in code" if in_code else "markdown in prose"].append(ms)
    pane.close()
    return samples


class StyledMessage(QFrame):
    """The baseline message: the same widgets, each styled by a style sheet."""

    key: object = None
    is_answer = False

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
    count = 0

    def add(make) -> None:  # type: ignore[no-untyped-def]
        nonlocal count
        count += 1
        key = f"new{count}"
        pane.add_message(key, make, "hello")
        pane.messages.scroll_to_bottom()
        pane.messages.build(key)

    def painted() -> MessageView:
        view = MessageView("coder", "hello", "#3b82f6")
        view.set_badge("coder · code", "#3b82f6")
        view.set_footer("code -> coder: preferred")
        return view

    painted_ms, styled_ms = [], []
    for _ in range(NEW_MESSAGES):  # interleaved, so both see the same growing chat
        painted_ms.append(timed(lambda: add(painted)))
        styled_ms.append(timed(lambda: add(lambda: StyledMessage("hello", "#3b82f6"))))
    pane.close()
    return painted_ms, styled_ms


class FirstPaint(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Paint and self.at is None:
            self.at = time.perf_counter()
        return False


def open_conversation(pane: ChatPane, messages: int) -> tuple[float, int]:
    """ms from filling the pane to its first paint; the RSS it added (bytes)."""
    pane.clear()
    QApplication.processEvents()
    gc.collect()
    rss = psutil.Process().memory_info().rss
    painted = FirstPaint()
    pane.messages.installEventFilter(painted)
    start = time.perf_counter()
    for turn in range(messages):
        if turn % 2 == 0:
            pane.add_message(f"q{turn}", lambda t=turn: pane.make_user_view(f"prompt {t}"),
                             f"prompt {turn}")
        else:
            pane.add_message(f"a{turn}", lambda t=turn: _finished(pane, t), FINISHED)
    pane.messages.scroll_to_bottom()
    deadline = time.perf_counter() + 60
    while painted.at is None and time.perf_counter() < deadline:
        QApplication.processEvents()
    if painted.at is None:
        raise SystemExit("the chat never painted")
    pane.messages.removeEventFilter(painted)
    return (painted.at - start) * 1000, psutil.Process().memory_info().rss - rss


def _finished(pane: ChatPane, turn: int) -> MessageView:
    view = pane.make_answer_view(f"a{turn}", FINISHED)
    view.finish_streaming()
    return view


def opening_and_scrolling() -> tuple[dict[str, list[float]], list[float]]:
    pane = ChatPane()
    pane.resize(800, 700)
    pane.show()
    QApplication.processEvents()
    opened: dict[str, list[float]] = {"long ms": [], "long MB": [], "short ms": [],
                                      "short MB": []}
    for _ in range(OPENINGS):
        for name, count in (("short", 2), ("long", LONG)):
            ms, added = open_conversation(pane, count)
            opened[f"{name} ms"].append(ms)
            opened[f"{name} MB"].append(added / 2**20)
    bar = pane.scroll.verticalScrollBar()
    notch = 3 * pane.fontMetrics().lineSpacing()  # one wheel notch: three lines
    steps = []
    while bar.value() > 0 and len(steps) < 3000:
        steps.append(timed(lambda: bar.setValue(bar.value() - notch)))
    pane.close()
    return opened, steps


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    global MESSAGES, LONG, NEW_MESSAGES, OPENINGS
    quick = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    if quick:
        MESSAGES = int(os.environ.get("CHAT_BENCH_MESSAGES", "8"))
        LONG, NEW_MESSAGES, OPENINGS = 150, 5, 1
    QApplication.instance() or QApplication(sys.argv[:1])
    print(f"a conversation of {MESSAGES} Markdown answers (prose, a code block, a list), "
          "offscreen")
    batches = token_batches()
    md, plain = statistics.median(batches["markdown"]), statistics.median(batches["plain"])
    print(f"token batch ({BATCH} tokens) into the streaming answer, median of "
          f"{len(batches['plain'])}: Markdown {md:.3f} ms (in prose "
          f"{statistics.median(batches['markdown in prose']):.3f}, in the code block "
          f"{statistics.median(batches['markdown in code']):.3f}), plain StreamingText "
          f"{plain:.3f} ms; ratio {md / plain:.2f} (target <= 1.5)")
    print(f"  p90: Markdown {pct(batches['markdown'], 90):.3f} ms, plain "
          f"{pct(batches['plain'], 90):.3f} ms")
    painted, styled = new_messages()
    a, b = statistics.median(painted), statistics.median(styled)
    print(f"new message: painted {a:.2f} ms, style-sheeted {b:.2f} ms"
          f" (median of {len(painted)}); ratio {a / b:.2f}")
    opened, steps = opening_and_scrolling()
    runs = ", ".join(f"{x:.0f}" for x in opened["long ms"])
    print(f"opening a conversation of {LONG} Markdown messages: first paint "
          f"{statistics.median(opened['long ms']):.0f} ms (runs {runs}), "
          f"+{statistics.median(opened['long MB']):.1f} MB; a two-message one "
          f"{statistics.median(opened['short ms']):.1f} ms, "
          f"+{statistics.median(opened['short MB']):.1f} MB")
    print(f"one scroll step (a wheel notch) over the {LONG}, bottom to top, {len(steps)} steps: "
          f"median {statistics.median(steps):.2f} ms, p99 {pct(steps, 99):.2f} ms, "
          f"max {max(steps):.2f} ms")
    report = {
        "quick": quick,
        "messages": MESSAGES,
        "token_batch": {
            "tokens_per_batch": BATCH,
            "batches": len(batches["plain"]),
            "markdown_median_ms": md,
            "markdown_in_prose_median_ms": statistics.median(batches["markdown in prose"]),
            "markdown_in_code_median_ms": statistics.median(batches["markdown in code"]),
            "plain_median_ms": plain,
            "ratio_markdown_to_plain": md / plain,
            "markdown_p90_ms": pct(batches["markdown"], 90),
            "plain_p90_ms": pct(batches["plain"], 90),
        },
        "new_message": {"n": len(painted), "painted_median_ms": a, "styled_median_ms": b,
                        "ratio_painted_to_styled": a / b},
        "open_conversation": {
            "long_messages": LONG,
            "long_first_paint_ms": statistics.median(opened["long ms"]),
            "long_first_paint_ms_runs": opened["long ms"],
            "long_added_mb": statistics.median(opened["long MB"]),
            "short_first_paint_ms": statistics.median(opened["short ms"]),
            "short_added_mb": statistics.median(opened["short MB"]),
        },
        "scroll_step": {"steps": len(steps), "median_ms": statistics.median(steps),
                        "p99_ms": pct(steps, 99), "max_ms": max(steps)},
    }
    print(f"wrote {write_results('chat', report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
