"""Learned binary codes against IVF-PQ at the same bytes, on real frame vectors.

    python benchmarks/binary_codes.py --views 50000 --json benchmarks/results/binary-codes.json

Vectors are `vq-embed`'s, of edited views (`vq.train.embed.input_pipeline.make_view`: 1-3
copy-disguise edits, some colour grades) of every source in `../shared/data` (images,
photos, video frames), grouped by source into "videos" of a library. Queries are
other edited views of the held-out sources (the 20 % hash split that neither `vq-embed`
nor `vq-hash` trained on), whose plain originals are in the library too. Exact float
search is the baseline, in the same run. Three libraries, built by the library code
itself (`vq.index.library`, the same re-ranking of a shortlist with the stored
float16 vectors), with an IVF coarse quantizer of the same list count:

* `IVF-PQ32`: 32-byte product-quantisation codes (the library's default past 200K);
* `binary, vq-hash`: the learned 256-bit codes (32 bytes), `IndexBinaryIVF`;
* `binary, SimHash`: the same head untrained (random orthogonal hyperplanes).

Reported: recall@10 against exact search, a vector of the query's source (its original
or another edited copy: the copy is found) in the top 10, queries
per second at batches of 64 query frames, and bytes per vector (index file / vectors:
codes + ids + lists; the float16 store for re-ranking, 512 bytes, is the same for all).
Real vectors stop at what this machine can embed (about 100 views a second), so this
compares the codes at 10^4-10^5, not at 10M; `benchmarks/index.py` scales IVF-PQ.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SOURCES = [DATA / "images" / d for d in ("bsd100", "set14", "set5", "photos")] + [DATA / "videos"]

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index import recall_at  # noqa: E402  (the recall of benchmarks/index.py)

from vq.bench import machine_info  # noqa: E402
from vq.cli.output import print_table  # noqa: E402
from vq.fsutil import atomic_write_text  # noqa: E402


def embed_views(views: int, seed: int, cache: Path) -> dict[str, np.ndarray]:
    """Library views and held-out queries as vq-embed vectors (cached)."""
    path = cache / f"views-{views}-{seed}.npz"
    if path.is_file():
        with np.load(path) as f:
            return dict(f)
    from PIL import Image

    from vq.media.sources import load_sources
    from vq.stages.embed import Embedder
    from vq.train.embed.input_pipeline import make_view

    stage = Embedder("vq-embed", backend="ort-cpu")
    size = stage.size[0]
    train = load_sources([str(s) for s in SOURCES], 0.2, "train")
    held = load_sources([str(s) for s in SOURCES], 0.2, "holdout")
    sources = train + held
    backgrounds = [s.image for s in sources[:64]]
    owner = np.random.default_rng(seed).integers(len(sources), size=views)
    vectors = []
    t0 = time.perf_counter()
    for start in range(0, views, 256):
        batch = [
            make_view(
                sources[i].image, np.random.default_rng((seed, start + k)), size, backgrounds, grade_share=0.3
            )
            for k, i in enumerate(owner[start : start + 256])
        ]
        vectors.append(stage.embed_frames(np.stack(batch)))
        print(f"  embedded {start + len(batch):,} views in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    plain = [np.asarray(Image.fromarray(s.image).resize((size, size), Image.BILINEAR)) for s in held]
    queries = [
        make_view(s.image, np.random.default_rng((seed + 1, i, v)), size, backgrounds)
        for i, s in enumerate(held)
        for v in range(8)
    ]
    out = {
        "views": np.concatenate(vectors),
        "owner": owner,
        "originals": stage.embed_frames(np.stack(plain)),
        "original_owner": np.arange(len(train), len(sources)),
        "queries": stage.embed_frames(np.stack(queries)),
        "query_owner": np.repeat(np.arange(len(train), len(sources)), 8),
    }
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def build(root: Path, data: dict[str, np.ndarray], codes: str, hash_model: str | None, factory: str):
    """A library whose videos are the sources (their views, then their original)."""
    from vq.index.library import Library, LibraryConfig

    config = LibraryConfig(
        model="vq-embed", model_sha256="-", dim=256, factory=factory, codes=codes, hash_model=hash_model
    )
    vectors = np.concatenate([data["views"], data["originals"]])
    owners = np.concatenate([data["owner"], data["original_owner"]])
    order = np.argsort(owners, kind="stable")
    vectors, owners = vectors[order], owners[order]
    bounds = np.flatnonzero(np.diff(owners)) + 1
    t0 = time.perf_counter()
    with Library.create(root, config) as lib:
        # One ingest for all but the last source, so the index trains once on all of them.
        lib.add_video("bulk", vectors[: bounds[-1]], np.arange(bounds[-1], dtype=float))
        lib.add_video("last", vectors[bounds[-1] :], np.arange(len(vectors) - bounds[-1], dtype=float))
    return time.perf_counter() - t0, vectors, owners


def measure(
    root: Path, queries: np.ndarray, truth: np.ndarray, owners: np.ndarray, query_owner: np.ndarray
) -> dict:
    from vq.index.library import Library

    with Library.open(root) as lib:
        _, found = lib.search(queries, 10)
        qps = best_qps(lambda q: lib.search(q, 10), queries)
        index_bytes = (root / "index.faiss").stat().st_size
        return {
            "recall@10": recall_at(found, truth),
            "source@10": source_found(found, owners, query_owner),
            "qps_b64": qps,
            "index_bytes_per_vector": index_bytes / lib.total,
            "index": lib.factory_for(lib.total),
        }


def best_qps(search, queries: np.ndarray, batch: int = 64, passes: int = 5) -> float:
    """Queries per second at `batch`, the best of `passes` passes (short runs are noisy)."""
    best = 0.0
    for _ in range(passes):
        t0 = time.perf_counter()
        for start in range(0, len(queries), batch):
            search(queries[start : start + batch])
        best = max(best, len(queries) / (time.perf_counter() - t0))
    return best


def source_found(found: np.ndarray, owners: np.ndarray, query_owner: np.ndarray) -> float:
    """Share of queries with a vector of their own source (its original or another edited
    copy of it: the copy is found) in their top 10."""
    return float(np.mean(np.any(owners[np.maximum(found, 0)] == query_owner[:, None], axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--views", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--hash-model", default="vq-hash")
    parser.add_argument(
        "--simhash", type=Path, help="An untrained hash_head artifact (vq export onnx --arch)."
    )
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from vq.index.library import index_factory_for

    data = embed_views(args.views, args.seed, args.cache)
    total = len(data["views"]) + len(data["originals"])
    nlist = index_factory_for(total, 256, 0).split(",")[0]
    settings = [("IVF-PQ32 (library default)", "pq", None, f"{nlist},PQ32")]
    settings.append(("binary, vq-hash (learned)", "binary", args.hash_model, f"B{nlist}"))
    if args.simhash:
        settings.append(("binary, SimHash (untrained head)", "binary", str(args.simhash), f"B{nlist}"))
    work = Path(tempfile.mkdtemp(prefix="vq-codes-"))
    rows = []
    try:
        for name, codes, model, factory in settings:
            root = work / name.split()[0].strip(",")
            shutil.rmtree(root, ignore_errors=True)
            build_s, vectors, owners = build(root, data, codes, model, factory)
            exact = data["queries"] @ vectors.T
            truth = np.argsort(-exact, axis=1)[:, :10]
            rows.append(
                {
                    "setting": name,
                    "build_s": build_s,
                    **measure(root, data["queries"], truth, owners, data["query_owner"]),
                }
            )
            print(f"  {rows[-1]}", file=sys.stderr)
        exact_qps = best_qps(lambda q: np.argsort(-(q @ vectors.T), axis=1)[:, :10], data["queries"])
        rows.insert(
            0,
            {
                "setting": "exact (numpy, baseline)",
                "recall@10": 1.0,
                "source@10": source_found(truth, owners, data["query_owner"]),
                "qps_b64": exact_qps,
                "index_bytes_per_vector": 1024,
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(
        rows,
        [
            ("setting", "setting"),
            ("index", "index"),
            ("index_bytes_per_vector", "bytes/vector"),
            ("recall@10", "recall@10"),
            ("source@10", "source@10"),
            ("qps_b64", "QPS b=64"),
        ],
        title=f"{total:,} real vq-embed vectors, {len(data['queries'])} held-out queries",
    )
    if args.json:
        report = {"machine": machine_info(), "vectors": total, "queries": len(data["queries"]), "rows": rows}
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
