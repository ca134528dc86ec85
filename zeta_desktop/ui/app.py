"""Starting the Qt application: checks first, then the window, then the models."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from zeta_desktop import APP_ID, APP_NAME, __version__
from zeta_desktop.core.chat.api import EngineLoader, LoadedConfig
from zeta_desktop.core.settings import AppConfig

if TYPE_CHECKING:
    from zeta_desktop.ui.main_window import MainWindow


def make_application() -> object:
    # Qt's raster engine hands every fill of 96+ rows to a thread pool and waits
    # for it. For this window's fills (a scroll bar, a message) the hand-off
    # costs more than the fill, and with the cores busy decoding it waits for
    # a thread to be scheduled: serial, a repaint of the whole window took
    # half the time under load (benchmarks/paint_pool.py). Read once, when Qt
    # first paints, so before anything else.
    os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    from PySide6.QtGui import QIcon

    from zeta_desktop.core.chat.api import resource_path

    icon = resource_path(f"icons/hicolor/256x256/apps/{APP_ID}.png")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def _close_on_terminate(window: object) -> None:
    """Ctrl+C or SIGTERM in the terminal closes the window cleanly (threads joined)."""
    import signal

    from PySide6.QtCore import QTimer

    def request_close(_signum: int, _frame: object) -> None:
        QTimer.singleShot(0, window.close)  # type: ignore[attr-defined]

    signal.signal(signal.SIGINT, request_close)
    signal.signal(signal.SIGTERM, request_close)
    # Python runs signal handlers only between bytecodes: a slow idle timer
    # gives the interpreter a chance while Qt's loop is waiting.
    timer = QTimer(window)  # type: ignore[arg-type]
    timer.timeout.connect(lambda: None)
    timer.start(250)


def settle_garbage_collector() -> None:
    """Park everything alive after start-up where the collector no longer walks it.

    The window, its Qt wrappers, numpy and pyqtgraph leave some hundred
    thousand objects that live as long as the app, and every full (oldest
    generation) collection walked them all on whichever thread it hit: about
    30 ms on the GUI thread, the worst stall `make bench-ui` saw. gc.freeze()
    moves them to a permanent generation; later garbage is collected as usual.
    """
    import gc

    gc.collect()
    gc.freeze()


def compose_window(
    loaded: LoadedConfig, run_config: AppConfig, engine_loader: EngineLoader,
    keep_history: bool = True, history_path: Path | None = None,
) -> MainWindow:
    """The core behind its door, and the window over it (as napari hands its
    window a viewer). `keep_history=False`: nothing is read or saved."""
    from zeta_desktop.core.chat.api import open_chat
    from zeta_desktop.ui.main_window import MainWindow

    api = open_chat(loaded, run_config, engine_loader, keep_history=keep_history,
                    history_path=history_path)
    return MainWindow(api)


def run_gui(loaded: LoadedConfig, run_config: AppConfig, engine_loader: EngineLoader,
            files: list[Path] | None = None) -> int:
    """`files`: from the command line (or the desktop's "Open with"); handed to
    the running app when there is one."""
    from zeta_desktop.ui.platform_check import display_problem

    problem = display_problem()
    if problem:
        print(f"zeta-desktop: cannot open a window.\n{problem}", file=sys.stderr)
        return 2
    app = make_application()
    from PySide6.QtCore import QTimer

    from zeta_desktop.core.chat.api import user_data_dir
    from zeta_desktop.ui.single_instance import SingleInstance

    instance = SingleInstance(user_data_dir())
    if not instance.primary:
        heard = instance.ask_primary_to_raise(files or [])
        print(
            "zeta-desktop: already running"
            + ((" (the files went to its window)" if files else
                " (its window was brought forward)") if heard else "")
            + f"; one app at a time uses the history in {user_data_dir()}",
            file=sys.stderr,
        )
        return 0
    window = compose_window(loaded, run_config, engine_loader)
    instance.sig_raise.connect(lambda: bring_forward(window))
    from zeta_desktop.ui.open_files import FileOpener

    opener = FileOpener(window)
    instance.sig_open.connect(lambda paths: opener.open([Path(p) for p in paths]))
    window.show()
    _close_on_terminate(window)
    # Load after the first paint so the window appears at once.
    QTimer.singleShot(0, window.start_models)
    QTimer.singleShot(0, window.start_serving)  # the Server switch, if it was left on
    QTimer.singleShot(0, settle_garbage_collector)
    if files:  # after the models start: a picked model or an import finds them there
        QTimer.singleShot(0, lambda: opener.open(files))
    probe_prompt = os.environ.get("ZETA_STARTUP_PROBE")
    if probe_prompt:
        from zeta_desktop.ui import startup_probe

        startup_probe.attach(window, probe_prompt)
    code = app.exec()  # type: ignore[attr-defined]
    window.shutdown()
    instance.release()
    return int(code)


def bring_forward(window: object) -> None:
    window.showNormal()  # type: ignore[attr-defined]
    window.raise_()  # type: ignore[attr-defined]
    window.activateWindow()  # type: ignore[attr-defined]


def run_self_test_with_window(
    loaded: LoadedConfig, run_config: AppConfig, engine_loader: EngineLoader
) -> int:
    """Build the real window offscreen and test the models through its worker threads."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = make_application()
    # The self-test talks to the workers directly and never opens the user's
    # history (an app may be running on it).
    window = compose_window(loaded, run_config, engine_loader, keep_history=False)
    window.start_models()
    try:
        code = window.api.self_test(lambda line: print(line, flush=True))
        from zeta_desktop.server.self_test import server_self_test

        code |= server_self_test(window.api, lambda line: print(line, flush=True))
        code |= _markdown_self_test(window)
    finally:
        window.close()
        window.shutdown()
        app.processEvents()  # type: ignore[attr-defined]
    print(f"window: ok ({os.environ['QT_QPA_PLATFORM']})", flush=True)
    return code


def _markdown_self_test(window) -> int:  # type: ignore[no-untyped-def]
    """An answer with a table and a Python block renders, highlighted (a frozen app
    must carry pygments' lexers)."""
    view = window.chat.add_answer("self-test", "| a | b |\n| --- | --- |\n| 1 | 2 |\n\n"
                                  "```python\ndef f(x):\n    return x\n```")
    view.finish_streaming()
    blocks = view.answer.code_blocks()
    lexer = blocks[0].highlighter.lexer.name if blocks else "none"
    ok = lexer == "Python" and len(view.answer.prose_views()) == 1
    print(f"{'ok  ' if ok else 'FAIL'} markdown: a table and a code block ({lexer} lexer)",
          flush=True)
    return 0 if ok else 1
