"""Documents: indexing speed, query latency as the index grows, recall, and
the GUI while a collection indexes: `make bench-docs`.

1. Indexing throughput, chunks/s, with the demo embedder through the chat
   session's own embedding worker (read, chunk, embed, store), on real files:
   modules of this Python's standard library (code) and the labelled manuals
   (prose). Baseline in the same run: the same chunks embedded straight on an
   engine of the same model, in the same batches: the ratio is what the
   pipeline keeps of the model's own speed. RUNS fresh databases.
2. Query latency (retrieval alone: the question's vector given, then vector
   search, FTS5 keywords, fusion and reading the chunks) at 1,000, 10,000 and
   100,000 stored chunks: the real chunks of (1) repeated, each copy with its
   own words and its vector moved by a little noise, so nothing is cached
   away. p50 and p95 over every labelled question, three rounds; the ratio to
   1,000 chunks shows how it grows, and the ratio to embedding the question
   shows what a search adds to the embedding every query needs anyway.
3. Recall@5 for vectors, keywords and fused, on the held-out ("eval")
   questions of tests/data/docs_eval.toml (the "dev" half is what the tests
   and the fusion weight were set on: shown for reference).
4. The GUI's event loop stall (1 ms probe timer, time-weighted p99, as
   `make bench-ui`) while the demo model streams answers: with a collection
   indexing at the same time (the subject) and without (the baseline), in
   ABBA order. The collection is sized from (1)'s measured speed to index for
   the whole phase.

Writes benchmarks/results/docs.json.

`--quick` (or QUICK=1): the first 5 manuals alone (no stdlib modules) for
one indexing run and for recall (their 10 questions), query latency at
250/500/1,000 chunks over one round, one 0.5 s GUI phase of each kind (AB,
not ABBA): a smoke run. DOCS_BENCH_RUNS and DOCS_BENCH_PHASE_S still apply.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np
from bench_results import demo_model, print_checks, quick_parser, write_results
from docs_eval import (
    EngineEmbedder,
    load_eval,
    open_library,
    recall_at,
    wait_idle,
    write_eval_documents,
)
from ui_bench import Probe, run_event_loop, time_pct

from zeta_desktop.core.chat.session import ChatSession
from zeta_desktop.core.config import LoadedConfig
from zeta_desktop.core.documents import index_db
from zeta_desktop.core.documents.library import DocumentLibrary
from zeta_desktop.core.documents.vectors import to_blob
from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.models.files import find_demo_embedder
from zeta_desktop.core.settings import AppConfig, RoleConfig
from zeta_desktop.core.store.history import HistoryStore

RUNS = int(os.environ.get("DOCS_BENCH_RUNS", "3"))
SCALES = (1_000, 10_000, 100_000)
ROUNDS = 3
PHASE_S = float(os.environ.get("DOCS_BENCH_PHASE_S", "15"))
# For (1): enough for a rate, few enough for three runs on two cores, where
# the demo embedder reads about 8 chunks of ~200 tokens a second per thread.
STDLIB_FILES = 10
EMBED_BATCH = 16
SETTLE_S = 1.0  # the GUI phase's window, loaded, before it is measured
MANUALS: int | None = None  # the labelled manuals used: all (20), or the first n
GUI_ORDER = ("indexing", "baseline", "baseline", "indexing")
QUICK = False


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def stdlib_files(count: int, skip: int = 0) -> list[Path]:
    folder = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in folder.glob("*.py") if 4000 < p.stat().st_size < 20000)
    return files[skip:skip + count]


def manuals(folder: Path) -> Path:
    """The labelled manuals (tests/data/docs_eval.toml): all, or the first MANUALS."""
    write_eval_documents(folder)
    for extra in list(load_eval()[0])[MANUALS:] if MANUALS is not None else []:
        (folder / extra).unlink()
    return folder


def manual_count() -> int:
    return len(list(load_eval()[0])[:MANUALS])


def corpus(folder: Path, count: int, skip: int = 0) -> Path:
    manuals(folder / "manuals")
    code = folder / "code"
    code.mkdir(parents=True, exist_ok=True)
    for source in stdlib_files(count, skip):
        (code / source.name).write_bytes(source.read_bytes())
    return folder


def config(chat: Path, embedder: Path) -> AppConfig:
    app = AppConfig()
    app.roles = {
        "coder": RoleConfig(model_path=str(chat), n_ctx=2048, max_tokens=300, temperature=0.7),
        "embedder": RoleConfig(model_path=str(embedder), n_ctx=512, can_embed=True,
                               can_chat=False),
    }
    app.router.semantic = False
    return app


# -- 1. indexing ------------------------------------------------------------------------


def index_once(chat: Path, embedder: Path, folder: Path, db: Path) -> tuple[int, float]:
    store = HistoryStore(db)
    session = ChatSession(config(chat, embedder), LlamaEngine.load, store=store)
    session.start()
    assert session.wait_loaded(120)
    library = session.library
    assert library is not None
    wait_idle(library)
    started = time.perf_counter()
    library.create_collection("bench", [str(folder)]).result(30)
    wait_idle(library, timeout=1800)
    seconds = time.perf_counter() - started
    [info] = library.collections().result(30)
    session.shutdown(30)
    store.close()
    return info.chunks, seconds


def raw_embedding_rate(embedder: Path, db: Path) -> float:
    """The same chunks, embedded straight on the model in the same batches."""
    import sqlite3

    with sqlite3.connect(db) as c:
        texts = [f"{h}\n{t}" if h else t
                 for h, t in c.execute("SELECT heading, text FROM chunks ORDER BY id")]
    engine = LlamaEngine.load(embedder, LoadSettings(512, 0, 0, True))
    started = time.perf_counter()
    for start in range(0, len(texts), EMBED_BATCH):
        engine.embed(texts[start:start + EMBED_BATCH])
    seconds = time.perf_counter() - started
    engine.close()
    return len(texts) / seconds


# -- 2. query latency ---------------------------------------------------------------------


def fill(db: Path, source_db: Path, scale: int, model: str) -> str:
    """`scale` chunks in one collection: the real ones of (1), repeated with
    words of their own and vectors moved by noise."""
    import sqlite3

    with sqlite3.connect(source_db) as c:
        real = c.execute(
            "SELECT ch.heading, ch.text, ch.tokens, v.vector FROM chunks ch JOIN chunk_vectors v"
            " ON v.chunk_id = ch.id ORDER BY ch.id").fetchall()
    store = HistoryStore(db)
    store.wait_open()
    rng = np.random.default_rng(scale)
    words = random.Random(scale)

    def job(c: sqlite3.Connection) -> str:  # one transaction, as every store job
        index_db.create_tables(c)
        c.execute("INSERT INTO collections(id, name, created_at) VALUES ('bench', 'bench', 0)")
        per_file = 50
        for first in range(0, scale, per_file):
            file_id = c.execute(
                "INSERT INTO documents(collection_id, path, size, mtime, sha256, kind, "
                "indexed_at) VALUES ('bench', ?, 0, 0, '', 'text', 0)",
                (f"/bench/file{first // per_file}.txt",)).lastrowid
            rows, vectors = [], []
            for n in range(first, min(scale, first + per_file)):
                heading, text, tokens, blob = real[n % len(real)]
                tag = " ".join(f"w{words.randrange(10**6)}" for _ in range(3))
                rows.append((file_id, n, heading, f"{text}\n{tag}", None, 1, 2, tokens))
                vector = np.frombuffer(blob, dtype=np.float32) + rng.normal(
                    0, 0.02, size=len(blob) // 4).astype(np.float32)
                vectors.append(to_blob(vector))
            c.executemany(
                "INSERT INTO chunks(document_id, ordinal, heading, text, page, line_start, "
                "line_end, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            ids = [r[0] for r in c.execute(
                "SELECT id FROM chunks WHERE document_id = ? ORDER BY id", (file_id,))]
            c.executemany("INSERT INTO chunk_vectors VALUES (?, ?, ?)",
                          [(i, model, v) for i, v in zip(ids, vectors, strict=True)])
        return "bench"

    collection = store.run(job).result(3600)
    store.close()
    return collection


def query_latency(embedder: Path, source_db: Path, tmp: Path) -> dict:
    questions = [q.text for q in load_eval()[1]]
    engine = EngineEmbedder(embedder, n_threads=0)
    embed_ms = []
    vectors = {}
    for question in questions * ROUNDS:
        started = time.perf_counter()
        vectors[question] = engine.embed([question])[0]
        embed_ms.append((time.perf_counter() - started) * 1000)
    report: dict = {"question_embedding_ms": {"p50": pct(embed_ms, 50), "p95": pct(embed_ms, 95)}}
    for scale in SCALES:
        db = tmp / f"scale{scale}.sqlite3"
        collection = fill(db, source_db, scale, engine.model_id() or "")
        store = HistoryStore(db)
        store.wait_open()
        library = DocumentLibrary(store.run, engine)
        library.retrieve(questions[0], [collection], query_vector=vectors[questions[0]])  # load
        times = []
        for question in questions * ROUNDS:
            started = time.perf_counter()
            found = library.retrieve(question, [collection], query_vector=vectors[question])
            times.append((time.perf_counter() - started) * 1000)
            assert len(found) == 5
        store.close()
        report[str(scale)] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95),
                              "queries": len(times)}
        print(f"  {scale:>7} chunks: p50 {pct(times, 50):6.2f} ms  p95 {pct(times, 95):6.2f} ms"
              f"  ({len(times)} queries)")
    engine.close()
    return report


# -- 3. recall ------------------------------------------------------------------------------


def recall(embedder: Path, tmp: Path) -> dict:
    engine = EngineEmbedder(embedder, n_threads=0)
    store, library = open_library(tmp / "recall.sqlite3", engine)
    collection = library.create_collection(
        "eval", [str(manuals(tmp / "eval"))]).result(30)
    wait_idle(library)
    kept = set(list(load_eval()[0])[:MANUALS])
    questions = [q for q in load_eval()[1] if q.file in kept]
    report = {}
    for split in ("eval", "dev"):
        chosen = [q for q in questions if q.split == split]
        report[split] = {mode: recall_at(library, collection, chosen, mode)
                         for mode in ("vector", "keyword", "fused")}
        report[split]["questions"] = len(chosen)
    library.shutdown()
    store.close()
    engine.close()
    return report


# -- 4. the GUI while indexing ------------------------------------------------------------------


def gui_phase(chat: Path, embedder: Path, tmp: Path, index_folder: Path | None) -> dict:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from zeta_desktop.ui.app import compose_window

    app = QApplication.instance() or QApplication([])
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    app_config = config(chat, embedder)
    window = compose_window(LoadedConfig(app_config, run_dir / "config.toml", []), app_config,
                            LlamaEngine.load, history_path=run_dir / "history.sqlite3")
    window.resize(1400, 900)
    window.show()
    window.start_models()
    while not window.api.wait_loaded(0.01):
        app.processEvents()
    run_event_loop(SETTLE_S)
    library = window.api.documents
    assert library is not None
    before = library.indexed_chunks
    if index_folder is not None:
        library.create_collection("bench", [str(index_folder)])

    def keep_streaming() -> None:
        worker = window.api.session.worker("coder")
        if worker.queue_depth == 0 and worker.in_flight == 0:
            window.chat.input.setPlainText("Write a long story about a lighthouse keeper.")
            window.chat.send_button.click()

    feeder = QTimer()
    feeder.setInterval(200)
    feeder.timeout.connect(keep_streaming)
    feeder.start()
    probe = Probe()
    probe.start()
    tokens_before = window.api.session.telemetry.snapshot().models["coder"].completed
    run_event_loop(PHASE_S)
    probe.stop()
    feeder.stop()
    indexed = library.indexed_chunks - before
    idle = library.is_idle()
    answers = window.api.session.telemetry.snapshot().models["coder"].completed - tokens_before
    window.api.stop()
    window.close()
    app.processEvents()
    return {"stalls": list(probe.stalls_ms), "indexed": indexed, "answers": answers,
            "finished_indexing": idle}


def main() -> int:
    global RUNS, SCALES, ROUNDS, PHASE_S, STDLIB_FILES, SETTLE_S, GUI_ORDER, QUICK, MANUALS
    QUICK = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    if QUICK:
        RUNS = int(os.environ.get("DOCS_BENCH_RUNS", "1"))
        PHASE_S = float(os.environ.get("DOCS_BENCH_PHASE_S", "0.5"))
        SCALES, ROUNDS, STDLIB_FILES, SETTLE_S = (250, 500, 1_000), 1, 0, 0.25
        GUI_ORDER, MANUALS = ("indexing", "baseline"), 5
    chat = demo_model()
    embedder = find_demo_embedder()
    if embedder is None:
        print("the demo embedder is not installed: run `make test` once", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="zeta-docs-bench-"))
    report: dict = {"quick": QUICK, "runs": RUNS}
    print(f"1. indexing {STDLIB_FILES} stdlib modules (4-20 kB) + {manual_count()} manuals, "
          f"{RUNS} runs "
          "(fresh database each)")
    folder = corpus(tmp / "corpus", STDLIB_FILES)
    rates, ratios = [], []
    db = tmp / "index0.sqlite3"
    for run in range(RUNS):
        db = tmp / f"index{run}.sqlite3"
        chunks, seconds = index_once(chat, embedder, folder, db)
        raw = raw_embedding_rate(embedder, db)
        rates.append(chunks / seconds)
        ratios.append(chunks / seconds / raw)
        print(f"  run {run + 1}: {chunks} chunks in {seconds:.1f} s = {chunks / seconds:.0f} "
              f"chunks/s; the model alone {raw:.0f} chunks/s; ratio {ratios[-1]:.2f}")
    report["indexing"] = {"chunks": chunks, "chunks_per_s": rates, "ratio_to_raw": ratios}
    print(f"  median {statistics.median(rates):.0f} chunks/s (range {min(rates):.0f}-"
          f"{max(rates):.0f}); pipeline/raw median {statistics.median(ratios):.2f}")

    print(f"2. query latency, retrieval alone, {ROUNDS} rounds of 40 questions per size")
    latency = query_latency(embedder, db, tmp)
    report["query"] = latency
    base = latency[str(SCALES[0])]["p50_ms"]
    embed_p50 = latency["question_embedding_ms"]["p50"]
    for scale in SCALES[1:]:
        print(f"  growth {scale} / {SCALES[0]}: p50 x{latency[str(scale)]['p50_ms'] / base:.1f}")
    largest = latency[str(SCALES[-1])]
    print(f"  embedding the question: p50 {embed_p50:.2f} ms; search at "
          f"{SCALES[-1] // 1000}k / embedding: x{largest['p50_ms'] / embed_p50:.1f}")

    print("3. recall@5 (eval: held out; dev: what the tests and fusion weight used)")
    recalls = recall(embedder, tmp)
    report["recall"] = recalls
    for split, values in recalls.items():
        print(f"  {split} ({values['questions']} questions): vector {values['vector']:.2f}  "
              f"keyword {values['keyword']:.2f}  fused {values['fused']:.2f}")

    need = statistics.median(rates) * PHASE_S * 2  # chunks to keep indexing all phase
    per_file = max(1.0, chunks / (STDLIB_FILES + manual_count()))
    files = min(400, int(need / per_file) + 1)
    print(f"4. GUI stall, {PHASE_S:g} s phases in {'AB' if QUICK else 'ABBA'} order, "
          f"the demo model streaming; indexing {files} more stdlib modules "
          f"(~{need:.0f} chunks, from 1.'s rate)")
    big = corpus(tmp / "big", files, skip=STDLIB_FILES)
    phases: dict[str, list[dict]] = {"indexing": [], "baseline": []}
    for name in GUI_ORDER:
        result = gui_phase(chat, embedder, tmp, big if name == "indexing" else None)
        phases[name].append(result)
        p99 = time_pct(result["stalls"], 99)
        print(f"  {name:9}: p99 stall {p99:5.2f} ms, max {max(result['stalls']):6.1f} ms, "
              f"{result['answers']} answers, {result['indexed']} chunks indexed"
              + ("" if name == "baseline" or not result["finished_indexing"]
                 else " (indexing finished early)"))
    stall = {name: time_pct([s for r in runs for s in r["stalls"]], 99)
             for name, runs in phases.items()}
    ratio = stall["indexing"] / stall["baseline"] if stall["baseline"] else float("inf")
    report["gui"] = {"p99_ms": stall, "phase_s": PHASE_S,
                     "indexed": [r["indexed"] for r in phases["indexing"]],
                     "p99_ratio": ratio if stall["baseline"] else None}
    print(f"  pooled p99: indexing {stall['indexing']:.2f} ms, baseline "
          f"{stall['baseline']:.2f} ms, ratio {ratio:.2f}")
    eval_recall = recalls["eval"]
    checks = {
        "fused recall@5 above keywords (eval)": eval_recall["fused"] > eval_recall["keyword"],
        f"query p95 at {SCALES[-1]:,} chunks under 100 ms": largest["p95_ms"] < 100,
        "GUI p99 stall while indexing <= 8 ms": stall["indexing"] <= 8.0,
    }
    print_checks(checks)
    report["checks"] = checks
    print(f"wrote {write_results('docs', report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
