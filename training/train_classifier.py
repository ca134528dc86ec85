"""Train the task classifier shipped in resources/classifier/ from the corpus.

    python training/train_classifier.py           # writes text-model.npy and .json
    python training/train_classifier.py --check   # rebuilds and compares, byte for byte

Whole sources are held out (HELD_OUT): they are never seen in training and
serve only for the report (`make bench-classify`). The temperature that makes
the probabilities honest is fitted on out-of-fold logits, each fold leaving out
whole training sources too. Deterministic: plain numpy, fixed order, no random
numbers, weights stored as float16.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zeta_desktop.core.routing import learned  # noqa: E402

CORPUS = ROOT / "resources" / "classifier" / "corpus.jsonl"
OUT = ROOT / "resources" / "classifier"
CLASSES = ("simple", "code", "reasoning")
# Whole sources kept for the report only: every kind has some, and the issue's
# failure cases (ordering puzzles, dates, causal questions) are among them.
HELD_OUT = (
    "human-eval",
    "bigbench/auto_debugging",
    "bigbench/cs_algorithms",
    "bigbench/logical_deduction",
    "bigbench/date_understanding",
    "bigbench/causal_judgment",
    "bigbench/elementary_math_qa",
    "bigbench/general_knowledge",
    "bigbench/rephrase",
    "zeta-tests-holdout",
)
FOLDS = 4
EPOCHS = 120
L2 = 1e-5
LEARNING_RATE = 0.05


def source_group(source: str) -> str:
    """A source without its subtask: bigbench/logical_deduction/three_objects ->
    bigbench/logical_deduction, so subtasks of one task never straddle the split."""
    parts = source.split("/")
    return "/".join(parts[:2])


def load_corpus(path: Path = CORPUS) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def split(rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    chat = [r for r in rows if r["kind"] in CLASSES]
    train = [r for r in chat if source_group(r["source"]) not in HELD_OUT]
    held = [r for r in chat if source_group(r["source"]) in HELD_OUT]
    return train, held


@dataclass
class Sparse:
    indices: np.ndarray
    values: np.ndarray
    starts: np.ndarray
    row_of: np.ndarray

    @classmethod
    def build(cls, prompts: list[str]) -> Sparse:
        parts = [learned.features(p) for p in prompts]
        lengths = np.array([len(i) for i, _ in parts])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return cls(
            np.concatenate([i for i, _ in parts]),
            np.concatenate([v for _, v in parts]),
            starts,
            np.repeat(np.arange(len(parts)), lengths),
        )

    def subset(self, rows: np.ndarray) -> Sparse:
        return Sparse.build_from(self, rows)

    @staticmethod
    def build_from(matrix: Sparse, rows: np.ndarray) -> Sparse:
        ends = np.append(matrix.starts[1:], len(matrix.indices))
        pieces = [np.arange(matrix.starts[r], ends[r]) for r in rows]
        take = np.concatenate(pieces)
        lengths = np.array([len(p) for p in pieces])
        return Sparse(
            matrix.indices[take], matrix.values[take],
            np.concatenate([[0], np.cumsum(lengths)[:-1]]),
            np.repeat(np.arange(len(rows)), lengths),
        )

    def times(self, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
        columns = [np.add.reduceat(self.values * weights[self.indices, c], self.starts)
                   for c in range(weights.shape[1])]
        return np.stack(columns, axis=1) + bias

    def transpose_times(self, gradient: np.ndarray, dimensions: int) -> np.ndarray:
        columns = [np.bincount(self.indices, weights=self.values * gradient[self.row_of, c],
                               minlength=dimensions) for c in range(gradient.shape[1])]
        return np.stack(columns, axis=1)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sample_weights(rows: list[dict[str, str]]) -> np.ndarray:
    """Each kind weighs the same, and within a kind each source group the same,
    so 250 ordering puzzles do not outvote 24 hand-written prompts."""
    groups: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["kind"], source_group(r["source"]))
        groups[key] = groups.get(key, 0) + 1
    groups_per_kind: dict[str, int] = {}
    for kind, _ in groups:
        groups_per_kind[kind] = groups_per_kind.get(kind, 0) + 1
    w = np.array([
        1.0 / (groups[(r["kind"], source_group(r["source"]))] * groups_per_kind[r["kind"]])
        for r in rows
    ])
    return w * len(rows) / w.sum()


def fit(matrix: Sparse, labels: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch Adam on the weighted cross-entropy with a small L2 penalty."""
    dims, k = learned.DIMENSIONS, len(CLASSES)
    w, b = np.zeros((dims, k)), np.zeros(k)
    mw, vw, mb, vb = np.zeros_like(w), np.zeros_like(w), np.zeros(k), np.zeros(k)
    onehot = np.eye(k)[labels]
    scale = weights[:, None] / weights.sum()
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, EPOCHS + 1):
        g = (softmax(matrix.times(w, b)) - onehot) * scale
        gw = matrix.transpose_times(g, dims) + L2 * w
        gb = g.sum(axis=0)
        for param, grad, m, v in ((w, gw, mw, vw), (b, gb, mb, vb)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            step_size = LEARNING_RATE * (m / (1 - beta1**step))
            param -= step_size / (np.sqrt(v / (1 - beta2**step)) + eps)
    return w, b


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (on a fixed grid) with the lowest held-out log loss."""
    best, best_loss = 1.0, float("inf")
    for t in np.round(np.arange(0.25, 5.0001, 0.05), 2):
        p = softmax(logits / t)[np.arange(len(labels)), labels]
        loss = float(-np.log(np.clip(p, 1e-12, None)).mean())
        if loss < best_loss:
            best, best_loss = float(t), loss
    return best


def train(rows: list[dict[str, str]]) -> tuple[np.ndarray, dict[str, object]]:
    train_rows, held = split(rows)
    matrix = Sparse.build([r["prompt"] for r in train_rows])
    labels = np.array([CLASSES.index(r["kind"]) for r in train_rows])
    weights = sample_weights(train_rows)
    # Folds per kind: each fold leaves out about a quarter of every kind's
    # sources, as the held-out split does, and never all of one kind's.
    keys = sorted({(r["kind"], source_group(r["source"])) for r in train_rows})
    fold_of: dict[tuple[str, str], int] = {}
    for kind in CLASSES:
        for i, key in enumerate(k for k in keys if k[0] == kind):
            fold_of[key] = i % FOLDS
    row_fold = np.array([fold_of[(r["kind"], source_group(r["source"]))] for r in train_rows])
    out_of_fold = np.zeros((len(train_rows), len(CLASSES)))
    for fold in range(FOLDS):
        inside, outside = np.flatnonzero(row_fold != fold), np.flatnonzero(row_fold == fold)
        w, b = fit(matrix.subset(inside), labels[inside], weights[inside])
        out_of_fold[outside] = matrix.subset(outside).times(w, b)
    temperature = fit_temperature(out_of_fold, labels)
    w, b = fit(matrix, labels, weights)
    stored = np.vstack([w, b[None, :]]).astype(np.float16)
    meta = {
        "classes": list(CLASSES),
        "temperature": temperature,
        "feature_version": learned.FEATURE_VERSION,
        "hash_bits": learned.HASH_BITS,
        "trained_on": len(train_rows),
        "held_out_sources": list(HELD_OUT),
        "held_out_prompts": len(held),
        "out_of_fold_accuracy": round(float((out_of_fold.argmax(1) == labels).mean()), 4),
        "corpus_sha256": hashlib.sha256(CORPUS.read_bytes()).hexdigest(),
    }
    return stored, meta


def serialise(stored: np.ndarray, meta: dict[str, object]) -> tuple[bytes, bytes]:
    import io

    buffer = io.BytesIO()
    np.save(buffer, stored, allow_pickle=False)
    return buffer.getvalue(), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="rebuild and compare with resources/")
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write to")
    args = parser.parse_args()
    stored, info = train(load_corpus())
    weights, meta = serialise(stored, info)
    paths = (args.out / learned.WEIGHTS_FILE, args.out / learned.META_FILE)
    if args.check:
        same = all(p.read_bytes() == data for p, data in zip(paths, (weights, meta), strict=True))
        print("classifier: identical" if same else "classifier: DIFFERS from resources/")
        return 0 if same else 1
    args.out.mkdir(parents=True, exist_ok=True)
    for path, data in zip(paths, (weights, meta), strict=True):
        path.write_bytes(data)
    print(f"classifier: {info['trained_on']} prompts, temperature {info['temperature']}, "
          f"out-of-fold accuracy {info['out_of_fold_accuracy']:.1%} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
