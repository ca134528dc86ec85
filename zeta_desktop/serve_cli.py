"""`zeta-desktop serve`: the models and the router, headless, over the OpenAI API.

The same core as the window, composed through the same door; it serves
until Ctrl+C or SIGTERM, then stops the models and closes the history.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from zeta_desktop.core.settings import DEFAULT_PORT, ROLE_NAMES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zeta-desktop serve",
        description="Serve the loaded models on an OpenAI-compatible API; `model: auto` is "
        "routed per prompt. Point any OpenAI client at http://HOST:PORT/v1.")
    parser.add_argument("--host", help="address to listen on (default: the config's, "
                        "127.0.0.1); any other than loopback needs an API key")
    parser.add_argument("--port", type=int, help=f"port (default: the config's, {DEFAULT_PORT})")
    parser.add_argument("--config", type=Path, help="settings file (default: platform config dir)")
    parser.add_argument("--keep-history", action="store_true", default=None,
                        help="keep each request in the history, titled by its client")
    parser.add_argument("--new-key", action="store_true",
                        help="make an API key, keep it in the OS keyring, print it and exit")
    parser.add_argument("--forget-key", action="store_true",
                        help="remove the API key from the OS keyring and exit")
    for role in ROLE_NAMES:
        parser.add_argument(f"--{role}", metavar="PATH|URL",
                            help=f"GGUF file or server (http(s)://host:port/v1#model; without "
                            f"#model, the one model it lists) for the {role} role, this run only")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from zeta_desktop.server.keys import KeyStoreError, forget_server_key, new_server_key

    if args.new_key:
        try:
            print(new_server_key())
        except KeyStoreError as exc:
            print(f"zeta-desktop serve: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.forget_key:
        forget_server_key()
        print("zeta-desktop serve: the server's key was removed from the keyring")
        return 0
    from zeta_desktop.cli import resolve_server_models
    from zeta_desktop.core.chat.api import open_chat
    from zeta_desktop.core.config import load_config
    from zeta_desktop.core.engines.llama import LlamaEngine
    from zeta_desktop.server.runner import Listening, ServerStartError, ZetaServer

    if not resolve_server_models(args, "zeta-desktop serve"):
        return 2
    loaded = load_config(args.config)
    for problem in loaded.problems:
        print(f"zeta-desktop serve: settings: {problem}", file=sys.stderr)
    run_config = loaded.config.with_model_overrides({r: getattr(args, r) for r in ROLE_NAMES})
    changes = {k: v for k, v in (("host", args.host), ("port", args.port),
                                 ("keep_history", args.keep_history)) if v is not None}
    settings = dataclasses.replace(run_config.server, **changes)
    api = open_chat(loaded, run_config, LlamaEngine.load, keep_history=settings.keep_history,
                    on_history_problem=lambda text: print(f"zeta-desktop serve: {text}",
                                                          file=sys.stderr))
    try:
        server = ZetaServer(api, settings)
    except ServerStartError as exc:
        print(f"zeta-desktop serve: {exc}", file=sys.stderr)
        return 2
    def listening(where: Listening) -> None:
        # The port is ours: now the models load (a port in use stops at once).
        api.start()
        print(f"zeta-desktop serve: serving on {where.base_url} (model: auto routes each "
              "prompt; the models load now)"
              + ("; clients must send the API key" if where.needs_key else ""), flush=True)

    try:
        server.serve_forever(listening)
    except ServerStartError as exc:
        print(f"zeta-desktop serve: {exc}", file=sys.stderr)
        return 2
    finally:
        api.shutdown()
    print("zeta-desktop serve: stopped", flush=True)
    return 0
