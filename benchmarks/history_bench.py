"""make bench-history: a large history in the real window, and kill -9 mid-answer.

1. A store of 200 conversations and 20,000 messages (two of them 500 messages
   long, the rest 95): the window's construction to the last conversation
   shown; switching between the two long ones; an FTS search. Median and max.
   The baseline in the same run is the same window over an empty history.
2. kill -9 at a random point mid-answer, N times: a child streams the demo
   model into a real history file and prints each token; the parent kills it
   at a random time in the answer, reopens the file and compares. Reported:
   prompts lost (target 0) and the most answer text lost, against what the
   child had printed in its last flush interval (target: no more than that).

`--quick` (or QUICK=1): 20 conversations (the two long ones still 500
messages), 2 window openings of each, 4 switches, 5 searches, one kill at a
random point in the answer's first second (KILL_RUNS still sets the kills):
a smoke run. Writes benchmarks/results/history.json.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_results import demo_model, print_checks, quick_parser, write_results

from zeta_desktop.core.chat.history_recorder import FLUSH_S
from zeta_desktop.core.config import LoadedConfig
from zeta_desktop.core.conversation.model import Conversation
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.settings import AppConfig
from zeta_desktop.core.store.history import HistoryStore

WORDS = [
    "lighthouse", "keeper", "tide", "storm", "harbour", "lantern", "gull", "rope", "anchor",
    "island", "fog", "bell", "python", "function", "list", "sort", "recursion", "proof",
    "prime", "theorem", "garden", "recipe",
]
SEED = 20261201  # this benchmark's own; nothing was tuned on it
# (conversations, window openings, switches, searches, kills, latest kill s)
FULL = (200, 5, 10, 20, 20, 3.0)
QUICK = (20, 2, 4, 5, 1, 1.0)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def fill(store: HistoryStore, conversations: int, long_ids: int) -> tuple[list[str], int]:
    rng = random.Random(SEED)
    ids, messages = [], 0
    for index in range(conversations):
        conversation = Conversation.new()
        parent = None
        # Two long ones, the rest 96 or 95 messages: 20,000 in 200 conversations.
        length = 500 if index < long_ids else (96 if index < conversations - 8 else 95)
        for turn in range(length):
            author = "user" if turn % 2 == 0 else "assistant"
            parent = conversation.add(parent, author, sentence(rng, 12 if author == "user"
                                                                else 60)).id
        store.import_conversation(conversation)
        ids.append(conversation.id)
        messages += length
    store.flush(600)
    return ids, messages


def window_over(path: Path):  # type: ignore[no-untyped-def]
    from zeta_desktop.ui.app import compose_window

    loaded = LoadedConfig(AppConfig(), path.parent / "config.toml", [])
    return compose_window(loaded, loaded.config, LlamaEngine.load, history_path=path)


def until(app, condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout
    while not condition():
        app.processEvents()
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not get there")
        time.sleep(0.0005)


def open_time(app, path: Path) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    win = window_over(path)
    win.show()
    until(app, lambda: win.history.restored)
    app.processEvents()  # the first paint of what it shows
    elapsed = time.perf_counter() - started
    win.close()
    win.shutdown()
    return elapsed


def ms(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1), "n": len(values)}


def big_history(app, tmp: Path, conversations: int, openings: int,  # type: ignore[no-untyped-def]
                switch_count: int, search_count: int) -> dict:
    path = tmp / "big" / "history.sqlite3"
    path.parent.mkdir()
    store = HistoryStore(path)
    started = time.perf_counter()
    ids, messages = fill(store, conversations, 2)
    fill_s = time.perf_counter() - started
    store.set_state("last_conversation", ids[0]).result(10)
    store.close()
    empty = tmp / "empty" / "history.sqlite3"
    empty.parent.mkdir()
    opened, baseline = [], []
    for _ in range(openings):  # alternating, so a slow spell hits both
        opened.append(open_time(app, path))
        baseline.append(open_time(app, empty))

    win = window_over(path)
    win.show()
    until(app, lambda: win.history.restored)
    switches = []
    for index in range(switch_count):
        target = ids[index % 2 == 0]
        done = threading.Event()
        started = time.perf_counter()
        win.history.open(target, "", then=done.set)
        until(app, done.is_set)
        app.processEvents()
        switches.append(time.perf_counter() - started)
    searches = []
    rng = random.Random(SEED + 1)
    for _ in range(search_count):
        word = rng.choice(WORDS)
        started = time.perf_counter()
        hits = win.api.history.search(word).result(30)
        searches.append(time.perf_counter() - started)
        assert hits
    shown = len([v for v in win.chat.message_views() if v.key is not None])
    win.close()
    win.shutdown()
    return {
        "store": {"conversations": conversations, "messages": messages,
                  "fill_s": round(fill_s, 1), "file_mb": round(path.stat().st_size / 2**20, 1)},
        "start_to_last_conversation_shown": ms(opened),
        "start_with_empty_history": ms(baseline),
        "switch_between_500_message_conversations": ms(switches),
        "messages_built_per_switch": shown,
        "fts_search": ms(searches),
    }


def kills(model: Path, tmp: Path, runs: int, latest_s: float) -> dict:
    rng = random.Random(SEED + 2)
    child_script = Path(__file__).resolve().parents[1] / "tests" / "crash_child.py"
    lost_prompts, lost_chars, last_window_chars, said_chars = 0, [], [], []
    for run in range(runs):
        db = tmp / f"kill-{run}.sqlite3"
        child = subprocess.Popen(
            [sys.executable, str(child_script), str(db), str(model)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        tokens: list[tuple[float, str]] = []

        def read(stream=child.stdout, into=tokens) -> None:  # type: ignore[no-untyped-def]
            for line in stream:
                into.append((time.perf_counter(), json.loads(line)["token"]))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.perf_counter() + 120
        while not tokens and time.perf_counter() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, latest_s))  # a random point in the answer
        killed_at = time.perf_counter()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        reader.join(5)
        said = "".join(t for _at, t in tokens)
        recent = "".join(t for at, t in tokens if at > killed_at - FLUSH_S)
        store = HistoryStore(db)
        store.mark_interrupted().result(10)
        infos = store.list_conversations().result(10)
        if not infos:
            lost_prompts += 1
            store.close()
            continue
        conversation = store.load_conversation(infos[0].id).result(10)
        store.close()
        path = conversation.visible()
        answer = path[-1].content if len(path) == 2 else ""
        assert said.startswith(answer), "the stored answer is not what the model said"
        lost_chars.append(len(said) - len(answer))
        last_window_chars.append(len(recent))
        said_chars.append(len(said))
    within = [lost <= window for lost, window in zip(lost_chars, last_window_chars, strict=True)]
    return {"runs": runs, "prompts_lost": lost_prompts,
            "answer_chars_said": said_chars, "answer_chars_lost": lost_chars,
            "chars_in_last_flush_window": last_window_chars,
            "lost_within_last_flush_window": sum(within),
            "max_chars_lost": max(lost_chars, default=0)}


def main() -> int:
    from zeta_desktop.ui.app import make_application

    quick = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    conversations, openings, switches, searches, runs, latest_s = QUICK if quick else FULL
    runs = int(os.environ.get("KILL_RUNS", runs))
    app = make_application()
    model = demo_model()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["ZETA_DATA_DIR"] = str(tmp / "data")
        report = {"quick": quick, **big_history(app, tmp, conversations, openings, switches,
                                                  searches)}
        report["kill_mid_answer"] = kills(model, tmp, runs, latest_s)
    print(json.dumps(report, indent=1))
    start = report["start_to_last_conversation_shown"]["median_ms"]
    base = report["start_with_empty_history"]["median_ms"]
    print(f"start to last conversation shown: {start} ms vs {base} ms with an empty history"
          f" (ratio {start / base:.2f})")
    kill = report["kill_mid_answer"]
    print_checks({
        "kill -9: no prompt lost": kill["prompts_lost"] == 0,
        "kill -9: no more answer text lost than the last flush interval's":
            kill["lost_within_last_flush_window"] == kill["runs"],
    })
    print(f"results: {write_results('history', report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
