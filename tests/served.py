"""Zeta's own server on loopback over a real session, for the server tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from zeta_desktop.core.chat.api import ChatApi, EngineLoader, open_chat
from zeta_desktop.core.config import load_config
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig, ServerConfig
from zeta_desktop.server.runner import Listening, ZetaServer

LOAD_TIMEOUT_S = 120


@dataclass
class Served:
    api: ChatApi
    server: ZetaServer
    where: Listening

    @property
    def base_url(self) -> str:
        return self.where.base_url

    @property
    def root(self) -> str:
        return self.where.base_url.removesuffix("/v1")


@contextlib.contextmanager
def serving(config: AppConfig, tmp_path: Path, *, loader: EngineLoader = LlamaEngine.load,
            keep_history: bool = False, key: str | None = "", **settings: object,
            ) -> Iterator[Served]:
    """The session over `config`, loaded, served on a free loopback port.
    `key`: the API key clients must send ('' for none)."""
    server_settings = replace(ServerConfig(port=0), keep_history=keep_history, **settings)
    loaded = load_config(tmp_path / "config.toml")
    api = open_chat(loaded, config, loader, keep_history=keep_history,
                    history_path=tmp_path / "history.db")
    server = ZetaServer(api, server_settings, key=key)
    api.start()
    try:
        assert api.wait_loaded(LOAD_TIMEOUT_S)
        yield Served(api, server, server.start())
    finally:
        server.stop()
        api.shutdown()
