"""The config file: typed settings (`core.settings`) read from and saved as
TOML in the platform config directory.

A bad file never stops the app: every field that cannot be read falls back to
its default, the problem is reported with the file and key, and the original
file is kept as a backup before anything overwrites it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from zeta_desktop.core.engines.endpoint import EndpointError, replica_spec
from zeta_desktop.core.paths import unused_sibling
from zeta_desktop.core.settings import (
    AUTO_GPU_LAYERS,
    OWN_INDEX_MAX_PROMPTS,
    POLICIES,
    ROLE_NAME_PATTERN,
    SAMPLING_LIMITS,
    SCHEMA_VERSION,
    SERVER_LIMITS,
    TASK_KIND_NAMES,
    THRESHOLD_LIMITS,
    WATCHDOG_LIMITS,
    AppConfig,
    ReplicaConfig,
    RoleConfig,
    RouterConfig,
    ServerConfig,
    default_roles,
)
from zeta_desktop.core.settings.prompt_cache import read_prompt_cache

CONFIG_FILENAME = "config.toml"
_APP_DIR_NAME = "zeta-desktop"


@dataclass
class LoadedConfig:
    config: AppConfig
    path: Path
    problems: list[str]
    backup_path: Path | None = None


def default_config_path() -> Path:
    override = os.environ.get("ZETA_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(_APP_DIR_NAME, appauthor=False)) / CONFIG_FILENAME


def user_data_dir() -> Path:
    override = os.environ.get("ZETA_DATA_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(_APP_DIR_NAME, appauthor=False))


_FIELD_RULES: dict[str, tuple[type, Any]] = {
    # field: (type, minimum) ; minimum None means no bound
    "model_path": (str, None),
    "n_ctx": (int, 128),
    "n_gpu_layers": (int, -1),
    "n_threads": (int, 0),
    "can_chat": (bool, None),
    "can_embed": (bool, None),
    "max_tokens": (int, 1),
    "temperature": (float, 0.0),
    "low_priority": (bool, None),
    "preference": (dict, None),
    "replicas": (list, None),
    "idle_unload_min": (float, 0.0),
    "sampling": (dict, None),
    "system_prompt": (str, None),
}
_REPLICA_FIELDS = {f.name: f.type for f in dataclasses.fields(ReplicaConfig)}


def _read_preference(name: str, value: dict[str, Any], where: str,
                     problems: list[str]) -> dict[str, float]:
    result = {}
    for kind, weight in value.items():
        ok = isinstance(weight, int | float) and not isinstance(weight, bool) and 0 <= weight <= 1
        if kind not in TASK_KIND_NAMES or not ok:
            problems.append(
                f"{where}: roles.{name}.preference.{kind} must be a task kind "
                f"({', '.join(TASK_KIND_NAMES)}) with a weight from 0 to 1, got {weight!r}; ignored"
            )
            continue
        result[kind] = float(weight)
    return result


def _read_replicas(name: str, value: list[Any], where: str,
                   problems: list[str]) -> list[ReplicaConfig]:
    """Each replica as a table, or as the short 'http://host:port/v1#model'."""
    replicas = []
    for index, raw in enumerate(value):
        here = f"{where}: roles.{name}.replicas[{index}]"
        if isinstance(raw, str):
            raw = {"url": raw}
        if not isinstance(raw, dict):
            problems.append(f"{here} must be a table or a URL; ignored")
            continue
        replica = ReplicaConfig()
        for key, item in raw.items():
            if key in ("api_key", "key", "token"):
                problems.append(
                    f"{here}.{key}: an API key never lives in the config file; put it in "
                    "the keyring (zeta-desktop --set-api-key URL) or name an environment "
                    "variable with api_key_env; ignored"
                )
                continue
            kind = _REPLICA_FIELDS.get(key)
            if kind is None:
                problems.append(f"{here}.{key} is not a known setting; ignored")
                continue
            default = getattr(replica, key)
            if isinstance(default, float) and isinstance(item, int) and not isinstance(
                    item, bool):
                item = float(item)
            if type(item) is not type(default) or (isinstance(item, int | float)
                                                   and not isinstance(item, bool) and item < 0):
                problems.append(f"{here}.{key} must be {type(default).__name__}, got {item!r}; "
                                f"using {default!r}")
                continue
            setattr(replica, key, item)
        try:
            replica_spec(replica)
        except EndpointError as exc:
            problems.append(f"{here}: {exc}; ignored")
            continue
        replicas.append(replica)
    return replicas


def _read_sampling(name: str, value: dict[str, Any], where: str,
                   problems: list[str]) -> dict[str, float]:
    result = {}
    for key, number in value.items():
        limits = SAMPLING_LIMITS.get(key)
        ok = limits is not None and isinstance(number, int | float) and not isinstance(
            number, bool) and limits[0] <= number <= limits[1]
        if not ok:
            known = ", ".join(f"{k} {lo:g}..{hi:g}" for k, (lo, hi) in SAMPLING_LIMITS.items())
            problems.append(f"{where}: roles.{name}.sampling.{key} = {number!r} is not one of "
                            f"{known}; ignored")
            continue
        result[key] = float(number)
    return result


def _read_router(raw: Any, where: str, problems: list[str]) -> RouterConfig:
    router = RouterConfig()
    if not isinstance(raw, dict):
        problems.append(f"{where}: [router] must be a table; using defaults for it")
        return router
    for key, value in raw.items():
        if key == "policy":
            if value in POLICIES:
                router.policy = value
            else:
                problems.append(
                    f"{where}: router.policy must be one of {', '.join(POLICIES)}, "
                    f"got {value!r}; using {router.policy!r}"
                )
        elif key == "own_index_prompts":
            if (isinstance(value, int) and not isinstance(value, bool)
                    and 0 <= value <= OWN_INDEX_MAX_PROMPTS):
                router.own_index_prompts = value
            else:
                problems.append(
                    f"{where}: router.own_index_prompts must be a whole number from 0 to "
                    f"{OWN_INDEX_MAX_PROMPTS}, got {value!r}; using {router.own_index_prompts}")
        elif key in ("semantic", "cache_aware"):
            if isinstance(value, bool):
                setattr(router, key, value)
            else:
                problems.append(f"{where}: router.{key} must be true or false, got {value!r}")
        elif key in WATCHDOG_LIMITS:
            low, high = WATCHDOG_LIMITS[key]
            if not (isinstance(value, int | float) and not isinstance(value, bool)
                    and low <= value <= high):
                problems.append(
                    f"{where}: router.{key} must be a number of seconds from {low:g} to "
                    f"{high:g}, got {value!r}; using {getattr(router, key)!r}"
                )
                continue
            setattr(router, key, float(value))
        elif key in THRESHOLD_LIMITS:
            low, high = THRESHOLD_LIMITS[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if key == "max_queue":
                number = number and float(value).is_integer()
            if not number or not (low <= value <= high):
                problems.append(
                    f"{where}: router.{key} must be a number from {low:g} to {high:g}, "
                    f"got {value!r}; using {getattr(router, key)!r}"
                )
                continue
            setattr(router, key, int(value) if key == "max_queue" else float(value))
        else:
            problems.append(f"{where}: router.{key} is not a known setting; ignored")
    return router


def _read_server(raw: Any, where: str, problems: list[str]) -> ServerConfig:
    server = ServerConfig()
    if not isinstance(raw, dict):
        problems.append(f"{where}: [server] must be a table; using defaults for it")
        return server
    for key, value in raw.items():
        if key in ("enabled", "keep_history"):
            if isinstance(value, bool):
                setattr(server, key, value)
            else:
                problems.append(f"{where}: server.{key} must be true or false, got {value!r}")
        elif key == "host":
            if isinstance(value, str) and value.strip():
                server.host = value.strip()
            else:
                problems.append(f"{where}: server.host must be an address, got {value!r}; "
                                f"using {server.host}")
        elif key in SERVER_LIMITS:
            low, high = SERVER_LIMITS[key]
            if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
                setattr(server, key, value)
            else:
                problems.append(f"{where}: server.{key} must be a whole number from {low} to "
                                f"{high}, got {value!r}; using {getattr(server, key)}")
        elif key == "cors_origins":
            if isinstance(value, list) and all(isinstance(o, str) for o in value):
                server.cors_origins = list(value)
            else:
                problems.append(f"{where}: server.cors_origins must be a list of origins "
                                "(https://example.org); ignored")
        else:
            problems.append(f"{where}: server.{key} is not a known setting; ignored")
    return server


def _read_role(name: str, raw: Any, where: str, problems: list[str]) -> RoleConfig:
    role = default_roles().get(name) or RoleConfig()
    if not isinstance(raw, dict):
        problems.append(f"{where}: [roles.{name}] must be a table; using defaults for it")
        return role
    for key, value in raw.items():
        if key == "n_gpu_layers" and value == "auto":
            value = AUTO_GPU_LAYERS
            role.n_gpu_layers = value
            continue
        rule = _FIELD_RULES.get(key)
        if rule is None:
            problems.append(f"{where}: roles.{name}.{key} is not a known setting; ignored")
            continue
        kind, minimum = rule
        default = getattr(role, key)
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if ok and minimum is not None and value < minimum:
            ok = False
        if ok and key == "preference":
            value = _read_preference(name, value, where, problems)
        if ok and key == "replicas":
            value = _read_replicas(name, value, where, problems)
        if ok and key == "sampling":
            value = _read_sampling(name, value, where, problems)
        if not ok:
            bound = f" >= {minimum}" if minimum is not None else ""
            problems.append(
                f"{where}: roles.{name}.{key} must be {kind.__name__}{bound}, "
                f"got {value!r}; using {default!r}"
            )
            continue
        setattr(role, key, value)
    if not role.can_chat and not role.can_embed:
        problems.append(
            f"{where}: roles.{name} can neither chat nor embed; using can_chat = true"
        )
        role.can_chat = True
    return role


def parse_config(data: dict[str, Any], where: str) -> tuple[AppConfig, list[str]]:
    problems: list[str] = []
    config = AppConfig()
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        problems.append(
            f"{where}: schema_version {version!r} is not {SCHEMA_VERSION}; "
            "reading what matches this version"
        )
    roles = data.get("roles", {})
    if not isinstance(roles, dict):
        problems.append(f"{where}: [roles] must be a table; using default roles")
        roles = {}
    for name, raw in roles.items():
        if not ROLE_NAME_PATTERN.match(name):
            problems.append(
                f"{where}: roles.{name}: a role's name is lower-case letters, digits, - "
                "and _, starting with a letter; ignored"
            )
            continue
        config.roles[name] = _read_role(name, raw, where, problems)
    if "router" in data:
        config.router = _read_router(data["router"], where, problems)
    if "server" in data:
        config.server = _read_server(data["server"], where, problems)
    if "prompt_cache" in data:
        config.prompt_cache = read_prompt_cache(data["prompt_cache"], where, problems)
    folders = data.get("model_folders", [])
    if isinstance(folders, list) and all(isinstance(f, str) for f in folders):
        config.model_folders = list(folders)
    else:
        problems.append(f"{where}: model_folders must be a list of folder paths; ignored")
    for key in data:
        if key not in ("schema_version", "roles", "router", "server", "prompt_cache",
                       "model_folders"):
            problems.append(f"{where}: {key} is not a known setting; ignored")
    return config, problems


def _backup(path: Path) -> Path:
    backup = unused_sibling(path, "bad")
    shutil.copy2(path, backup)
    return backup


def load_config(path: Path | None = None) -> LoadedConfig:
    """Read the config; a missing file gives defaults, a bad one defaults plus problems."""
    path = path or default_config_path()
    if not path.exists():
        return LoadedConfig(AppConfig(), path, [])
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        backup = _backup(path)
        return LoadedConfig(
            AppConfig(),
            path,
            [f"{where} is not valid TOML ({exc}); started on defaults, "
             f"the file was kept as {backup}"],
            backup,
        )
    except OSError as exc:
        return LoadedConfig(AppConfig(), path, [f"{where} could not be read ({exc}); "
                                                "started on defaults"])
    config, problems = parse_config(data, where)
    kept_as: Path | None = None
    if problems:
        kept_as = _backup(path)
        problems.append(f"the original file was kept as {kept_as}")
    return LoadedConfig(config, path, problems, kept_as)


def _role_to_dict(role: RoleConfig) -> dict[str, Any]:
    data = dataclasses.asdict(role)
    if role.n_gpu_layers == AUTO_GPU_LAYERS:
        data["n_gpu_layers"] = "auto"
    return data


def config_to_dict(config: AppConfig) -> dict[str, Any]:
    return {
        "schema_version": config.schema_version,
        "roles": {name: _role_to_dict(role) for name, role in config.roles.items()},
        "router": dataclasses.asdict(config.router),
        "server": dataclasses.asdict(config.server),
        "prompt_cache": dataclasses.asdict(config.prompt_cache),
        "model_folders": list(config.model_folders),
    }


def save_config(config: AppConfig, path: Path | None = None) -> Path:
    """Write atomically, so a crash mid-write never leaves a half file."""
    path = path or default_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomli_w.dumps(config_to_dict(config)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_or_say(config: AppConfig, path: Path) -> str:
    """Save; on failure the sentence to show the user ('' when it was saved).
    A full disk or a read-only folder must never lose what the user changed in
    the running app, only its lasting copy."""
    try:
        save_config(config, path)
    except OSError as exc:
        return f"Could not save settings to {path}: {exc}"
    return ""
