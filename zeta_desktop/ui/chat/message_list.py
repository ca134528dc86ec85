"""The chat's messages as a window of widgets: every message is known, but
only those in and near the view have widgets.

A conversation of a thousand messages would otherwise be a thousand message
widgets, each laid out whenever the chat's layout changes. Here each message
is an entry with a builder; its height is measured once built (and kept per
width) or estimated from its text until then. Scrolling builds what comes
into view and lets go of what is far away (a few screens are kept, so
scrolling back is free). An answer still streaming is never let go.

Heights that change (a message built, an answer growing) never move what
the user is reading: the first message in view keeps its place on screen,
unless the view is at the bottom, where it stays at the bottom.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QScrollArea, QWidget

from zeta_desktop.ui.chat.message_view import MessageView

MARGIN, SPACING = 9, 8
KEPT_SCREENS = 3  # built messages this many screens away are let go
BUILT_AT_MOST = 80  # built and hidden, kept for scrolling back


@dataclass(eq=False)
class Entry:
    index: int
    key: object
    build: Callable[[], MessageView]
    text: str  # for the height guess until the message is built
    view: MessageView | None = None
    heights: dict[int, int] = field(default_factory=dict)  # measured, per width
    guesses: dict[int, int] = field(default_factory=dict)  # estimated, per width
    keep: bool = False  # built and kept while it streams


class MessageList(QWidget):
    sig_built = Signal(object, object)
    """A message's widget was built (key, view)."""
    sig_released = Signal(object)
    """A message's widget was let go (key)."""
    sig_at_bottom = Signal(bool)
    """The view reached the newest message (True) or left it (False)."""

    def __init__(self, area: QScrollArea) -> None:
        super().__init__()
        self._area = area
        self._entries: list[Entry] = []
        self._by_key: dict[object, Entry] = {}
        self._tops: list[int] = []
        self._heights: list[int] = []  # per entry, at self._width
        self._built: list[Entry] = []  # the entries with widgets
        self._hidden: list[Entry] = []  # built, out of view, oldest first
        self._dirty = True  # heights may have changed: measure before placing
        self._width = 0
        self._at_bottom = True
        self._placing = False
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self.relayout)
        area.setWidget(self)
        area.setWidgetResizable(False)
        # Always there: a bar that came and went changed the width, and with it
        # every message's height.
        area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        # Opaque, so a scroll moves the pixels already drawn and paints only
        # the strip that comes into view, not every message on screen.
        self.setAutoFillBackground(True)
        # Its content is anchored at the top: growing taller (a new message)
        # paints only the new part, not everything above it.
        self.setAttribute(Qt.WidgetAttribute.WA_StaticContents)
        area.viewport().installEventFilter(self)
        bar = area.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.sliderPressed.connect(self._on_scrolled)

    # -- entries ------------------------------------------------------------------------

    def add(self, key: object, build: Callable[[], MessageView], text: str) -> None:
        entry = Entry(len(self._entries), key, build, text)
        self._entries.append(entry)
        self._by_key[key] = entry
        self._dirty = True
        self._schedule()

    def clear(self) -> None:
        for entry in self._entries:
            self._release(entry)
        self._entries.clear()
        self._by_key.clear()
        self._hidden.clear()
        self._built.clear()
        self._tops, self._heights = [], []
        self._at_bottom = True
        self.setFixedHeight(0)

    def keys(self) -> list[object]:
        return [e.key for e in self._entries]

    def view(self, key: object) -> MessageView | None:
        entry = self._by_key.get(key)
        return entry.view if entry is not None else None

    def views(self) -> list[MessageView]:
        """The messages that have widgets now, in order."""
        return [e.view for e in self._entries if e.view is not None]

    def build(self, key: object, keep: bool = False) -> MessageView | None:
        """The message's widget, built now if it was not (kept while `keep`)."""
        entry = self._by_key.get(key)
        if entry is None:
            return None
        entry.keep = entry.keep or keep
        if entry.view is None:
            self._build(entry)
            self._dirty = True
            self._schedule()
        return entry.view

    def let_go_when_out_of_view(self, key: object) -> None:
        entry = self._by_key.get(key)
        if entry is not None:
            entry.keep = False

    # -- scrolling ------------------------------------------------------------------------

    @property
    def at_bottom(self) -> bool:
        return self._at_bottom

    def scroll_to_bottom(self) -> None:
        self._set_at_bottom(True)
        self._dirty = True
        self.relayout()

    def scroll_to(self, key: object, offset: int = 40) -> None:
        """Bring a message into view (a search hit): its top `offset` px below the view's."""
        entry = self._by_key.get(key)
        if entry is None:
            return
        index = entry.index
        self._set_at_bottom(False)
        self._dirty = True
        self.relayout()
        self._scroll_value(self._tops[index] - offset)
        self._dirty = True
        self.relayout()

    def position(self) -> tuple[object, int] | None:
        """What is at the top of the view: (key, px into it); None at the bottom."""
        if self._at_bottom or not self._entries:
            return None
        value = self._area.verticalScrollBar().value()
        index = max(0, bisect.bisect_right(self._tops, value) - 1)
        return self._entries[index].key, value - self._tops[index]

    def restore(self, position: tuple[object, int] | None) -> None:
        """Back to a place `position()` gave (the bottom for None or a key not here)."""
        if position is None or position[0] not in self._by_key:
            self.scroll_to_bottom()
            return
        key, into = position
        self.scroll_to(key, -into)

    # -- layout -----------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is self._area.viewport() and event.type() == QEvent.Type.Resize:
            self._dirty = True
            self._schedule()
        return False

    def event(self, event: QEvent) -> bool:
        # A message's size hint changed (it was built, an answer grew a line).
        if event.type() == QEvent.Type.LayoutRequest and not self._placing:
            self._dirty = True
            self._schedule()
        return super().event(event)

    def _schedule(self) -> None:
        if not self._pending.isActive():
            self._pending.start()

    def relayout(self) -> None:
        """Measure, keep the reader's place, build what is in view, place it."""
        self._pending.stop()
        if self._placing:
            return
        self._placing = True
        try:
            for _ in range(3):  # building messages changes heights: settle
                if not self._place_once():
                    break
        finally:
            self._placing = False

    def _place_once(self) -> bool:
        """One pass; True if it built messages (heights to measure again).

        A scroll alone measures nothing and looks only at the messages in
        reach of the view; a change in size measures what is near the view
        (a message out of reach keeps the height it had) and moves the rest."""
        bar = self._area.verticalScrollBar()
        width = max(1, self._area.viewport().width())
        screen = self._area.viewport().height()
        if self._dirty or width != self._width:
            self._measure(width, bar.value() - screen, bar.value() + 2 * screen)
        tops = self._tops
        view_top = bar.value()
        view_bottom = view_top + screen
        first = max(0, bisect.bisect_right(tops, view_top - screen) - 1)
        last = bisect.bisect_left(tops, view_bottom + screen)
        built = False
        for entry in self._entries[first:last]:
            if not self._is_near(entry, view_top, view_bottom):
                # The first in range can end above the reach (in the gap before
                # the next): shown here and hidden by _let_go_far, each pass
                # asked for the next, a thousand passes a second.
                continue
            if entry.view is None:
                self._build(entry)
                built = True
            elif entry.view.isHidden():
                entry.view.show()
                if entry in self._hidden:
                    self._hidden.remove(entry)
            self._put(entry, width)
        self._let_go_far(view_top, view_bottom)
        if built:
            self._dirty = True
        return built

    def _measure(self, width: int, near_top: int, near_bottom: int) -> None:
        bar = self._area.verticalScrollBar()
        anchor = None
        if not self._at_bottom and self._tops:
            value = bar.value()
            index = max(0, min(len(self._entries) - 1, bisect.bisect_right(self._tops, value) - 1))
            anchor = (index, value - self._tops[index])
        heights = self._heights if width == self._width else []
        changed = len(heights)  # the first entry whose height is new
        for entry in self._built:  # only built messages change height on their own
            if entry.index >= len(heights):
                continue
            top = self._tops[entry.index]
            if heights[entry.index] < 0 or entry.keep or near_top - 2000 < top < near_bottom + 2000:
                height = self._height(entry, width, measure=True)
                if height != heights[entry.index]:
                    heights[entry.index] = height
                    changed = min(changed, entry.index)
        for entry in self._entries[len(heights):]:
            heights.append(self._height(entry, width, measure=entry.view is not None))
        tops = self._tops[:changed] if width == self._width else []
        top = tops[-1] + heights[len(tops) - 1] + SPACING if tops else MARGIN
        for index in range(len(tops), len(heights)):
            tops.append(top)
            top += heights[index] + SPACING
        self._tops, self._heights, self._width, self._dirty = tops, heights, width, False
        total = top - SPACING + MARGIN if self._entries else 0
        self.setFixedSize(width, max(total, 0))
        for entry in self._built:
            if entry.index >= changed:
                self._put(entry, width)
        if self._at_bottom:
            self._scroll_value(bar.maximum())
        elif anchor is not None and anchor[0] < len(tops):
            self._scroll_value(tops[anchor[0]] + anchor[1])

    def _put(self, entry: Entry, width: int) -> None:
        assert entry.view is not None
        height = self._heights[entry.index] if entry.index < len(self._heights) else (
            self._height(entry, width, measure=False))
        entry.view.setGeometry(MARGIN, self._tops[entry.index], width - 2 * MARGIN, height)

    def _height(self, entry: Entry, width: int, measure: bool = True) -> int:
        inner = max(1, width - 2 * MARGIN)
        view = entry.view
        if view is not None and (measure or width not in entry.heights):
            if view.hasHeightForWidth():
                height = view.heightForWidth(inner)
            else:
                height = view.sizeHint().height()
            entry.heights[width] = max(height, view.minimumSizeHint().height())
            return entry.heights[width]
        known = entry.heights.get(width) or entry.guesses.get(width)
        if known is None:
            known = entry.guesses[width] = self._estimate(entry.text, inner)
        return known

    def _estimate(self, text: str, width: int) -> int:
        metrics = self.fontMetrics()
        per_line = max(20, (width - 30) // max(1, metrics.averageCharWidth()))
        lines = sum(max(1, math.ceil(len(line) / per_line)) for line in text.split("\n"))
        return lines * metrics.lineSpacing() + 48  # header, margins, footer

    def _build(self, entry: Entry) -> None:
        view = entry.build()
        view.setParent(self)
        entry.view = view
        self._built.append(entry)
        width = max(1, self._width)
        entry.heights.pop(width, None)
        view.setGeometry(MARGIN, self._tops[entry.index] if entry.index < len(self._tops)
                         else 0, width - 2 * MARGIN, self._height(entry, width))
        if entry.index < len(self._heights):
            self._heights[entry.index] = -1  # measured at the next pass
        view.show()
        self.sig_built.emit(entry.key, view)

    def _bottom(self, entry: Entry) -> int:
        height = self._heights[entry.index] if entry.index < len(self._heights) else -1
        if height < 0 and entry.view is not None:  # built this pass: measured at the next
            height = entry.view.height()
        return self._tops[entry.index] + max(height, 0)

    def _is_near(self, entry: Entry, view_top: int, view_bottom: int) -> bool:
        """Within a screen of the view: built and shown. The one rule for both
        showing and hiding, so a pass never undoes what the one before did."""
        screen = max(1, view_bottom - view_top)
        return (self._tops[entry.index] < view_bottom + screen
                and self._bottom(entry) > view_top - screen)

    def _let_go_far(self, view_top: int, view_bottom: int) -> None:
        screen = max(1, view_bottom - view_top)
        for entry in list(self._built):
            if entry.view is None or entry.keep:
                continue
            far = self._tops[entry.index] > view_bottom + KEPT_SCREENS * screen or (
                self._bottom(entry) < view_top - KEPT_SCREENS * screen)
            near = self._is_near(entry, view_top, view_bottom)
            if far:
                self._release(entry)
            elif not near and entry.view.isVisible():
                entry.view.hide()
                self._hidden.append(entry)
        while len(self._hidden) > BUILT_AT_MOST:
            self._release(self._hidden.pop(0))

    def _release(self, entry: Entry) -> None:
        view, entry.view = entry.view, None
        if entry in self._hidden:
            self._hidden.remove(entry)
        if entry in self._built:
            self._built.remove(entry)
        if view is None:
            return
        self.sig_released.emit(entry.key)
        view.hide()
        # Still owned by a Qt parent until deleteLater: a parentless widget is
        # Python's to free, and the garbage collector can run inside a Qt
        # signal disconnect, where destroying a widget deadlocks on Qt's mutex.
        view.deleteLater()

    def _scroll_value(self, value: int) -> None:
        bar = self._area.verticalScrollBar()
        bar.setValue(max(bar.minimum(), min(bar.maximum(), int(value))))

    def _on_scrolled(self, *_args: object) -> None:
        bar = self._area.verticalScrollBar()
        if not self._placing:
            self._set_at_bottom(bar.value() >= bar.maximum() - 4)
            self._schedule()

    def _set_at_bottom(self, at_bottom: bool) -> None:
        if at_bottom != self._at_bottom:
            self._at_bottom = at_bottom
            self.sig_at_bottom.emit(at_bottom)
