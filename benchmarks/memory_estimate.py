"""The memory estimate against what a load really takes, per model.

Each model is loaded in a fresh child process: its resident memory (RSS)
after importing llama.cpp is the baseline; after the load and one short
answer (so every weight page and the compute buffers have been touched) is
the total. Printed: estimate, measured, and estimate / measured.

    make bench-memory
    make bench-memory QUICK=1    # no 8192-token context case: a smoke run

Writes benchmarks/results/memory.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_results import quick_parser, write_results

from zeta_desktop.core.models.files import resolve_model
from zeta_desktop.core.models.gguf_info import read_info
from zeta_desktop.core.models.memory import estimate

CHILD = r"""
import json, sys, psutil
from pathlib import Path
from zeta_desktop.core.engines.base import LoadSettings, CancelEvent
from zeta_desktop.core.engines.llama import LlamaEngine
import llama_cpp
proc = psutil.Process()
before = proc.memory_info().rss
path, n_ctx, embedding = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
engine = LlamaEngine.load(path, LoadSettings(n_ctx, 0, 1, embedding))
if embedding:
    engine.embed(["warm the graph"])
else:
    list(engine.stream_chat([{"role": "user", "content": "hi"}], max_tokens=4,
                            temperature=0.0, cancel=CancelEvent()))
print(json.dumps({"before": before, "after": proc.memory_info().rss}))
engine.close()
"""


def measure(path: Path, n_ctx: int, embedding: bool) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(n_ctx),
                          "1" if embedding else "0"], capture_output=True, text=True,
                         check=True, timeout=600)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["after"] - data["before"]


def main() -> int:
    from tiny_gguf import write_tiny_llama

    quick = quick_parser(__doc__.splitlines()[0]).parse_args().quick
    tiny = write_tiny_llama(Path("/tmp/zeta-memory-tiny.gguf"))
    cases = [
        ("tiny (test model)", tiny, 512, False),
        ("SmolLM2-135M demo", resolve_model("").path, 2048, False),
        ("SmolLM2-135M demo", resolve_model("").path, 8192, False),
        ("all-MiniLM-L6-v2 demo embedder", resolve_model("", embedding_role=True).path, 512,
         True),
    ]
    if quick:
        cases = [case for case in cases if case[2] != 8192]
    rows = []
    for name, path, n_ctx, embedding in cases:
        predicted = estimate(read_info(path), n_ctx).total_bytes
        actual = measure(path, n_ctx, embedding)
        rows.append({"model": name, "n_ctx": n_ctx, "estimate": predicted, "measured": actual,
                     "ratio": round(predicted / actual, 3)})
        print(f"  {name:32s} n_ctx {n_ctx:5d}: estimate {predicted / 2**20:7.1f} MiB, "
              f"measured RSS {actual / 2**20:7.1f} MiB, ratio {predicted / actual:.2f}")
    print(f"wrote {write_results('memory', {'quick': quick, 'cases': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
