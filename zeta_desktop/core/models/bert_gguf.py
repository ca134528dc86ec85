"""Convert a sentence-transformers BERT folder (safetensors) to a GGUF llama.cpp runs.

Numpy and the `gguf` package only: llama.cpp's own convert_hf_to_gguf.py
needs torch. What matters, each checked against llama.cpp 0.3.36's loader:
- architecture `bert` with `bert.attention.layer_norm_epsilon` and a token
  type count of 2 (the load fails without either);
- the pooling type from `1_Pooling/config.json` (mean), else llama.cpp
  returns one vector per token;
- the WordPiece vocabulary spelled as llama.cpp's BertModel writes it
  (`##x` -> `x`, a word-initial `x` -> `\u2581x`, control tokens unchanged):
  with the HF spelling every word silently becomes [UNK];
- tensor names from gguf's BERT map, dropping position ids and the pooler.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import numpy as np

WORD_START = "\u2581"
_DTYPES = {"F32": np.float32, "F16": np.float16}
_SKIPPED = ("embeddings.position_ids", "pooler.")
_ALWAYS_F32 = ("position_embd.", "token_types.")


class ConversionError(Exception):
    """The folder is not a BERT sentence-embedding model this converter knows."""


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as numpy arrays (memory-mapped)."""
    with path.open("rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            if any(name.startswith(s) for s in _SKIPPED):
                continue
            raise ConversionError(f"{path.name}: {name} is {info['dtype']}, not F32/F16")
        start, end = info["data_offsets"]
        tensors[name] = data[start:end].view(dtype).reshape(info["shape"])
    return tensors


def _gguf_vocab(folder: Path) -> tuple[list[str], list[int]]:
    import gguf

    doc = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    if doc.get("model", {}).get("type") != "WordPiece":
        raise ConversionError(f"{folder}: tokenizer is not WordPiece")
    by_id = {index: token for token, index in doc["model"]["vocab"].items()}
    control = {t["id"] for t in doc.get("added_tokens", []) if t.get("special")}
    tokens, types = [], []
    for index in range(max(by_id) + 1):
        token = by_id.get(index, f"[PAD{index}]")
        if index in control:
            tokens.append(token)
            types.append(int(gguf.TokenType.CONTROL))
        else:
            tokens.append(token[2:] if token.startswith("##") else WORD_START + token)
            types.append(int(gguf.TokenType.NORMAL))
    return tokens, types


def convert_bert(folder: Path, out: Path, name: str) -> Path:
    """Write `out` (f16 matrices, f32 vectors) from a sentence-transformers folder."""
    import gguf

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert":
        raise ConversionError(f"{folder}: model_type is {config.get('model_type')!r}, not bert")
    pooling_file = folder / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_file.read_text(encoding="utf-8")) if pooling_file.exists() else {}
    if pooling.get("pooling_mode_cls_token"):
        pooling_type = gguf.PoolingType.CLS
    else:
        pooling_type = gguf.PoolingType.MEAN
    blocks = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)
    tensors = read_safetensors(folder / "model.safetensors")

    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # two processes may convert at once
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(tmp), "bert")
    writer.add_name(name)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(blocks)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling_type)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, types = _gguf_vocab(folder)
    writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    # SpecialVocab warns that it has no key for [CLS]; llama.cpp's WordPiece
    # tokenizer adds [CLS] and [SEP] from the BOS/EOS-style ids it does write.
    logging.getLogger("gguf.vocab").setLevel(logging.ERROR)
    gguf.SpecialVocab(folder, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
    for hf_name, array in sorted(tensors.items()):
        if any(hf_name.removeprefix("bert.").startswith(s) for s in _SKIPPED):
            continue
        plain = hf_name.removeprefix("bert.").replace(".gamma", ".weight").replace(".beta", ".bias")
        gguf_name = names.get_name(plain, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ConversionError(f"{folder}: no GGUF name for tensor {hf_name}")
        # llama.cpp adds the position and token-type embeddings in f32 (an f16
        # one aborts in ggml) and wants vectors in f32; the other matrices halve
        # the file in f16.
        full = array.ndim == 1 or gguf_name.startswith(_ALWAYS_F32)
        dtype = np.float32 if full else np.float16
        writer.add_tensor(gguf_name, np.ascontiguousarray(array, dtype=dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out
