"""A headless chat that streams into a real history file until it is killed.

Run as `python crash_child.py DB MODEL [HOLD_AFTER]`. It sends one prompt and
prints each token as a JSON line ("token"), so the parent knows what was
said; with HOLD_AFTER it holds the answer after that many tokens (the tiny
model would finish first) and prints {"held": true} once the store has
written everything handed to it. The parent then sends SIGKILL.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gated_engine import gated_loader

from zeta_desktop.core.chat.events import AnswerText, SessionEvent
from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig, RoleConfig
from zeta_desktop.core.store.history import HistoryStore

PROMPT = "Tell me a very long story about a lighthouse keeper."


def print_tokens(event: SessionEvent) -> None:
    if isinstance(event, AnswerText):
        print(json.dumps({"token": event.piece}), flush=True)


def main() -> None:
    db, model = Path(sys.argv[1]), sys.argv[2]
    hold_after = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    role = RoleConfig(model_path=model, n_ctx=2048, n_threads=1, max_tokens=1500)
    config = AppConfig(roles={"coder": role,
                              "embedder": RoleConfig(model_path=model, n_ctx=512, n_threads=1,
                                                     can_embed=True),
                              "reasoner": RoleConfig(model_path=model, n_ctx=512, n_threads=1)})
    config.router.semantic = False
    reached, release = threading.Event(), threading.Event()
    loader = gated_loader(hold_after, reached, release) if hold_after else LlamaEngine.load
    store = HistoryStore(db)
    session = ChatSession(config, loader, subscriber=print_tokens, store=store)
    session.start()
    session.wait_loaded(120)
    session.send(PROMPT, role="coder")
    if hold_after:
        reached.wait(120)
        store.flush()
        print(json.dumps({"held": True}), flush=True)
    threading.Event().wait(600)  # until killed


if __name__ == "__main__":
    main()
