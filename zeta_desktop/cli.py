"""Command line: `zeta-desktop` opens the window; flags and subcommands below."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from zeta_desktop import __version__
from zeta_desktop.core.config import LoadedConfig, load_config
from zeta_desktop.core.engines.endpoint import replica_spec
from zeta_desktop.core.settings import ROLE_NAMES, is_endpoint


def _app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zeta-desktop",
        description="Chat with several local GGUF models, routed per prompt. "
        "Subcommands: `zeta-desktop serve --help` serves the models on an "
        "OpenAI-compatible API; `zeta-desktop route --help` prints routing decisions; "
        "`zeta-desktop models --help` lists the GGUF models found on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", type=Path, help="settings file (default: platform config dir)")
    for role in ROLE_NAMES:
        parser.add_argument(
            f"--{role}", metavar="PATH|URL",
            help=f"GGUF file, or an OpenAI-compatible server as http(s)://host:port/v1#model "
            f"(without #model: the one model the server lists), for the {role} role, "
            "this run only",
        )
    parser.add_argument(
        "--set-api-key", metavar="URL",
        help="store the API key for a server (read from standard input) in the OS keyring, exit",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="load every role, stream a few tokens and one embedding, print a summary, exit",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "files", nargs="*", type=Path, metavar="FILE",
        help="open in the window (handed to it if it is running already): a .gguf opens "
        "the model picker for the role it suits; an exported conversation .json is imported; "
        "a document (.pdf .md .txt .docx .html) is offered to a collection",
    )
    return parser


def _load(args: argparse.Namespace) -> LoadedConfig:
    loaded = load_config(args.config)
    for problem in loaded.problems:
        print(f"zeta-desktop: settings: {problem}", file=sys.stderr)
    return loaded


def resolve_server_models(args: argparse.Namespace, prog: str) -> bool:
    """Each role given as a server's URL without its #model: the server is
    asked which model it serves (before any window opens) and the one it
    serves is used, said on stderr. False, after saying why, where it cannot
    be: several models (named), none, or no answer."""
    from zeta_desktop.core.engines.endpoint import EndpointError
    from zeta_desktop.core.engines.server_probe import resolve_endpoint

    for role in ROLE_NAMES:
        text = getattr(args, role, None)
        if not text or not is_endpoint(text):
            continue
        try:
            resolved = resolve_endpoint(text)
        except EndpointError as exc:
            print(f"{prog}: --{role}: {exc}", file=sys.stderr)
            return False
        if resolved.note:
            print(f"{prog}: --{role}: {resolved.note}", file=sys.stderr)
            setattr(args, role, f"{resolved.spec.base_url}#{resolved.spec.model}")
    return True


def _set_api_key(url: str) -> int:
    from zeta_desktop.core.engines.endpoint import EndpointError, parse_endpoint, store_keyring_key

    try:
        spec = parse_endpoint(url if "#" in url else f"{url}#any")
    except EndpointError as exc:
        print(f"zeta-desktop: {exc}", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        import getpass

        key = getpass.getpass(f"API key for {spec.base_url}: ")
    else:
        key = sys.stdin.readline().strip()
    if not key:
        print("zeta-desktop: no key given; nothing stored", file=sys.stderr)
        return 2
    try:
        store_keyring_key(spec.base_url, key)
    except Exception as exc:  # keyring raises its own errors per backend
        print(f"zeta-desktop: the keyring could not store it ({exc}); name an environment "
              "variable in the config instead (api_key_env)", file=sys.stderr)
        return 1
    print(f"zeta-desktop: stored the key for {spec.base_url} in the OS keyring")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["route"]:
        from zeta_desktop.route_cli import main as route_main

        return route_main(argv[1:])
    if argv[:1] == ["_load-check"]:  # the app's own child process (load_check.py)
        from zeta_desktop.load_check_cli import main as load_check_main

        return load_check_main(argv[1:])
    if argv[:1] == ["serve"]:
        from zeta_desktop.serve_cli import main as serve_main

        return serve_main(argv[1:])
    if argv[:1] == ["models"]:
        from zeta_desktop.models_cli import main as models_main

        return models_main(argv[1:])
    args = _app_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.set_api_key:
        return _set_api_key(args.set_api_key)
    if not resolve_server_models(args, "zeta-desktop"):
        return 2
    loaded = _load(args)
    run_config = loaded.config.with_model_overrides({r: getattr(args, r) for r in ROLE_NAMES})
    for name, role in run_config.roles.items():
        for replica in role.replicas:
            try:
                warning = replica_spec(replica).plain_http_warning()
            except ValueError as exc:
                print(f"zeta-desktop: roles.{name}: {exc}", file=sys.stderr)
                return 2
            if warning:
                print(f"zeta-desktop: warning: {warning}", file=sys.stderr)
    from zeta_desktop.core.engines.llama import LlamaEngine

    if args.self_test:
        from zeta_desktop.ui.app import run_self_test_with_window

        return run_self_test_with_window(loaded, run_config, LlamaEngine.load)
    from zeta_desktop.ui.app import run_gui

    return run_gui(loaded, run_config, LlamaEngine.load, files=args.files)
