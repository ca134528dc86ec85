"""`zeta-desktop models`: what model discovery finds, for people and scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zeta_desktop.core.config import load_config
from zeta_desktop.core.engines.build_info import build_info
from zeta_desktop.core.models.discovery import Found, Place, default_places, scan
from zeta_desktop.core.models.memory import estimate, mib
from zeta_desktop.core.models.suits import suggested_role as suits
from zeta_desktop.core.settings import AppConfig, RoleConfig


def suggested_role(found: Found, config: AppConfig) -> str:
    """The built-in role the model suits, if the config has it; else a role
    of the config that does the same kind of work."""
    role = suits(found.info, found.display_name)
    if role in config.roles:
        return role
    wanted = "embed" if found.info.is_embedding else "chat"
    for name, settings in config.roles.items():
        if settings.can_embed if wanted == "embed" else settings.can_chat:
            return name
    return next(iter(config.roles), "")


def describe(found: Found, config: AppConfig) -> dict:
    row = {"name": found.display_name, "place": found.place, **found.info.as_dict()}
    if found.info.error:
        return row
    role = suggested_role(found, config)
    settings = config.roles.get(role, RoleConfig())
    row["role"] = role
    row["estimate_bytes"] = estimate(found.info, settings.n_ctx, settings.n_gpu_layers).total_bytes
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="zeta-desktop models",
        description="List the GGUF models in the usual places (the Hugging Face cache, "
        "LM Studio, GPT4All, llama.cpp's cache, Ollama) and in folders you name; "
        "read from each file's header, nothing is loaded.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    parser.add_argument("--path", type=Path, action="append", default=[], metavar="DIR",
                        help="also scan this folder (repeat for more)")
    parser.add_argument("--only-paths", action="store_true",
                        help="scan only the --path folders, not the usual places")
    parser.add_argument("--config", type=Path, help="settings file (for the estimates)")
    args = parser.parse_args(argv)
    config = load_config(args.config).config
    places = [] if args.only_paths else default_places()
    places += [Place(str(p), p.expanduser()) for p in args.path]
    for place in places:
        if args.path and place.path in args.path and not place.path.is_dir():
            print(f"zeta-desktop models: {place.path} is not a folder", file=sys.stderr)
    rows = [describe(found, config) for found in scan(places)]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(build_info().describe())
    if not rows:
        print("no GGUF models found (scanned: "
              + ", ".join(str(p.path) for p in places) + ")")
        return 0
    for row in rows:
        if "error" in row:
            print(f"unreadable  {row['path']}: {row['error']}")
            continue
        params = f"{row['parameters'] / 1e9:.2f} B" if row["parameters"] else "? params"
        print(f"{row['kind']:9s}  {row['name']}  ({row['architecture']}, {params}, "
              f"{row['quantization']}, ctx {row['context_length']}, "
              f"needs ~{mib(row['estimate_bytes'])} as {row['role']})  [{row['place']}]")
    return 0
