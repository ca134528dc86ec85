"""Tokens/s through a ModelWorker vs the same engine called on this thread.

The baseline is `LlamaEngine.stream_chat` itself, on the calling thread, so
the ratio is the worker's own cost (its queue, thread, context fitting and
listener calls), not a difference between two decode loops. Both sides
decode greedily (temperature 0) from the same GGUF with the same thread
count, alternating runs so machine noise hits both alike, and must produce
the same number of tokens. Prints the median decode tokens/s of each and the
ratio worker / engine (target >= 0.97).

    make bench-worker            # demo model
    make bench-worker QUICK=1    # 2 runs of 24 tokens: a smoke run
    python benchmarks/worker_overhead.py --model PATH --runs 5 --tokens 256

Writes benchmarks/results/worker.json (or --json PATH).
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from pathlib import Path

from bench_results import demo_model, quick_parser, write_results

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import ChatJob, ChatWaiter, ModelWorker

PROMPT = "Write a short story about a lighthouse keeper who learns to program."


def bare_run(engine: LlamaEngine, tokens: int) -> tuple[int, float]:
    count, first, last = 0, None, None
    for _piece in engine.stream_chat(
        [{"role": "user", "content": PROMPT}],
        max_tokens=tokens,
        temperature=0.0,
        cancel=threading.Event(),
    ):
        now = time.perf_counter()
        first = first or now
        last = now
        count += 1
    assert first is not None and last is not None
    return count, (count - 1) / (last - first)


def worker_run(worker: ModelWorker, tokens: int) -> tuple[int, float]:
    waiter = ChatWaiter()
    worker.submit(
        ChatJob(
            messages=[{"role": "user", "content": PROMPT}],
            listener=waiter,
            max_tokens=tokens,
            temperature=0.0,
        )
    )
    waiter.done.wait()
    if waiter.stats is None:
        raise RuntimeError(waiter.error)
    return waiter.stats.n_tokens, waiter.stats.tokens_per_s


def main() -> int:
    parser = quick_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: demo)")
    parser.add_argument("--runs", type=int, help="default 9, quick 2")
    parser.add_argument("--tokens", type=int, help="default 200, quick 24")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None,
                        help="default: benchmarks/results/worker.json ($ZETA_BENCH_RESULTS)")
    args = parser.parse_args()
    args.runs = args.runs or (2 if args.quick else 9)
    args.tokens = args.tokens or (24 if args.quick else 200)
    model = args.model or demo_model()
    n_ctx = 2048
    settings = LoadSettings(n_ctx=n_ctx, n_gpu_layers=0, n_threads=args.threads, embedding=False)

    def load_bare() -> LlamaEngine:
        return LlamaEngine.load(model, settings)

    def load_worker() -> ModelWorker:
        worker = ModelWorker("bench", model, settings, LlamaEngine.load)
        worker.start()
        worker.wait_loaded()
        return worker

    bare_rates, worker_rates, counts = [], [], set()
    # Two phases with the load order swapped: on these machines the instance
    # loaded second decodes a few percent slower, whoever owns it.
    for phase in range(2):
        if phase == 0:
            bare, worker = load_bare(), load_worker()
        else:
            worker, bare = load_worker(), load_bare()
        # Warm both once: first runs pay for page faults and allocation.
        bare_run(bare, 16)
        worker_run(worker, 16)
        for index in range((args.runs + 1) // 2):
            # ABBA order, so a slow drift of the machine favours neither side.
            order = ("bare", "worker") if index % 2 == 0 else ("worker", "bare")
            for side in order:
                if side == "bare":
                    n, rate = bare_run(bare, args.tokens)
                    bare_rates.append(rate)
                else:
                    n, rate = worker_run(worker, args.tokens)
                    worker_rates.append(rate)
                counts.add((side, n))
        worker.shutdown()
        bare.close()
    bare_median = statistics.median(bare_rates)
    worker_median = statistics.median(worker_rates)
    # Each pair ran back to back: their ratio cancels most of the machine's noise.
    ratio = statistics.median(w / b for w, b in zip(worker_rates, bare_rates, strict=True))
    print(f"model   {model.name}  threads {args.threads}  runs {args.runs}  tokens {args.tokens}")
    print(f"tokens  {sorted(counts)}")
    if len({n for _side, n in counts}) != 1:
        print("MISS: the two sides produced different token counts; the ratio compares "
              "different work")
    print(f"engine  {bare_median:8.1f} tok/s  (runs: {', '.join(f'{r:.1f}' for r in bare_rates)})")
    print(
        f"worker  {worker_median:8.1f} tok/s  (runs: {', '.join(f'{r:.1f}' for r in worker_rates)})"
    )
    verdict = "meets" if ratio >= 0.97 else "MISSES"
    print(f"ratio   {ratio:.3f}  (median of paired worker / engine on this thread; "
          f"{verdict} the 0.97 target)")
    report = {
        "model": str(model),
        "quick": args.quick,
        "runs": args.runs,
        "tokens": args.tokens,
        "threads": args.threads,
        "bare_tok_s": bare_rates,
        "worker_tok_s": worker_rates,
        "bare_median_tok_s": bare_median,
        "worker_median_tok_s": worker_median,
        "ratio": ratio,
    }
    if args.json is None:
        print(f"wrote {write_results('worker', report)}")
    else:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
