"""What a GGUF file is, read from its header with the `gguf` package: no load.

Name, architecture, parameter count, quantisation, trained context, chat
template, whether it is an embedding model, and the sizes a memory estimate
needs (layers, heads, embedding width). Split files (`-00001-of-00003.gguf`)
are one model. A file that cannot be read says why and never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zeta_desktop.core.models.gguf_header import ArrayInfo, Header, HeaderError, read_header

# Architectures that only encode: they embed, they never chat.
ENCODER_ARCHITECTURES = frozenset({
    "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "t5encoder",
    "modern-bert", "neo-bert", "eurobert",
})
SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass
class GGUFInfo:
    path: Path
    error: str = ""  # why it could not be read ('' when it could)
    name: str = ""
    architecture: str = ""
    parameters: int = 0
    quantization: str = ""
    context_length: int = 0
    has_chat_template: bool = False
    is_embedding: bool = False
    file_bytes: int = 0  # all parts of a split model
    parts: list[Path] = field(default_factory=list)
    n_layers: int = 0
    n_embd: int = 0
    n_head: int = 0
    n_head_kv: int = 0
    head_dim_k: int = 0
    head_dim_v: int = 0
    n_vocab: int = 0

    @property
    def kind(self) -> str:
        if self.error:
            return "unreadable"
        return "embedding" if self.is_embedding else "chat"

    def as_dict(self) -> dict[str, Any]:
        if self.error:
            return {"path": str(self.path), "error": self.error}
        return {
            "path": str(self.path), "name": self.name, "architecture": self.architecture,
            "parameters": self.parameters, "quantization": self.quantization,
            "context_length": self.context_length, "kind": self.kind,
            "chat_template": self.has_chat_template, "file_bytes": self.file_bytes,
            "parts": len(self.parts) or 1,
        }


def _quantization(header: Header) -> str:
    import gguf

    file_type = header.fields.get("general.file_type")
    if isinstance(file_type, int):
        try:
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix(
                "ALL_")
        except ValueError:
            return f"type {file_type}"
    # No file type written: the most common weight type among the tensors.
    counts: dict[str, int] = {}
    for tensor in header.tensors:
        counts[tensor.type_name] = counts.get(tensor.type_name, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else ""


def split_parts(path: Path) -> list[Path]:
    """All files of a split model, given any one of them; [path] when not split."""
    match = SPLIT_NAME.match(path.name)
    if match is None:
        return [path]
    count = int(match.group("count"))
    stem = match.group("stem")
    return [path.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def read_info(path: Path) -> GGUFInfo:
    """The header of `path` (the first part, for a split model); never raises."""
    parts = split_parts(path)
    info = GGUFInfo(parts[0], parts=parts if len(parts) > 1 else [])
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        info.error = (f"split model: missing {', '.join(missing)}" if len(parts) > 1
                      else f"{path.name} not found")
        return info
    try:
        info.file_bytes = sum(p.stat().st_size for p in parts)
        header = read_header(parts[0])
        others = [read_header(p) for p in parts[1:]]
    except (HeaderError, OSError) as exc:
        info.error = f"not a readable GGUF file ({str(exc)[:160] or type(exc).__name__})"
        return info
    fields = header.fields
    arch = str(fields.get("general.architecture") or "")
    info.architecture = arch
    info.name = str(fields.get("general.name") or parts[0].stem)
    info.quantization = _quantization(header)

    def number(key: str) -> int:
        value = fields.get(f"{arch}.{key}")
        if isinstance(value, ArrayInfo):  # per-layer values: the largest
            value = value.largest if value.largest is not None else value.first
        return int(value) if isinstance(value, int | float) else 0

    info.context_length = number("context_length")
    info.n_layers = number("block_count")
    info.n_embd = number("embedding_length")
    info.n_head = number("attention.head_count")
    info.n_head_kv = number("attention.head_count_kv") or info.n_head
    default_head = info.n_embd // info.n_head if info.n_head else 0
    info.head_dim_k = number("attention.key_length") or default_head
    info.head_dim_v = number("attention.value_length") or default_head
    tokens = fields.get("tokenizer.ggml.tokens")
    info.n_vocab = tokens.length if isinstance(tokens, ArrayInfo) else 0
    info.has_chat_template = "tokenizer.chat_template" in fields
    pooling = fields.get(f"{arch}.pooling_type")
    info.is_embedding = arch in ENCODER_ARCHITECTURES or (
        isinstance(pooling, int) and pooling > 0 and not info.has_chat_template)
    counted = fields.get("general.parameter_count")
    info.parameters = int(counted) if isinstance(counted, int) else sum(
        t.n_elements for h in (header, *others) for t in h.tensors)
    return info
