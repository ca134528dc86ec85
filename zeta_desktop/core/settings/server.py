"""The local OpenAI-compatible server's settings (`[server]` in the config file).

Safe by default: it listens on loopback only. Another host needs an API key
(kept in the OS keyring, never in this file); see zeta_desktop/server.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

DEFAULT_PORT = 8765
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# name: (low, high) the config file accepts
SERVER_LIMITS: dict[str, tuple[int, int]] = {
    "port": (1, 65535),
    "max_pending": (1, 10_000),
    "max_body_bytes": (1024, 256 * 2**20),
}


@dataclass
class ServerConfig:
    enabled: bool = False  # the window starts it with the app
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # Keep each request in the history, as a conversation titled by its client.
    keep_history: bool = False
    # Requests answering or waiting at once; more get 503 with Retry-After.
    max_pending: int = 64
    max_body_bytes: int = 8 * 2**20
    # Web pages allowed to call it from a browser (CORS); none by default.
    cors_origins: list[str] = field(default_factory=list)

    @property
    def loopback(self) -> bool:
        """Only this machine can connect (127.0.0.0/8, ::1, localhost)."""
        if self.host in LOOPBACK_HOSTS:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
