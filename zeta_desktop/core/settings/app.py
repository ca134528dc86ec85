"""The whole app's settings, as the config file holds them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from zeta_desktop.core.settings.prompt_cache import PromptCacheConfig
from zeta_desktop.core.settings.roles import ReplicaConfig, RoleConfig, default_roles, is_endpoint
from zeta_desktop.core.settings.router import RouterConfig
from zeta_desktop.core.settings.server import ServerConfig

SCHEMA_VERSION = 1


@dataclass
class AppConfig:
    schema_version: int = SCHEMA_VERSION
    roles: dict[str, RoleConfig] = field(default_factory=default_roles)
    router: RouterConfig = field(default_factory=RouterConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    prompt_cache: PromptCacheConfig = field(default_factory=PromptCacheConfig)
    # Folders of GGUF models the model picker scans beside the usual places.
    model_folders: list[str] = field(default_factory=list)

    def with_model_overrides(self, overrides: dict[str, str | None]) -> AppConfig:
        """A copy whose roles use the given model files (for one run, never saved)."""
        result = copy.deepcopy(self)
        for role, path in overrides.items():
            if not path:
                continue
            target = result.roles.setdefault(role, RoleConfig())
            if is_endpoint(path):
                target.model_path, target.replicas = "", [ReplicaConfig(url=path)]
            else:
                target.model_path, target.replicas = str(Path(path).expanduser()), []
        return result
