from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("GGML_NO_BACKTRACE", "1")

import pytest
from tiny_gguf import write_tiny_llama

from zeta_desktop.core.settings import AppConfig, RoleConfig


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _session_cache: Path) -> None:
    """No test reads or writes the real user's settings.

    The cache (which model files passed their load check) lasts the session:
    each model file is checked in a child process once, not once per test.
    """
    monkeypatch.setenv("ZETA_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("ZETA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ZETA_CACHE_DIR", str(_session_cache))


@pytest.fixture(scope="session", autouse=True)
def _no_collection_on_other_threads() -> Iterator[None]:
    """As in the app (MainWindow's GarbageCollector): no automatic collection,
    which would run on whichever thread allocated last, model threads included,
    and free Qt objects there. Each test's garbage is freed below, on this thread."""
    import gc

    gc.disable()
    yield
    gc.enable()


@pytest.fixture(autouse=True)
def _qt_garbage_freed_on_the_main_thread() -> Iterator[None]:
    """Free a test's cyclic garbage here, on the main thread.

    A window or widget a test made is owned by Python; if it sits in a
    reference cycle (a connected lambda), the garbage collector frees it
    whenever it next runs, on whatever thread that is. On a model or store
    thread of a later test, destroying Qt widgets deadlocks against the main
    thread (seen: ~QMenu on the store thread waiting for the GIL while the
    main thread, holding it, waited for Qt's mutex).
    """
    import gc

    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _no_leaked_model_threads() -> Iterator[None]:
    """Fail a test that leaves a model worker thread running."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t for t in threading.enumerate()
        if t not in before and t.name.startswith("zeta-") and t.is_alive()
    ]
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-chat.gguf")


@pytest.fixture(scope="session")
def tiny_embed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(
        tmp_path_factory.mktemp("models") / "tiny-embed.gguf", seed=1, pooling_mean=True
    )


@pytest.fixture
def tiny_config(tiny_model: Path) -> AppConfig:
    """All three roles on the tiny model: fast, and every role really runs."""
    config = AppConfig(
        roles={
            "coder": RoleConfig(model_path=str(tiny_model), n_ctx=512, n_threads=1, max_tokens=32),
            "embedder": RoleConfig(
                model_path=str(tiny_model), n_ctx=512, n_threads=1, max_tokens=32, can_embed=True
            ),
            "reasoner": RoleConfig(
                model_path=str(tiny_model), n_ctx=512, n_threads=1, max_tokens=32
            ),
        }
    )
    # The tiny model's embeddings are random: classify by rules alone, so
    # routing in these tests is deterministic. Semantic tests opt in.
    config.router.semantic = False
    return config


def build_window(qtbot, config: AppConfig, tmp_path: Path, loader=None):  # type: ignore[no-untyped-def]
    """The real main window over `config`, saved and read back as the app does; not started."""
    from zeta_desktop.core.config import load_config, save_config
    from zeta_desktop.core.engines.llama import LlamaEngine
    from zeta_desktop.ui.app import compose_window

    path = tmp_path / "config.toml"
    save_config(config, path)
    loaded = load_config(path)
    win = compose_window(loaded, loaded.config, loader or LlamaEngine.load)
    qtbot.addWidget(win)
    return win


def start_and_wait(qtbot, win):  # type: ignore[no-untyped-def]
    win.show()
    win.start_models()
    qtbot.waitUntil(
        lambda: all(c.state == "ready" for c in win.roles_panel.cards.values())
        and win.history.restored,
        timeout=60_000,
    )
    return win


@pytest.fixture
def window(qtbot, tiny_config: AppConfig, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The real main window over the tiny model, every role loaded."""
    win = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path))
    yield win
    win.close()


@pytest.fixture
def gated_window(qtbot, tiny_config: AppConfig, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The real window whose answers hold after 12 tokens until Stop (or `gate.release`).

    For tests that need an answer still streaming when they look: the tiny
    model would otherwise finish before the check.
    """
    from gated_engine import gated_loader

    gate = threading.Event(), threading.Event()
    win = start_and_wait(qtbot, build_window(qtbot, tiny_config, tmp_path, gated_loader(12, *gate)))
    win.gate_reached, win.gate_release = gate  # type: ignore[attr-defined]
    yield win
    gate[1].set()
    win.close()


@pytest.fixture
def docs_config(tiny_config: AppConfig) -> AppConfig:
    """The tiny model, with the demo embedder embedding: for documents."""
    from zeta_desktop.core.models.files import find_demo_embedder

    embedder = find_demo_embedder()
    assert embedder is not None
    tiny_config.roles["embedder"] = RoleConfig(
        model_path=str(embedder), n_ctx=512, n_threads=1, can_embed=True, can_chat=False)
    for role in ("coder", "reasoner"):
        tiny_config.roles[role].n_ctx = 1024
    return tiny_config
