"""Saved KV states of local models (`[prompt_cache]` in the config file): a
conversation a model leaves is kept, in RAM up to `ram_mb` and on disk up to
`disk_mb`, so it is not read again when it comes back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# name: (low, high) in MB that the config file accepts
PROMPT_CACHE_LIMITS: dict[str, tuple[int, int]] = {
    "ram_mb": (0, 1 << 20),
    "disk_mb": (0, 1 << 24),
}


@dataclass
class PromptCacheConfig:
    enabled: bool = True
    ram_mb: int = 512
    disk_mb: int = 4096

    @property
    def ram_bytes(self) -> int:
        return self.ram_mb << 20 if self.enabled else 0

    @property
    def disk_bytes(self) -> int:
        return self.disk_mb << 20 if self.enabled else 0


def read_prompt_cache(raw: Any, where: str, problems: list[str]) -> PromptCacheConfig:
    """The table as written; a bad value is a problem and keeps its default."""
    cache = PromptCacheConfig()
    if not isinstance(raw, dict):
        problems.append(f"{where}: [prompt_cache] must be a table; using defaults for it")
        return cache
    for key, value in raw.items():
        if key == "enabled":
            if isinstance(value, bool):
                cache.enabled = value
            else:
                problems.append(f"{where}: prompt_cache.enabled must be true or false, "
                                f"got {value!r}")
        elif key in PROMPT_CACHE_LIMITS:
            low, high = PROMPT_CACHE_LIMITS[key]
            if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
                setattr(cache, key, value)
            else:
                problems.append(f"{where}: prompt_cache.{key} must be a whole number of MB "
                                f"from {low} to {high}, got {value!r}; "
                                f"using {getattr(cache, key)}")
        else:
            problems.append(f"{where}: prompt_cache.{key} is not a known setting; ignored")
    return cache
