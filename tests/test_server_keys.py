"""The server's API key: kept in the OS keyring (or ZETA_SERVER_KEY), needed off loopback."""

from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordSetError
from test_replicas import MemoryKeyring

from zeta_desktop.core.settings import ServerConfig
from zeta_desktop.server.keys import (
    KEY_ENV,
    KeyStoreError,
    forget_server_key,
    new_server_key,
    server_key,
)


class RefusingKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("locked")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordSetError("locked")


@pytest.fixture
def memory_keyring():  # type: ignore[no-untyped-def]
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_a_new_key_lives_in_the_keyring_and_the_environment_overrides_it(
        memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert server_key() is None
    key = new_server_key()
    assert key.startswith("zeta-") and len(key) > 40
    assert list(memory_keyring.secrets.values()) == [key]
    assert server_key() == key and new_server_key() != key  # a new one replaces it
    monkeypatch.setenv(KEY_ENV, "from-the-environment")
    assert server_key() == "from-the-environment"
    monkeypatch.delenv(KEY_ENV)
    forget_server_key()
    assert server_key() is None


def test_a_keyring_that_refuses_says_to_use_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(RefusingKeyring())
    try:
        with pytest.raises(KeyStoreError, match=KEY_ENV):
            new_server_key()
        assert server_key() is None
    finally:
        keyring.set_keyring(previous)


def test_loopback_is_any_127_address_or_localhost() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert ServerConfig(host=host).loopback, host
    for host in ("0.0.0.0", "::", "192.168.1.20", "gpu-box.lan"):
        assert not ServerConfig(host=host).loopback, host
