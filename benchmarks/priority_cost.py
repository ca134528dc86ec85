"""What running model threads at low priority costs in throughput.

Three workers with the demo model (1 thread each) stream 200-token answers
back to back while this (the "GUI") thread wakes every millisecond to do a
little Python, as a busy window would. Total tokens/s with the model threads
niced (`low_priority = true`, the default) against normal priority, in ABBA
order in one process:

    .venv/bin/python benchmarks/priority_cost.py
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

from bench_results import demo_model

from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.fleet.worker import ChatJob, ChatWaiter, ModelWorker

SECONDS = 12.0
PROMPT = [{"role": "user", "content": "Tell me a long story about a lighthouse."}]


class TokenCounter(ChatWaiter):
    def __init__(self, counts: list[int], slot: int) -> None:
        super().__init__()
        self.counts, self.slot = counts, slot

    def on_token(self, job: ChatJob, text: str) -> None:
        self.counts[self.slot] += 1  # one slot per worker thread: no lost updates


def tokens_per_s(model, low_priority: bool) -> float:  # type: ignore[no-untyped-def]
    settings = LoadSettings(
        n_ctx=1024, n_gpu_layers=0, n_threads=1, embedding=False, low_priority=low_priority
    )
    workers = [ModelWorker(f"w{i}", model, settings, LlamaEngine.load) for i in range(3)]
    for worker in workers:
        worker.start()
        worker.wait_loaded()
    counts, stop = [0] * len(workers), threading.Event()

    def keep_busy(slot: int, worker: ModelWorker) -> None:
        while not stop.is_set():
            waiter = TokenCounter(counts, slot)
            worker.submit(ChatJob(PROMPT, waiter, max_tokens=200, temperature=0.7))
            waiter.done.wait()

    feeders = [threading.Thread(target=keep_busy, args=(i, w)) for i, w in enumerate(workers)]
    for feeder in feeders:
        feeder.start()
    time.sleep(2)  # past the first prompts
    before, start = sum(counts), time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        time.sleep(0.001)
        sum(i * i for i in range(300))  # ~0.1 ms of Python, like a repaint's
    rate = (sum(counts) - before) / (time.perf_counter() - start)
    stop.set()
    for worker in workers:
        worker.cancel_all()
    for feeder in feeders:
        feeder.join()
    for worker in workers:
        worker.shutdown()
    return rate


def main() -> int:
    model = demo_model()
    rates: dict[bool, list[float]] = {True: [], False: []}
    for low in (True, False, False, True):
        rates[low].append(tokens_per_s(model, low))
        print(f"{'low' if low else 'normal':6} priority: {rates[low][-1]:6.1f} tok/s", flush=True)
    low, normal = statistics.mean(rates[True]), statistics.mean(rates[False])
    print(f"low / normal priority throughput: {low / normal:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
