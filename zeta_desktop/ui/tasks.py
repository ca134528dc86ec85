"""Work off the GUI thread, with the result handed back on it (after Anki's taskman).

`run_in_background(fn, on_done)` runs `fn` on a small thread pool and calls
`on_done(result)` (or `on_error(exc)`) on the GUI thread; `when_done(future,
on_done)` does the same for a Future something else runs (the history
store's writer thread). `run_on_main(fn)` queues `fn` for the GUI thread from
any thread. The GUI thread never waits on a model load, a disk read or a scan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal, Slot

log = logging.getLogger(__name__)

T = TypeVar("T")


class _MainThreadRunner(QObject):
    sig_call = Signal(object)
    """A callable to run on the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self.sig_call.connect(self._on_call, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _on_call(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # a callback's bug must not take the event loop down
            log.exception("a GUI-thread callback failed")


class TaskManager:
    """Created on the GUI thread (once, by the window); usable from any thread."""

    def __init__(self, max_workers: int = 2) -> None:
        self._runner = _MainThreadRunner()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="zeta-task")
        self._closed = False

    def run_on_main(self, fn: Callable[[], None]) -> None:
        self._runner.sig_call.emit(fn)

    def when_done(
        self,
        future: Future[T],
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[T]:
        def report(done: Future[T]) -> None:
            exc = done.exception()
            if exc is None:
                if on_done is not None:
                    result = done.result()
                    self.run_on_main(lambda: on_done(result))
            elif on_error is not None:
                self.run_on_main(lambda: on_error(exc))
            else:
                log.error("background task failed: %s", exc, exc_info=exc)

        future.add_done_callback(report)
        return future

    def run_in_background(
        self,
        fn: Callable[[], T],
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[T]:
        if self._closed:
            future: Future[Any] = Future()
            future.set_exception(RuntimeError("the window is closing"))
            return future
        return self.when_done(self._pool.submit(fn), on_done, on_error)

    def shutdown(self, wait: bool = True) -> None:
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=False)
