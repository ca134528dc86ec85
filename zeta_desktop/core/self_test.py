"""`--self-test`: load every role, stream from each chat replica, embed once, report."""

from __future__ import annotations

from collections.abc import Callable

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.engines.base import EngineError
from zeta_desktop.core.engines.build_info import build_info
from zeta_desktop.core.fleet.worker import ChatJob, ChatWaiter, EmbedJob, WorkerState

SELF_TEST_PROMPT = "Say hello in five words."
SELF_TEST_TOKENS = 16


def run_self_test(
    session: ChatSession, emit: Callable[[str], None], timeout: float = 600.0
) -> int:
    """Returns 0 when every role loaded and did its work, else 1."""
    emit(build_info().describe())
    session.wait_loaded(timeout)
    failures = 0
    replicas = [(r, runtime) for runtime in session.roles.values() for r in runtime.replicas]
    for replica, runtime in replicas:
        name, worker = replica.key, replica.worker
        model = session.fleet.model_file(name) or "(none)"
        if worker.state is WorkerState.UNAVAILABLE or worker.load_seconds is None:
            detail = worker.detail.removeprefix(f"{model}: ")  # a server's names itself
            emit(f"FAIL {name}: {model}: {detail}")
            failures += 1
            continue
        parts = [f"{name}: {model}", f"load {worker.load_seconds:.2f} s"]
        if worker.offloaded_layers is not None:  # llama.cpp said it (a build that can offload)
            parts.append("{} of {} layers on the GPU".format(*worker.offloaded_layers))
        if runtime.can_chat:
            outcome = ChatWaiter()
            worker.submit(
                ChatJob(
                    messages=[{"role": "user", "content": SELF_TEST_PROMPT}],
                    listener=outcome,
                    max_tokens=SELF_TEST_TOKENS,
                    temperature=0.0,
                )
            )
            if not outcome.done.wait(timeout):
                outcome.error = f"no answer within {timeout:.0f} s"
            if outcome.error or outcome.stats is None or outcome.stats.n_tokens == 0:
                emit(f"FAIL {name}: {model}: chat: {outcome.error or 'no tokens streamed'}")
                failures += 1
                continue
            stats = outcome.stats
            parts.append(f"{stats.n_tokens} tokens")
            parts.append(f"{stats.tokens_per_s:.1f} tok/s")
        if runtime.config.can_embed:
            job = EmbedJob(["The quick brown fox.", "Zeta Desktop self-test."])
            worker.submit(job)
            try:
                vectors = job.result.result(timeout)
            except (EngineError, TimeoutError) as exc:
                emit(f"FAIL {name}: {model}: embedding: {exc}")
                failures += 1
                continue
            parts.append(f"embedding {len(vectors)}x{len(vectors[0])}")
        emit("ok   " + " · ".join(parts))
    return 1 if failures else 0
