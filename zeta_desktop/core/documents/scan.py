"""Which files a collection holds on disk, and which of them changed.

A change is seen by size and modification time, then confirmed by the
content's SHA-256: a file copied or touched with the same bytes is not
embedded again. Folders are walked without following links (no loops), and
hidden folders and the usual build and dependency folders are skipped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from zeta_desktop.core.documents.extract import kind_of
from zeta_desktop.core.documents.index_db import StoredFile

SKIPPED_FOLDERS = {
    "node_modules", "__pycache__", "venv", ".venv", "site-packages", "dist", "build",
    "target", ".git", ".hg", ".svn", ".tox", ".mypy_cache", ".pytest_cache",
}
MAX_FILES = 200_000  # a folder past this is cut short, and says so


@dataclass(frozen=True)
class FileOnDisk:
    path: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Changes:
    changed: list[FileOnDisk]  # new, or size/time differ (content still to compare)
    removed: list[str]  # stored, gone from disk or from the sources
    unchanged: int
    missing_sources: list[str]  # a folder or file the user added that is not there


def files_under(sources: Iterable[str]) -> tuple[list[FileOnDisk], list[str]]:
    """Every file the sources hold that the app reads, and sources not found.
    A file the user named is included whatever its kind (and listed if unreadable)."""
    found: dict[str, FileOnDisk] = {}
    missing: list[str] = []
    for source in sources:
        root = Path(source)
        if root.is_file():
            _add(found, root)
        elif root.is_dir():
            for folder, subfolders, names in os.walk(root, followlinks=False):
                subfolders[:] = sorted(d for d in subfolders
                                       if d not in SKIPPED_FOLDERS and not d.startswith("."))
                for name in sorted(names):
                    if name.startswith(".") or kind_of(Path(name)) is None:
                        continue
                    _add(found, Path(folder) / name)
                    if len(found) >= MAX_FILES:
                        return list(found.values()), missing
        else:
            missing.append(source)
    return list(found.values()), missing


def _add(found: dict[str, FileOnDisk], path: Path) -> None:
    try:
        stat = path.stat()
    except OSError:
        # Unreadable metadata: listed (with the reason) when it is read.
        found[str(path)] = FileOnDisk(str(path), -1, -1.0)
        return
    found[str(path)] = FileOnDisk(str(path), stat.st_size, stat.st_mtime)


def compare(on_disk: list[FileOnDisk], missing: list[str],
            stored: dict[str, StoredFile]) -> Changes:
    paths = {f.path for f in on_disk}
    changed = [f for f in on_disk
               if (s := stored.get(f.path)) is None or s.size != f.size or s.mtime != f.mtime
               or f.size < 0]
    removed = sorted(p for p in stored if p not in paths)
    return Changes(changed, removed, len(on_disk) - len(changed), missing)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
