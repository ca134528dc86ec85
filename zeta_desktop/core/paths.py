"""A free name beside a file, for keeping a copy of it (never overwriting one)."""

from __future__ import annotations

import time
from pathlib import Path


def unused_sibling(path: Path, tag: str) -> Path:
    """`name.<tag>-<time>` beside `path`, with a counter if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{counter}")
        counter += 1
    return target
