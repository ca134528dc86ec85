"""Typed settings, saved as TOML in the platform config directory.

A bad file never stops the app: every field that cannot be read falls back to
its default, the problem is reported with the file and key, and the original
file is kept as a backup before anything overwrites it.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from zeta_desktop.core.engines.endpoint import (
    EndpointError,
    EndpointSpec,
    is_endpoint,
    parse_endpoint,
)
from zeta_desktop.core.models.fit import AUTO_GPU_LAYERS
from zeta_desktop.core.paths import unused_sibling
from zeta_desktop.core.routing.own_index import OWN_INDEX_MAX_PROMPTS, OWN_INDEX_PROMPTS
from zeta_desktop.core.routing.router import POLICIES, THRESHOLD_LIMITS, Thresholds

SCHEMA_VERSION = 1
ROLE_NAMES: tuple[str, ...] = ("coder", "embedder", "reasoner")  # the built-in roles
# Roles are an open table: any other name like these is a role of its own.
ROLE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
CONFIG_FILENAME = "config.toml"
_APP_DIR_NAME = "zeta-desktop"


@dataclass
class ReplicaConfig:
    """One OpenAI-compatible server serving a role. No API key here, ever:
    `api_key_env` names the environment variable that holds it, or the OS
    keyring has it (zeta-desktop --set-api-key URL)."""

    url: str = ""  # http(s)://host:port/v1, or with #model at the end
    model: str = ""  # the server's name for the model (when not after # in url)
    api_key_env: str = ""
    slots: int = 0  # parallel requests it runs; 0: read from /props, else 1
    n_ctx: int = 0  # 0: read from /props, else the server fits the prompt
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 300.0
    idle_timeout_s: float = 60.0
    verify_tls: bool = True

    def spec(self) -> EndpointSpec:
        """The endpoint this describes; raises EndpointError if it cannot be used."""
        text = f"{self.url}#{self.model}" if self.model and "#" not in self.url else self.url
        return parse_endpoint(
            text,
            api_key_env=self.api_key_env,
            slots=self.slots,
            n_ctx=self.n_ctx,
            connect_timeout_s=self.connect_timeout_s,
            first_token_timeout_s=self.first_token_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
            verify_tls=self.verify_tls,
        )


@dataclass
class RoleConfig:
    """One model role: which GGUF file serves it and how it is loaded."""

    model_path: str = ""  # empty: the bundled demo model
    n_ctx: int = 4096
    n_gpu_layers: int = 0  # -1 offloads every layer; "auto" in the file (-2): as many as fit
    n_threads: int = 0  # 0: chosen from the CPU count at load time
    can_chat: bool = True
    can_embed: bool = False
    max_tokens: int = 512
    temperature: float = 0.7
    # Decode below the window's priority (Linux), so the window stays smooth
    # while every core is busy; costs nothing when the machine is otherwise idle.
    low_priority: bool = True
    # How well this role fits each task kind, 0..1 (0: never). Empty: the
    # role's defaults (coder: code and simple, reasoner: reasoning, ...).
    preference: dict[str, float] = field(default_factory=dict)
    # Sampling beyond temperature, only what is set here is sent (top_p, top_k,
    # min_p, repeat_penalty); unset: the model's own defaults.
    sampling: dict[str, float] = field(default_factory=dict)
    # This role's default system prompt (used where a conversation kept the
    # app's default); empty: the app's.
    system_prompt: str = ""
    # Unload the model after this many minutes without a prompt, load it again
    # for the next (Ollama's keep_alive); 0: keep it loaded.
    idle_unload_min: float = 0.0
    # Servers that serve this role too (replicas). The local model serves
    # beside them when model_path is set, and alone when there are none.
    replicas: list[ReplicaConfig] = field(default_factory=list)

    @property
    def uses_local_model(self) -> bool:
        return bool(self.model_path) or not self.replicas


def _default_roles() -> dict[str, RoleConfig]:
    return {
        "coder": RoleConfig(),
        "embedder": RoleConfig(n_ctx=2048, can_embed=True),
        "reasoner": RoleConfig(max_tokens=1024),
    }


@dataclass
class RouterConfig:
    policy: str = "adaptive"
    max_queue: int = Thresholds.max_queue
    max_wait_s: float = Thresholds.max_wait_s
    gpu_util_ceiling_pct: float = Thresholds.gpu_util_ceiling_pct
    gpu_mem_ceiling_pct: float = Thresholds.gpu_mem_ceiling_pct
    min_success_rate: float = Thresholds.min_success_rate
    speed_vs_quality: float = Thresholds.speed_vs_quality
    # Also let the embedding index vote: the shipped one when the embedding
    # role runs all-MiniLM-L6-v2, else one built for its model in the
    # background from this many labelled prompts (0: no vote for other models).
    semantic: bool = True
    own_index_prompts: int = OWN_INDEX_PROMPTS
    # The watchdog: a model that gives no token for this long is treated as
    # failed (cancelled, cooled down, the prompt retried elsewhere). The first
    # token may take longer: the whole prompt is read before it.
    token_timeout_s: float = 60.0
    first_token_timeout_s: float = 600.0

    def thresholds(self) -> Thresholds:
        return Thresholds(**{name: getattr(self, name) for name in THRESHOLD_LIMITS})


@dataclass
class AppConfig:
    schema_version: int = SCHEMA_VERSION
    roles: dict[str, RoleConfig] = field(default_factory=_default_roles)
    router: RouterConfig = field(default_factory=RouterConfig)
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
SAMPLING_LIMITS = {"top_p": (0.0, 1.0), "top_k": (0, 1000), "min_p": (0.0, 1.0),
                   "repeat_penalty": (0.5, 2.5)}
_REPLICA_FIELDS = {f.name: f.type for f in dataclasses.fields(ReplicaConfig)}
_TASK_KINDS = ("simple", "code", "reasoning", "embedding")
WATCHDOG_LIMITS = {"token_timeout_s": (0.5, 3600.0), "first_token_timeout_s": (1.0, 7200.0)}


def _read_preference(name: str, value: dict[str, Any], where: str, problems: list[str]) -> dict:
    result = {}
    for kind, weight in value.items():
        ok = isinstance(weight, int | float) and not isinstance(weight, bool) and 0 <= weight <= 1
        if kind not in _TASK_KINDS or not ok:
            problems.append(
                f"{where}: roles.{name}.preference.{kind} must be a task kind "
                f"({', '.join(_TASK_KINDS)}) with a weight from 0 to 1, got {weight!r}; ignored"
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
            replica.spec()
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
        elif key == "semantic":
            if isinstance(value, bool):
                router.semantic = value
            else:
                problems.append(f"{where}: router.semantic must be true or false, got {value!r}")
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


def _read_role(name: str, raw: Any, where: str, problems: list[str]) -> RoleConfig:
    role = _default_roles().get(name) or RoleConfig()
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
    folders = data.get("model_folders", [])
    if isinstance(folders, list) and all(isinstance(f, str) for f in folders):
        config.model_folders = list(folders)
    else:
        problems.append(f"{where}: model_folders must be a list of folder paths; ignored")
    for key in data:
        if key not in ("schema_version", "roles", "router", "model_folders"):
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
    backup = None
    if problems:
        backup = _backup(path)
        problems.append(f"the original file was kept as {backup}")
    return LoadedConfig(config, path, problems, backup)


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
