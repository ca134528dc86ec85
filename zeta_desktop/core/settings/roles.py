"""A role's settings: which model serves it, how it is loaded, which servers help."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ROLE_NAMES: tuple[str, ...] = ("coder", "embedder", "reasoner")  # the built-in roles
# Roles are an open table: any other name like these is a role of its own.
ROLE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
AUTO_GPU_LAYERS = -2  # n_gpu_layers = "auto" in the config: as many layers as fit
TASK_KIND_NAMES = ("simple", "code", "reasoning", "embedding")  # a preference's keys
SAMPLING_LIMITS = {"top_p": (0.0, 1.0), "top_k": (0, 1000), "min_p": (0.0, 1.0),
                   "repeat_penalty": (0.5, 2.5)}


def is_endpoint(text: str) -> bool:
    """A model given as a server's URL rather than a file."""
    return text.startswith(("http://", "https://"))


@dataclass
class ReplicaConfig:
    """One OpenAI-compatible server serving a role. No API key here, ever:
    `api_key_env` names the environment variable that holds it, or the OS
    keyring has it (zeta-desktop --set-api-key URL). `engines.endpoint.replica_spec`
    turns it into the endpoint it describes."""

    url: str = ""  # http(s)://host:port/v1, or with #model at the end
    model: str = ""  # the server's name for the model (when not after # in url)
    api_key_env: str = ""
    slots: int = 0  # parallel requests it runs; 0: read from /props, else 1
    n_ctx: int = 0  # 0: read from /props, else the server fits the prompt
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 300.0
    idle_timeout_s: float = 60.0
    verify_tls: bool = True

    @property
    def endpoint_text(self) -> str:
        """`url#model`, the form an endpoint is parsed from."""
        return f"{self.url}#{self.model}" if self.model and "#" not in self.url else self.url


@dataclass
class RoleConfig:
    """One model role: which GGUF file serves it and how it is loaded."""

    model_path: str = ""  # empty: the bundled demo model
    n_ctx: int = 4096
    n_gpu_layers: int = 0  # -1 offloads every layer; AUTO_GPU_LAYERS: as many as fit
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


def default_roles() -> dict[str, RoleConfig]:
    return {
        "coder": RoleConfig(),
        "embedder": RoleConfig(n_ctx=2048, can_embed=True),
        "reasoner": RoleConfig(max_tokens=1024),
    }
