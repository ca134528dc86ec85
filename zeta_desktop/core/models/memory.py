"""How much memory a model will take, from its header, before it is loaded.

Three parts, as llama.cpp allocates them:
- weights: the file (memory-mapped; a load reads every page), split between
  RAM and VRAM by the share of layers offloaded;
- the KV cache: K and V for every layer and every position of `n_ctx`, at
  f16 (2 bytes), n_head_kv x head size wide; none for an encoder;
- the compute buffer: the worst-case batch graph (one micro-batch of up to
  512 tokens attending to the whole context), in f32. ggml's allocator
  reuses memory between the graph's stages, so it is the larger of its two
  peaks: the attention scores (heads x context x batch, beside a few
  width-sized activations) and the logits (vocabulary x batch, beside the
  last hidden state). llama.cpp's log agrees for the demo model at n_ctx
  2048: KV 45.00 MiB, compute 99.38 MiB (the logits peak).
"""

from __future__ import annotations

from dataclasses import dataclass

from zeta_desktop.core.models.gguf_info import ENCODER_ARCHITECTURES, GGUFInfo

F16_BYTES, F32_BYTES = 2, 4
MICRO_BATCH = 512
ACTIVATIONS = 8  # live width-sized tensors of one layer's graph


@dataclass(frozen=True)
class MemoryEstimate:
    weights_ram: int
    weights_vram: int
    kv_cache: int
    compute: int
    offloaded_layers: int

    @property
    def on_gpu(self) -> bool:
        return self.offloaded_layers > 0

    @property
    def ram_bytes(self) -> int:
        """What stays in this machine's RAM (everything, without offload)."""
        if self.on_gpu:
            return self.weights_ram
        return self.weights_ram + self.kv_cache + self.compute

    @property
    def vram_bytes(self) -> int:
        return self.weights_vram + self.kv_cache + self.compute if self.on_gpu else 0

    @property
    def total_bytes(self) -> int:
        return self.weights_ram + self.weights_vram + self.kv_cache + self.compute


def estimate(info: GGUFInfo, n_ctx: int, n_gpu_layers: int = 0) -> MemoryEstimate:
    """The estimate for loading `info` with these settings (n_gpu_layers -1: all)."""
    layers = max(1, info.n_layers)
    offloaded = layers if n_gpu_layers < 0 else min(n_gpu_layers, layers)
    vram_weights = info.file_bytes * offloaded // layers
    context = n_ctx if n_ctx > 0 else info.context_length  # 0: the model's own
    encoder = info.architecture in ENCODER_ARCHITECTURES  # no cache: it never decodes
    kv = 0 if encoder else (
        info.n_layers * context * info.n_head_kv * (info.head_dim_k + info.head_dim_v) * F16_BYTES
    )
    batch = min(MICRO_BATCH, max(1, context))
    attention_peak = info.n_head * context + ACTIVATIONS * info.n_embd
    logits_peak = info.n_vocab + info.n_embd
    compute = batch * max(attention_peak, logits_peak) * F32_BYTES
    return MemoryEstimate(
        weights_ram=info.file_bytes - vram_weights,
        weights_vram=vram_weights,
        kv_cache=kv,
        compute=compute,
        offloaded_layers=offloaded,
    )


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB" if value < 10 * 2**30 else f"{value / 2**30:.1f} GiB"
