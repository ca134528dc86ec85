"""How long Stop takes while a long prompt is still being read: `make bench-stop`.

The demo model reads a ~1600-token prompt (2 threads); Stop is pressed 0.2 s
in. The engine reads the prompt in llama.cpp batches and hears Stop between
them; the baseline, in the same process, hands the whole prompt to
`Llama.generate` in one call, as the engine did before. Alternating runs,
two of each (`--quick` or QUICK=1: one of each over a ~250-token prompt,
inside one llama.cpp batch, so both read it all: a smoke run, no ratio to
read). Writes benchmarks/results/stop.json.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

from bench_results import demo_model, quick_parser, write_results

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine

PRESS_AFTER_S = 0.2
TEXT = "The lighthouse keeper wrote a long letter about the sea, the ships and the weather. "


def messages(repeats: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": TEXT * repeats + "Summarise it."}]


MESSAGES = messages(90)


def stop_delay_s(engine: LlamaEngine) -> float:
    """From pressing Stop to the answer ending, with an empty cache (a new prompt)."""
    engine._llm.reset()
    cancel = threading.Event()
    pressed = threading.Timer(PRESS_AFTER_S, cancel.set)
    start = time.perf_counter()
    pressed.start()
    list(engine.stream_chat(MESSAGES, max_tokens=10, temperature=0.5, cancel=cancel))
    return time.perf_counter() - start - PRESS_AFTER_S


def main() -> int:
    global MESSAGES
    quick = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    if quick:
        MESSAGES = messages(13)
    settings = LoadSettings(n_ctx=4096, n_gpu_layers=0, n_threads=2, embedding=False)
    engine = LlamaEngine.load(demo_model(), settings)
    prompt = engine._chat_request(MESSAGES, max_tokens=10, temperature=0.5)["prompt"]
    in_batches = LlamaEngine._prefill
    delays: dict[str, list[float]] = {"batches": [], "one call": []}
    try:
        for _ in range(1 if quick else 2):
            for name in delays:
                # The baseline skips the engine's own read: generate reads it all at once.
                LlamaEngine._prefill = in_batches if name == "batches" else (  # type: ignore[method-assign]
                    lambda _self, _prompt, _cancel: True
                )
                delays[name].append(stop_delay_s(engine))
    finally:
        LlamaEngine._prefill = in_batches  # type: ignore[method-assign]
        engine.close()
    ours, baseline = (statistics.median(delays[name]) for name in ("batches", "one call"))
    print(f"prompt {len(prompt)} tokens, llama.cpp batch {engine._llm.n_batch}; Stop at "
          f"{PRESS_AFTER_S} s")
    for name, values in delays.items():
        print(f"  {name:9} answer ended {statistics.median(values):5.2f} s after Stop "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"ratio {ours / baseline:.3f} (read in batches / in one call)")
    write_results("stop", {"quick": quick, "prompt_tokens": len(prompt),
                           "n_batch": engine._llm.n_batch, "press_after_s": PRESS_AFTER_S,
                           "delays_s": delays, "batches_median_s": ours,
                           "one_call_median_s": baseline, "ratio": ours / baseline})
    return 0


if __name__ == "__main__":
    sys.exit(main())
