"""The server's API key: in the OS keyring (or ZETA_SERVER_KEY), never in the config file."""

from __future__ import annotations

import logging
import os
import secrets

log = logging.getLogger(__name__)

KEYRING_SERVICE = "zeta-desktop"
KEYRING_NAME = "local-server-api-key"
KEY_ENV = "ZETA_SERVER_KEY"


class KeyStoreError(Exception):
    """The keyring could not keep the key; the message says what to do instead."""


def server_key() -> str | None:
    """The key clients must send, if one is set: ZETA_SERVER_KEY, else the keyring's."""
    from_env = os.environ.get(KEY_ENV, "").strip()
    if from_env:
        return from_env
    try:
        import keyring  # lazy: finding the backend can take a moment
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(KEYRING_SERVICE, KEYRING_NAME) or None
        except KeyringError as exc:
            log.info("no OS keyring here (%s); a key can come from %s", type(exc).__name__,
                     KEY_ENV)
            log.debug("keyring: %s", exc)
            return None
    except Exception as exc:  # a broken backend must not stop the server
        log.info("no OS keyring here (%s); a key can come from %s", type(exc).__name__, KEY_ENV)
        log.debug("keyring: %s", exc)
        return None


def new_server_key() -> str:
    """Make a key, keep it in the keyring and return it (shown to the user once)."""
    key = f"zeta-{secrets.token_urlsafe(32)}"
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, KEYRING_NAME, key)
    except Exception as exc:  # each backend raises its own
        raise KeyStoreError(f"the OS keyring could not keep the key ({exc}); set "
                            f"{KEY_ENV} in the server's environment instead") from exc
    return key


def forget_server_key() -> None:
    try:
        import keyring

        keyring.delete_password(KEYRING_SERVICE, KEYRING_NAME)
    except Exception as exc:
        log.info("no key to forget: %s", exc)
