"""The child side of the load check (`zeta-desktop _load-check PATH N_CTX EMBED`).

See core/models/load_check.py: the app runs this in a separate process for a
model file it has not loaded before, so a file that makes ggml abort takes
down only this process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def main(argv: list[str]) -> int:
    """In the child: load, print 'ok' or the reason, exit 0 or 1 (or die trying)."""
    from zeta_desktop.core.engines.base import LoadSettings, ModelLoadError
    from zeta_desktop.core.engines.llama import LlamaEngine

    path, n_ctx, embedding = Path(argv[0]), int(argv[1]), argv[2] == "1"
    # Tests: ZETA_LOAD_CHECK_HOOK=abort:NAME (or hang:NAME) makes the child
    # abort (or hang) on the file NAME, as a malformed file can.
    action, _, name = os.environ.get("ZETA_LOAD_CHECK_HOOK", "").partition(":")
    if name == path.name and action == "abort":
        os.abort()
    if name == path.name and action == "hang":
        threading.Event().wait()
    try:
        engine = LlamaEngine.load(path, LoadSettings(n_ctx, 0, 1, embedding))
    except ModelLoadError as exc:
        print(str(exc))
        return 1
    engine.close()
    print("ok")
    return 0
