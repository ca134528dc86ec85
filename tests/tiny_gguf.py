"""Write a tiny random-weight llama GGUF that llama.cpp really loads and runs.

A few hundred KB, loads in milliseconds. The weights are random, but shaped so
that the model never picks an end-of-generation or control token: dimension 0
of the residual stream is a large constant that no layer writes to, and the
output row of every word token is positive there while control and byte rows
are negative. So a stream runs until max_tokens or Stop, which is what tests
of streaming and cancelling need.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

WORDS = [
    "alpha", "beta", "gamma", "delta", "code", "model", "token", "stream", "zeta",
    "local", "thread", "queue", "router", "fast", "slow", "hello", "world", "python",
    "def", "return", "proof", "reason", "embed", "vector", "desk", "chat", "plot",
]


def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [
        gguf.TokenType.UNKNOWN,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
    ]
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(gguf.TokenType.BYTE)
    pieces = ["▁" + w for w in WORDS] + list("abcdefghijklmnopqrstuvwxyz") + ["▁", "\n"]
    for piece in pieces:
        tokens.append(piece)
        types.append(gguf.TokenType.NORMAL)
    # Longer pieces score higher so the tokenizer prefers whole words.
    scores = [
        float(len(p)) if t == gguf.TokenType.NORMAL else 0.0
        for p, t in zip(tokens, types, strict=True)
    ]
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama(
    path: Path,
    *,
    n_ctx: int = 512,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    seed: int = 0,
    chat_template: str | None = CHATML_TEMPLATE,
    pooling_mean: bool = False,
    split_max_tensors: int = 0,
) -> Path:
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    # split_max_tensors > 0 writes a real split model: path-0000k-of-0000n.gguf.
    writer = gguf.GGUFWriter(str(path), "llama", split_max_tensors=split_max_tensors)
    writer.add_name("zeta-tiny-test")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(4 if chat_template else 2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template:
        writer.add_chat_template(chat_template)
    if pooling_mean:
        writer.add_pooling_type(gguf.PoolingType.MEAN)

    def randn(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes are ggml's reversed: ggml [n_embd, n_vocab] is (n_vocab, n_embd).
    token_embd = randn(n_vocab, n_embd, scale=0.5)
    token_embd[:, 0] = 50.0  # the constant "never stop" direction
    writer.add_tensor("token_embd.weight", token_embd)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    output = randn(n_vocab, n_embd, scale=1.0)
    is_word = np.array([t == gguf.TokenType.NORMAL for t in types])
    output[:, 0] = np.where(is_word, 0.5, -5.0)
    writer.add_tensor("output.weight", output)
    for block in range(n_layer):
        prefix = f"blk.{block}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_q.weight", randn(n_embd, n_embd, scale=0.3))
        writer.add_tensor(f"{prefix}.attn_k.weight", randn(n_embd, n_embd, scale=0.3))
        writer.add_tensor(f"{prefix}.attn_v.weight", randn(n_embd, n_embd, scale=0.3))
        attn_out = randn(n_embd, n_embd, scale=0.3)
        attn_out[0, :] = 0.0  # nothing writes into dimension 0
        writer.add_tensor(f"{prefix}.attn_output.weight", attn_out)
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", randn(n_ff, n_embd, scale=0.3))
        writer.add_tensor(f"{prefix}.ffn_up.weight", randn(n_ff, n_embd, scale=0.3))
        ffn_down = randn(n_embd, n_ff, scale=0.3)
        ffn_down[0, :] = 0.0
        writer.add_tensor(f"{prefix}.ffn_down.weight", ffn_down)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
