"""Training the library's IVF-PQ index: faiss's factory default (polysemous training on)
against the library's own (`vq.index.store.float_index`: off), in one process.

Polysemous training relabels each sub-quantizer's 256 centroids so that the Hamming
distance between codes follows the true distance, which only a polysemous (Hamming
pre-filtered) search uses. The library searches by asymmetric distances and re-ranks
with the stored vectors, so it gains nothing from it; this measures what it costs, and
checks that the two indexes return the same neighbours.

    python benchmarks/pq_training.py --json benchmarks/results/pq-training.json

Synthetic frame-like vectors (videos of 300 frames around a centre, as
`benchmarks/index.py`); for each size, the library's factory at that size, trained on
the library's training size, both ways, then 512 queries' top 10 compared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index import DIM, chunk_vectors

from vq.bench import machine_info
from vq.cli.output import print_table
from vq.fsutil import atomic_write_text
from vq.index.library import index_factory_for, training_size
from vq.index.store import float_index, load_faiss


def train_both(total: int, queries: int = 512) -> dict:
    """Seconds to train the library's index at `total` vectors with and without polysemous
    training, and how many of the top 10 the two indexes share."""
    faiss = load_faiss()
    factory = index_factory_for(total, DIM, flat_limit=0)
    vectors = chunk_vectors(0, total)
    train = vectors[: training_size(factory, total)]
    found, seconds = {}, {}
    for name in ("faiss default", "library"):
        index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
        if name == "library":
            index = float_index(DIM, factory)
        t0 = time.perf_counter()
        index.train(train)
        seconds[name] = time.perf_counter() - t0
        index.add(vectors)
        index.nprobe = 16
        _, found[name] = index.search(vectors[:: max(1, total // queries)][:queries], 10)
    a, b = found["faiss default"], found["library"]
    shared = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b, strict=True)])
    return {
        "vectors": total,
        "factory": factory,
        "training_vectors": len(train),
        "default_s": round(seconds["faiss default"], 2),
        "library_s": round(seconds["library"], 2),
        "speedup": round(seconds["faiss default"] / seconds["library"], 1),
        "top10_shared": round(float(shared), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 20_000, 200_000])
    parser.add_argument("--json", type=Path, help="Write the rows and the machine here.")
    args = parser.parse_args()
    rows = [train_both(n) for n in args.sizes]
    print_table(rows, [(key, key) for key in rows[0]], title="IVF-PQ training, polysemous on / off")
    if args.json:
        atomic_write_text(args.json, json.dumps({"machine": machine_info(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
