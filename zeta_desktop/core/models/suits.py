"""Which built-in role a model suits, from its header and name (a suggestion)."""

from __future__ import annotations

import re

from zeta_desktop.core.models.gguf_info import GGUFInfo

_CODE_NAMES = re.compile(r"cod(e|er|estral|ellama)|starcoder|deepseek-?coder|qwen.*coder", re.I)
_REASONING_NAMES = re.compile(r"\br1\b|reason|think|qwq|o1|phi-?4|magistral", re.I)
REASONER_MIN_PARAMETERS = 10e9  # a 14B-class model: the reasoner's size


def suggested_role(info: GGUFInfo, display_name: str = "") -> str:
    """'embedder' for an embedding model; 'coder' for a code model; 'reasoner'
    for a reasoning or large model; else 'coder' (the general chat role)."""
    name = f"{display_name} {info.name} {info.path.name}"
    if info.is_embedding:
        return "embedder"
    if _CODE_NAMES.search(name):
        return "coder"
    if _REASONING_NAMES.search(name) or info.parameters >= REASONER_MIN_PARAMETERS:
        return "reasoner"
    return "coder"
