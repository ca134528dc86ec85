"""What a remote replica is: an OpenAI-compatible server, its model and its limits.

An endpoint is written `http(s)://host:port/v1#model` on the command line
and in the config. Its API key is never part of it: the key comes from an
environment variable the config names, or from the OS keyring, and is read
only when a request is made.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from typing import TypedDict, Unpack
from urllib.parse import urlsplit

from zeta_desktop.core.settings import ReplicaConfig

log = logging.getLogger(__name__)

KEYRING_SERVICE = "zeta-desktop"

# Which server an endpoint is, as its probe finds out: the engine sends
# llama-server's own request fields to llama-server only.
LLAMA_SERVER = "llama-server"
VLLM = "vllm"
SGLANG = "sglang"


class EndpointError(ValueError):
    """An endpoint that cannot be used as written; the message says why."""


@dataclass(frozen=True)
class EndpointSpec:
    base_url: str  # up to and including /v1, no trailing slash
    model: str
    api_key_env: str = ""  # the environment variable holding the key, if any
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 300.0  # the server reads the whole prompt first
    idle_timeout_s: float = 60.0  # between two tokens
    slots: int = 0  # parallel requests the server runs; 0: ask it (/props), else 1
    n_ctx: int = 0  # 0: ask it (/props), else unknown and the server fits
    verify_tls: bool = True

    @property
    def label(self) -> str:
        """Host, port and model: what the user recognises."""
        parts = urlsplit(self.base_url)
        return f"{self.model}@{parts.netloc}"

    @property
    def server_root(self) -> str:
        """The URL without its /v1: llama-server's /health, /props and /metrics live there."""
        return self.base_url.removesuffix("/v1")

    def api_key(self) -> str | None:
        """The key for this server: the named environment variable, else the keyring."""
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return keyring_key(self.base_url)

    def plain_http_warning(self) -> str:
        """Why plain HTTP here is a risk, or '' where it is not (HTTPS, this
        machine, a private network)."""
        parts = urlsplit(self.base_url)
        if parts.scheme == "https" or _is_private_host(parts.hostname or ""):
            return ""
        return (
            f"{self.label} is plain HTTP over a public address: prompts, answers "
            "and any API key cross the network unencrypted; use https://"
        )


def _is_private_host(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(".local") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: it may resolve anywhere
    return address.is_loopback or address.is_private or address.is_link_local


class EndpointSettings(TypedDict, total=False):
    """EndpointSpec's fields after the URL and model, by name: what a replica sets."""

    api_key_env: str
    connect_timeout_s: float
    first_token_timeout_s: float
    idle_timeout_s: float
    slots: int
    n_ctx: int
    verify_tls: bool


def split_endpoint(text: str) -> tuple[str, str]:
    """`http(s)://host:port[/path]/v1[#model]` -> (base URL up to /v1, model or
    ''); a missing /v1 is added. Pure: asks no server (see
    `server_probe.resolve_endpoint` for a URL without its model)."""
    url, _, model = text.strip().partition("#")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EndpointError(f"{text!r}: an endpoint starts with http:// or https://")
    if not parts.hostname:
        raise EndpointError(f"{text!r}: no host in the URL")
    try:
        _ = parts.port
    except ValueError as exc:
        raise EndpointError(f"{text!r}: {exc}") from exc
    if parts.username or parts.password:
        raise EndpointError(
            f"{parts.hostname}: no user or password in the URL; "
            "keep the key in the keyring or an environment variable"
        )
    if parts.query:
        raise EndpointError(f"{text!r}: no query string in the base URL")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}", model.strip()


def parse_endpoint(text: str, **settings: Unpack[EndpointSettings]) -> EndpointSpec:
    """`http(s)://host:port[/path]/v1#model` -> a spec; a missing /v1 is added.
    The model must be named here: this asks no server."""
    base, model = split_endpoint(text)
    if not model:
        url = text.strip().partition("#")[0]
        raise EndpointError(
            f"{text!r}: name the model after a #, for example {url.rstrip('/')}#llama3"
        )
    return EndpointSpec(base_url=base, model=model, **settings)


def keyring_key(base_url: str) -> str | None:
    """The key stored for this server in the OS keyring, if there is a keyring."""
    try:
        import keyring  # lazy: finding the backend can take a moment
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, base_url)
    except (KeyringError, RuntimeError, OSError) as exc:
        log.info("no keyring for %s: %s", base_url, exc)
        return None


def store_keyring_key(base_url: str, key: str) -> None:
    """Keep a server's key in the OS keyring (never in the config file)."""
    import keyring

    keyring.set_password(KEYRING_SERVICE, base_url, key)


def replica_spec(replica: ReplicaConfig) -> EndpointSpec:
    """The endpoint a configured replica describes; raises EndpointError if it
    cannot be used."""
    return parse_endpoint(
        replica.endpoint_text,
        api_key_env=replica.api_key_env,
        slots=replica.slots,
        n_ctx=replica.n_ctx,
        connect_timeout_s=replica.connect_timeout_s,
        first_token_timeout_s=replica.first_token_timeout_s,
        idle_timeout_s=replica.idle_timeout_s,
        verify_tls=replica.verify_tls,
    )
