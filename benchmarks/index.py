"""Library scale benchmark: faiss index settings on clustered vectors, and `vq run` end to end.

    python benchmarks/index.py --sizes 1000000 --json benchmarks/results/index.json
    python benchmarks/index.py --sizes 1000000,10000000 --e2e --json benchmarks/results/index.json

1. **Index settings** at each size N: synthetic frame vectors shaped like a copy library
   (256-d, unit norm, grouped in "videos" of 300 frames whose frames resemble each other,
   cosine ~0.6), queried with near-duplicates of stored frames (cosine ~0.9 to their
   source). Exact search is the baseline; for Flat and IVF-PQ (the library's own policy:
   IVF{4·sqrt(N)},PQ32) at several nprobe, with and without exact re-ranking of the top
   100 from the library's float16 vector store: build seconds, bytes per vector, recall@10
   against exact search, queries/s at batch 1 and 256.
2. **End to end** (`--e2e`): a library of >= 1M vectors (Big Buck Bunny's 30 s, ingested by
   the real pipeline, plus synthetic videos), then a 60 s 720p clip (that footage forward
   and backward) through the same `Dedup.process` that `vq run` calls, repeated: p50/p99
   seconds per stage; and one `vq run --no-ingest` subprocess timed from the shell.

Vectors are regenerated from seeds chunk by chunk, so exact search over 10M needs no
10M x 256 float32 copy in memory.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache"
DIM = 256
FRAMES_PER_VIDEO = 300
CHUNK = 500_000
sys.path.insert(0, str(Path(__file__).resolve().parent))

from vq.bench import machine_info  # noqa: E402
from vq.cli.output import print_table  # noqa: E402
from vq.fsutil import atomic_write_text  # noqa: E402
from vq.index.library import index_factory_for, rerank_depth, training_size  # noqa: E402
from vq.index.store import float_index  # noqa: E402


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def chunk_vectors(start: int, n: int, seed: int = 0) -> np.ndarray:
    """Vectors [start, start + n) of the synthetic library (deterministic per video)."""
    first_video, last_video = start // FRAMES_PER_VIDEO, (start + n - 1) // FRAMES_PER_VIDEO
    out = []
    for v in range(first_video, last_video + 1):
        rng = np.random.default_rng((seed, v))
        centre = rng.standard_normal(DIM)
        centre /= np.linalg.norm(centre)
        noise = rng.standard_normal((FRAMES_PER_VIDEO, DIM)) * (0.8 / math.sqrt(DIM))
        out.append(_unit(centre + noise))
    block = np.concatenate(out)
    offset = start - first_video * FRAMES_PER_VIDEO
    return block[offset : offset + n]


def make_queries(total: int, count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sources = np.sort(rng.choice(total, count, replace=False))
    base = np.stack([chunk_vectors(int(s), 1)[0] for s in sources])
    noise = rng.standard_normal(base.shape) * (0.5 / math.sqrt(DIM))
    return _unit(base + noise), sources


def exact_topk(queries: np.ndarray, total: int, k: int = 10) -> tuple[np.ndarray, float]:
    """Brute-force inner-product top-k over the regenerated library (the recall baseline)."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    seconds = 0.0
    for start in range(0, total, CHUNK):
        block = chunk_vectors(start, min(CHUNK, total - start))
        t0 = time.perf_counter()
        s = queries @ block.T
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + start], 1)
        order = np.argsort(-cand_s, 1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
        seconds += time.perf_counter() - t0
    return best_i, seconds


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def source_found(found: np.ndarray, sources: np.ndarray) -> float:
    """Share of queries whose source frame (the one they are a copy of) is in the top 10."""
    return float(np.mean(np.any(found == sources[:, None], axis=1)))


def qps(search, queries: np.ndarray, batch: int, budget: int) -> float:
    n = min(len(queries), budget)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        search(queries[start : start + batch])
    return n / (time.perf_counter() - t0)


def bench_size(
    total: int,
    n_queries: int,
    flat: bool,
    nprobes: tuple[int, ...] = (16, 64, 256),
    depths: tuple[int, ...] = (100,),
    pq: bool = True,
    hash_models: tuple[str, ...] = (),
) -> list[dict]:
    import faiss

    queries, sources = make_queries(total, n_queries)
    truth, exact_seconds = exact_topk(queries, total)
    rows = [
        {
            "n": total,
            "setting": "exact (numpy, baseline)",
            "bytes_per_vector": 4 * DIM,
            "recall@10": 1.0,
            "source@10": source_found(truth, sources),
            "qps_b256": round(len(queries) / exact_seconds, 1),
        }
    ]
    store = np.zeros((total, DIM), np.float16)  # the library's re-ranking store
    t0 = time.perf_counter()
    for start in range(0, total, CHUNK):
        store[start : start + CHUNK] = chunk_vectors(start, min(CHUNK, total - start))
    print(f"  generated {total:,} vectors in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    if flat:
        index = faiss.IndexFlatIP(DIM)
        t0 = time.perf_counter()
        for start in range(0, total, CHUNK):
            index.add(store[start : start + CHUNK].astype(np.float32))
        build = time.perf_counter() - t0
        _, found = index.search(queries, 10)
        rows.append(
            {
                "n": total,
                "setting": "Flat",
                "build_s": round(build, 1),
                "bytes_per_vector": 4 * DIM,
                "recall@10": recall_at(found, truth),
                "source@10": source_found(found, sources),
                "qps_b1": round(qps(lambda q: index.search(q, 10), queries, 1, 50), 1),
                "qps_b256": round(qps(lambda q: index.search(q, 10), queries, 256, 512), 1),
            }
        )
        del index

    if pq:
        rows.extend(bench_ivf_pq(total, store, queries, truth, sources, nprobes, depths))
    for model in hash_models:
        rows.extend(bench_binary(total, store, queries, truth, sources, model, depths))
    return rows


def bench_ivf_pq(total, store, queries, truth, sources, nprobes, depths) -> list[dict]:
    """The library's IVF-PQ policy at this size, at each nprobe and re-ranking depth."""
    import faiss

    rows: list[dict] = []
    factory = index_factory_for(total, DIM, flat_limit=0)  # the library's policy
    index = float_index(DIM, factory)  # as the library builds it
    t0 = time.perf_counter()
    sample = np.random.default_rng(0).choice(total, training_size(factory, total), replace=False)
    index.train(store[np.sort(sample)].astype(np.float32))
    for start in range(0, total, CHUNK):
        index.add(store[start : start + CHUNK].astype(np.float32))
    build = time.perf_counter() - t0
    code_bytes = faiss.extract_index_ivf(index).code_size + 8  # PQ code + stored id
    print(f"  {factory}: built in {build:.0f} s", file=sys.stderr)

    def reranked(q: np.ndarray, shortlist: int = 100) -> np.ndarray:
        _, cand = index.search(q, shortlist)
        exact = store[np.maximum(cand, 0)].astype(np.float32)
        scores = np.einsum("nd,ncd->nc", q, exact)
        scores[cand < 0] = -np.inf
        return np.take_along_axis(cand, np.argsort(-scores, 1)[:, :10], 1)

    for nprobe in nprobes:
        faiss.extract_index_ivf(index).nprobe = nprobe
        _, found = index.search(queries, 10)
        rows.append(
            {
                "n": total,
                "setting": f"{factory} nprobe={nprobe}",
                "build_s": round(build, 1),
                "bytes_per_vector": code_bytes,
                "recall@10": recall_at(found, truth),
                "source@10": source_found(found, sources),
                "qps_b1": round(qps(lambda q: index.search(q, 10), queries, 1, 200), 1),
                "qps_b256": round(qps(lambda q: index.search(q, 10), queries, 256, 1024), 1),
            }
        )
        for depth in depths:
            found = reranked(queries, depth)
            rows.append(
                {
                    "n": total,
                    "setting": f"{factory} nprobe={nprobe} + re-rank {depth} (float16)"
                    + (" (library default)" if (nprobe, depth) == (64, rerank_depth(total)) else ""),
                    "build_s": round(build, 1),
                    "bytes_per_vector": code_bytes + 2 * DIM,
                    "recall@10": recall_at(found, truth),
                    "source@10": source_found(found, sources),
                    "qps_b1": round(qps(lambda q, d=depth: reranked(q, d), queries, 1, 200), 1),
                    "qps_b256": round(qps(lambda q, d=depth: reranked(q, d), queries, 256, 1024), 1),
                }
            )
    return rows


def bench_binary(total, store, queries, truth, sources, model: str, depths) -> list[dict]:
    """Binary codes of `model` (a `vq train hash` artifact) in the library's BIVF index (nprobe
    64), re-ranked with the float16 store at each depth: the `--codes binary` option."""
    import faiss

    from vq.stages.hash import Hasher

    hasher = Hasher(model)
    factory = index_factory_for(total, DIM, flat_limit=0, binary=True)
    t0 = time.perf_counter()
    codes = np.concatenate([hasher.codes(store[s : s + CHUNK]) for s in range(0, total, CHUNK)])
    index = faiss.index_binary_factory(hasher.bits, factory)
    sample = np.random.default_rng(0).choice(total, training_size(factory, total), replace=False)
    index.train(codes[np.sort(sample)])
    index.add(codes)
    index.nprobe = 64
    build = time.perf_counter() - t0
    del codes
    print(f"  {factory} ({hasher.name}): built in {build:.0f} s", file=sys.stderr)

    def reranked(q: np.ndarray, shortlist: int) -> np.ndarray:
        _, cand = index.search(hasher.codes(q), shortlist)
        exact = store[np.maximum(cand, 0)].astype(np.float32)
        scores = np.einsum("nd,ncd->nc", q, exact)
        scores[cand < 0] = -np.inf
        return np.take_along_axis(cand, np.argsort(-scores, 1)[:, :10], 1)

    rows = []
    for depth in depths:
        found = reranked(queries, depth)
        rows.append(
            {
                "n": total,
                "setting": f"{factory} ({hasher.name}) nprobe=64 + re-rank {depth} (float16)",
                "build_s": round(build, 1),
                "bytes_per_vector": hasher.bits // 8 + 8 + 2 * DIM,
                "recall@10": recall_at(found, truth),
                "source@10": source_found(found, sources),
                "qps_b1": round(qps(lambda q, d=depth: reranked(q, d), queries, 1, 200), 1),
                "qps_b256": round(qps(lambda q, d=depth: reranked(q, d), queries, 256, 1024), 1),
            }
        )
    return rows


def end_to_end(min_vectors: int, repeats: int) -> dict:
    from media import make_clips

    from vq.index.library import Library, LibraryConfig, open_library
    from vq.pipelines.dedup import Dedup
    from vq.stages.embed import Embedder

    embedder = Embedder(None, backend="ort")
    root = CACHE / f"library-{min_vectors}"
    source = REPO.parent / "shared" / "data" / "videos" / "big_buck_bunny_0_30.webm"

    def stored() -> int:
        if not (root / "library.toml").exists():
            return 0
        with open_library(root) as lib:
            return lib.total

    if stored() < min_vectors:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        config = LibraryConfig(model=embedder.name, model_sha256=embedder.fingerprint, dim=embedder.dim)
        t0 = time.perf_counter()
        with Library.create(root, config) as lib:
            Dedup(embedder, [lib]).process(source, name="bbb-original", query=False)
            start = 0
            while lib.total < min_vectors:
                vectors = chunk_vectors(start, FRAMES_PER_VIDEO)
                lib.add_video(
                    f"synthetic-{start // FRAMES_PER_VIDEO}", vectors, np.arange(FRAMES_PER_VIDEO) * 2.0
                )
                start += FRAMES_PER_VIDEO
        print(
            f"  built a {min_vectors:,}-vector library in {time.perf_counter() - t0:.0f} s", file=sys.stderr
        )

    clip = make_clips()["default_gop"]
    t0 = time.perf_counter()
    lib = Library.open(root)
    open_seconds = time.perf_counter() - t0
    stats = lib.stats()
    dedup = Dedup(embedder, [lib])
    records = [dedup.process(clip, ingest=False).to_json() for _ in range(repeats)]
    lib.close()
    assert all(r["status"] == "ok" for r in records), records[0]
    stages = {}
    for stage in records[0]["timings"]:
        values = np.array([r["timings"][stage] for r in records])
        stages[stage] = {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99))}
    found = records[0]["matches"][0] if records[0]["matches"] else None

    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vq.cli.app",
            "run",
            str(clip),
            "--library",
            str(root),
            "--no-ingest",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    cli_seconds = time.perf_counter() - t0
    return {
        "library": stats,
        "library_open_s": open_seconds,
        "clip": "60 s 1280x720 H.264 (Big Buck Bunny 0-30 s forward then backward)",
        "repeats": repeats,
        "stages": stages,
        "top_match": {"ref_id": found["ref_id"], "segments": found["segments"]} if found else None,
        "vq_run_subprocess_s": cli_seconds,
        "vq_run_rc": proc.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000", help="Comma list of library sizes.")
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--flat-up-to", type=int, default=2_000_000, help="Skip the Flat index above this.")
    parser.add_argument("--e2e", action="store_true", help="Also run the end-to-end `vq run` measurement.")
    parser.add_argument("--e2e-vectors", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--nprobes", default="16,64,256", help="Comma list of IVF nprobe settings.")
    parser.add_argument("--rerank", default="100", help="Comma list of re-ranking depths.")
    parser.add_argument("--no-pq", action="store_true", help="Skip the IVF-PQ index (e.g. codes only).")
    parser.add_argument(
        "--hash-models", default="", help="Comma list of `vq train hash` models: binary codes (BIVF) too."
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import faiss

    report: dict = {
        "machine": machine_info(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
    }
    rows = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        print(f"size {size:,}", file=sys.stderr)
        nprobes = tuple(int(x) for x in args.nprobes.split(","))
        depths = tuple(int(x) for x in args.rerank.split(","))
        hash_models = tuple(m for m in args.hash_models.split(",") if m)
        rows.extend(
            bench_size(
                size, args.queries, size <= args.flat_up_to, nprobes, depths, not args.no_pq, hash_models
            )
        )
    report["index"] = rows
    print_table(
        rows,
        [
            ("n", "vectors"),
            ("setting", "setting"),
            ("build_s", "build s"),
            ("bytes_per_vector", "bytes/vec"),
            ("recall@10", "recall@10"),
            ("source@10", "source@10"),
            ("qps_b1", "QPS b=1"),
            ("qps_b256", "QPS b=256"),
        ],
        title="faiss settings (exact search is the baseline)",
    )
    if args.e2e:
        e2e = end_to_end(args.e2e_vectors, args.repeats)
        report["end_to_end"] = e2e
        print_table(
            [{"stage": k, **v} for k, v in e2e["stages"].items()],
            [("stage", "stage"), ("p50", "p50 s"), ("p99", "p99 s")],
            title=f"60 s 720p clip vs {e2e['library']['vectors']:,} vectors ({e2e['library']['index']})",
        )
        print(
            f"library open {e2e['library_open_s']:.1f} s; `vq run` subprocess "
            f"{e2e['vq_run_subprocess_s']:.1f} s (rc {e2e['vq_run_rc']}); top match {e2e['top_match']}"
        )
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
