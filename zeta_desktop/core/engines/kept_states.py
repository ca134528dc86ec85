"""Turn on saved KV states (kv_store.py) for every local model a loader loads,
with the budgets of `[prompt_cache]`. Each engine spills into its own folder
under the user cache dir; folders left by a process that has ended are removed."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.settings.prompt_cache import PromptCacheConfig

_numbers = itertools.count(1)


def states_dir() -> Path:
    return Path(platformdirs.user_cache_dir("zeta-desktop", appauthor=False)) / "kv-states"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's: not ours to remove
    return True


def remove_orphans(base: Path) -> None:
    """Folders named `<pid>-<n>` of processes no longer running."""
    if not base.is_dir():
        return
    for folder in base.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def keeping_states(loader: Callable[[Path, LoadSettings], Any], cache: PromptCacheConfig,
                   base: Path | None = None) -> Callable[[Path, LoadSettings], Any]:
    """`loader`, whose engines that can keep states (LlamaEngine) keep them."""
    if cache.ram_bytes <= 0:
        return loader
    root = base if base is not None else states_dir()
    remove_orphans(root)

    def load(path: Path, settings: LoadSettings) -> Any:
        engine = loader(path, settings)
        keep = getattr(engine, "keep_states", None)
        if keep is not None and not settings.embedding:
            folder = root / f"{os.getpid()}-{next(_numbers)}" if cache.disk_bytes > 0 else None
            keep(cache.ram_bytes, cache.disk_bytes, folder)
        return engine
    return load
