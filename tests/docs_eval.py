"""The labelled retrieval set (tests/data/docs_eval.toml) and a document
library over a real history file and a real embedding model, without the
chat models: what the document tests and `make bench-docs` share."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zeta_desktop.core.documents.library import DocumentLibrary
from zeta_desktop.core.engines.base import LoadSettings
from zeta_desktop.core.engines.llama import LlamaEngine
from zeta_desktop.core.store.history import HistoryStore

EVAL_FILE = Path(__file__).parent / "data" / "docs_eval.toml"


@dataclass(frozen=True)
class Question:
    text: str
    file: str
    contains: str
    split: str


def load_eval() -> tuple[dict[str, str], list[Question]]:
    data = tomllib.loads(EVAL_FILE.read_text(encoding="utf-8"))
    questions = [Question(q["q"], q["file"], q["contains"], q["split"])
                 for q in data["questions"]]
    return dict(data["documents"]), questions


def write_eval_documents(folder: Path) -> Path:
    documents, _questions = load_eval()
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (folder / name).write_text(text.strip() + "\n", encoding="utf-8")
    return folder


class EngineEmbedder:
    """One embedding model on its own thread, as the embedding role's worker
    owns it, for a library without a chat session."""

    def __init__(self, model: Path, n_ctx: int = 512, n_threads: int = 2) -> None:
        self.model = model
        self._lock = threading.Lock()  # the engine is not thread-safe
        self._engine = LlamaEngine.load(model, LoadSettings(n_ctx, 0, n_threads, True))
        self.embedded = 0

    def model_id(self) -> str | None:
        return f"file:{self.model}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            self.embedded += len(texts)
            return self._engine.embed(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        with self._lock:
            return [self._engine.count_tokens(t) for t in texts]

    def close(self) -> None:
        self._engine.close()


def open_library(db: Path, embedder: EngineEmbedder) -> tuple[HistoryStore, DocumentLibrary]:
    store = HistoryStore(db)
    store.wait_open()
    library = DocumentLibrary(store.run, embedder)
    library.start()
    return store, library


def wait_idle(library: DocumentLibrary, timeout: float = 120.0) -> None:
    # The library says when it is idle; this polls that (no event to wait on
    # outside Qt) and fails loudly past the timeout.
    deadline = time.monotonic() + timeout
    while not library.is_idle():
        assert time.monotonic() < deadline, f"indexing did not finish: {library.progress()}"
        time.sleep(0.02)


def recall_at(library: DocumentLibrary, collection: str, questions: Sequence[Question],
              mode: str, k: int = 5) -> float:
    """Share of questions with their labelled passage among the top `k`."""
    hits = 0
    for question in questions:
        found = library.retrieve(question.text, [collection], k=k, mode=mode)
        hits += any(Path(c.path).name == question.file and question.contains in c.text
                    for c in found)
    return hits / len(questions)
