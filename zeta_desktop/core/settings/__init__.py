"""Typed settings, defined once: roles, replicas, the router's thresholds.

The bottom of core: this package imports nothing of the app's, so the fleet,
the router, the config file and the window all read the same definitions.
Reading and writing the file is `core.config`'s job.
"""

from zeta_desktop.core.settings.app import SCHEMA_VERSION, AppConfig
from zeta_desktop.core.settings.roles import (
    AUTO_GPU_LAYERS,
    ROLE_NAME_PATTERN,
    ROLE_NAMES,
    SAMPLING_LIMITS,
    TASK_KIND_NAMES,
    ReplicaConfig,
    RoleConfig,
    default_roles,
    is_endpoint,
)
from zeta_desktop.core.settings.router import (
    OWN_INDEX_MAX_PROMPTS,
    OWN_INDEX_PROMPTS,
    POLICIES,
    THRESHOLD_LIMITS,
    THRESHOLD_SPECS,
    WATCHDOG_LIMITS,
    RouterConfig,
    ThresholdChanges,
    Thresholds,
    ThresholdSpec,
)
from zeta_desktop.core.settings.server import (
    DEFAULT_PORT,
    LOOPBACK_HOSTS,
    SERVER_LIMITS,
    ServerConfig,
)

__all__ = [
    "AUTO_GPU_LAYERS",
    "DEFAULT_PORT",
    "LOOPBACK_HOSTS",
    "OWN_INDEX_MAX_PROMPTS",
    "OWN_INDEX_PROMPTS",
    "POLICIES",
    "ROLE_NAMES",
    "ROLE_NAME_PATTERN",
    "SAMPLING_LIMITS",
    "SCHEMA_VERSION",
    "SERVER_LIMITS",
    "TASK_KIND_NAMES",
    "THRESHOLD_LIMITS",
    "THRESHOLD_SPECS",
    "WATCHDOG_LIMITS",
    "AppConfig",
    "ReplicaConfig",
    "RoleConfig",
    "RouterConfig",
    "ServerConfig",
    "ThresholdChanges",
    "ThresholdSpec",
    "Thresholds",
    "default_roles",
    "is_endpoint",
]
