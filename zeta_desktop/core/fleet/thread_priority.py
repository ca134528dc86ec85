"""Run model threads below the window's priority, so the window stays responsive.

Three models decoding on a few cores keep every core busy. At equal priority
the GUI thread waits its turn behind them (tens of ms on a 2-core machine),
which the user feels as a stuttering window. A niced model thread loses
nothing when the machine is otherwise idle: nice only matters under contention.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

MODEL_THREAD_NICE = 10  # on Linux's 0..19 scale; the GUI thread stays at 0


def lower_current_thread_priority(nice: int = MODEL_THREAD_NICE) -> str | None:
    """Lower this thread's priority; threads it creates later (ggml's) inherit it.

    Returns None when applied, else why not. Only Linux has per-thread nice
    values; elsewhere setpriority would renice the whole process, GUI included.
    """
    if not sys.platform.startswith("linux"):
        return f"per-thread priority is not supported on {sys.platform}"
    thread_id = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread_id)
        os.setpriority(os.PRIO_PROCESS, thread_id, max(current, nice))
    except OSError as exc:
        return f"could not lower the thread priority: {exc}"
    return None
