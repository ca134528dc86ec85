"""`[prompt_cache]` in the config file: read, checked, written back."""

from __future__ import annotations

import tomllib
from pathlib import Path

from zeta_desktop.core.config import config_to_dict, parse_config
from zeta_desktop.core.settings.prompt_cache import PromptCacheConfig

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "resources" / "default-config.toml"


def test_the_shipped_file_has_the_defaults() -> None:
    config, problems = parse_config(tomllib.loads(DEFAULT_CONFIG.read_text()), "default")
    assert not problems
    assert config.prompt_cache == PromptCacheConfig()


def test_budgets_are_read_and_written_back() -> None:
    raw = {"prompt_cache": {"enabled": True, "ram_mb": 64, "disk_mb": 0}}
    config, problems = parse_config(raw, "config.toml")
    assert not problems
    assert config.prompt_cache.ram_bytes == 64 << 20 and config.prompt_cache.disk_bytes == 0
    again, _ = parse_config(config_to_dict(config), "saved")
    assert again.prompt_cache == config.prompt_cache


def test_off_means_no_budget() -> None:
    config, _ = parse_config({"prompt_cache": {"enabled": False}}, "config.toml")
    assert config.prompt_cache.ram_bytes == 0 and config.prompt_cache.disk_bytes == 0


def test_bad_values_are_problems_and_keep_the_defaults() -> None:
    raw = {"prompt_cache": {"enabled": "yes", "ram_mb": -1, "disk_mb": 2.5, "size": 3}}
    config, problems = parse_config(raw, "config.toml")
    assert config.prompt_cache == PromptCacheConfig()
    assert len(problems) == 4
    assert any("prompt_cache.ram_mb" in p and "-1" in p for p in problems)
    assert any("prompt_cache.size is not a known setting" in p for p in problems)
    config, problems = parse_config({"prompt_cache": 7}, "config.toml")
    assert config.prompt_cache == PromptCacheConfig() and "must be a table" in problems[0]
