"""`zeta-desktop route`: print the router's decision for prompts, without generating.

Uses the configured roles, thresholds and policy with idle models (no live
load), so users can check classification and preferences, and script it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from zeta_desktop.core.config import load_config
from zeta_desktop.core.engines.base import LoadSettings, NoRoleAvailableError
from zeta_desktop.core.routing.classifier import TaskClassifier
from zeta_desktop.core.routing.router import DEFAULT_PREFERENCES, RoleProfile, ZetaDynamicRouter
from zeta_desktop.core.routing.telemetry import Telemetry
from zeta_desktop.core.settings import POLICIES, ROLE_NAMES


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zeta-desktop route",
        description="Print which model each prompt would go to, and why (no generation).",
    )
    p.add_argument(
        "prompts", nargs="*", metavar="PROMPT", help="prompts (default: one per stdin line)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per prompt per line")
    p.add_argument(
        "--eval",
        type=Path,
        metavar="FILE.jsonl",
        help='score the classifier on lines of {"prompt": ..., "kind": ...}: accuracy per '
        "kind, confusion matrix, reliability; bad lines are named and skipped",
    )
    p.add_argument(
        "--semantic",
        action="store_true",
        help="load the embedding role and let the embedding index vote too "
        "(when the role runs the index's model, as the demo does)",
    )
    p.add_argument("--policy", choices=POLICIES, help="override the configured policy")
    p.add_argument("--config", type=Path, help="settings file (default: platform config dir)")
    return p


def _prompts(args: argparse.Namespace) -> Iterator[str]:
    if args.prompts:
        yield from args.prompts
        return
    for line in sys.stdin:
        if line.strip():
            yield line.rstrip("\n")


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    loaded = load_config(args.config)
    for problem in loaded.problems:
        print(f"zeta-desktop: settings: {problem}", file=sys.stderr)
    config = loaded.config
    telemetry = Telemetry()
    profiles = {}
    from zeta_desktop.core.routing.classifier import TaskKind

    for name in ROLE_NAMES:
        telemetry.register(name, lambda: (0, 0, "ready"))
        role = config.roles[name]
        preference = dict(DEFAULT_PREFERENCES.get(name, {}))
        preference.update({TaskKind(k): v for k, v in role.preference.items()})
        profiles[name] = RoleProfile(
            name, _can_chat(role), role.can_embed, preference, role.n_gpu_layers != 0
        )
    router = ZetaDynamicRouter(
        profiles, telemetry, config.router.thresholds(), args.policy or config.router.policy
    )
    classifier = TaskClassifier()
    engine = None
    if args.semantic:
        engine, classifier = _semantic_classifier(config)
        if engine is None:
            return 2
    try:
        if args.eval is not None:
            return _evaluate(args.eval, classifier)
        for prompt in _prompts(args):
            result = classifier.classify(prompt)
            try:
                decision = router.route(result.kind, classification=result)
            except NoRoleAvailableError as exc:
                print(f"zeta-desktop route: {exc}", file=sys.stderr)
                return 1
            if args.json:
                print(
                    json.dumps(
                        {
                            "prompt": prompt,
                            "kind": result.kind.value,
                            "confidence": round(result.confidence, 4),
                            "role": decision.role,
                            "reason": decision.reason,
                            "runner_up": decision.runner_up,
                            "policy": decision.policy,
                            "evidence": list(result.evidence),
                            "scores": result.scores,
                        }
                    ),
                    flush=True,
                )
            else:
                short = prompt if len(prompt) <= 60 else prompt[:57] + "..."
                print(
                    f"{decision.role:9} {result.kind.value:9} {result.confidence:4.0%}  "
                    f"{short!r}\n          {decision.reason}\n          evidence: "
                    f"{'; '.join(result.evidence)}",
                    flush=True,
                )
    finally:
        if engine is not None:
            engine.close()
    return 0


def _evaluate(path: Path, classifier: TaskClassifier) -> int:
    from zeta_desktop.core.routing.evaluation import evaluate, format_report, read_labelled

    try:
        rows, problems = read_labelled(path)
    except OSError as exc:
        print(f"zeta-desktop route: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"zeta-desktop route: {path}: {problem} (skipped)", file=sys.stderr)
    if not rows:
        print(f"zeta-desktop route: {path}: no labelled prompts to score", file=sys.stderr)
        return 2
    report = evaluate(classifier.classify, rows)
    print(format_report(report, sources=any(row.source for row in rows)))
    return 0


def _can_chat(role) -> bool:  # type: ignore[no-untyped-def]
    """As the app decides it: the config allows chat and the model can."""
    from zeta_desktop.core.models.files import ModelFileError, resolve_model

    try:
        source = resolve_model(role.model_path, embedding_role=role.can_embed)
    except ModelFileError:
        return bool(role.can_chat)
    return bool(role.can_chat and source.can_chat)


def _semantic_classifier(config):  # type: ignore[no-untyped-def]
    from zeta_desktop.core.engines.base import EngineError, ModelLoadError
    from zeta_desktop.core.engines.llama import LlamaEngine
    from zeta_desktop.core.models.files import ModelFileError, resolve_model
    from zeta_desktop.core.routing.classifier import EmbeddingVote, shipped_embedding_index
    from zeta_desktop.core.routing.learned import PROBE_MATCH

    name = next((n for n in ROLE_NAMES if config.roles[n].can_embed), None)
    if name is None:
        print("zeta-desktop route: no role is set to embed (can_embed)", file=sys.stderr)
        return None, None
    index = shipped_embedding_index()
    if index is None:
        print("zeta-desktop route: the embedding index cannot be read", file=sys.stderr)
        return None, None
    role = config.roles[name]
    try:
        source = resolve_model(role.model_path, embedding_role=True)
        engine = LlamaEngine.load(
            source.path, LoadSettings(role.n_ctx, role.n_gpu_layers, role.n_threads, True)
        )
        similarity = index.matches(engine.embed(list(index.probe_texts)))
    except (ModelFileError, ModelLoadError, EngineError) as exc:
        print(f"zeta-desktop route: cannot load the {name} role: {exc}", file=sys.stderr)
        return None, None
    if similarity < PROBE_MATCH:
        engine.close()
        print(
            f"zeta-desktop route: the {name} role's model ({source.path.name}) is not "
            f"{index.model_name}, which the embedding index was built with; "
            "run without --semantic",
            file=sys.stderr,
        )
        return None, None
    return engine, TaskClassifier(EmbeddingVote(index, engine.embed))
