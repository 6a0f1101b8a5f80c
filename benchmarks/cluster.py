"""Sharded search on Ray and batch ingest with Ray Data, on one machine.

    python benchmarks/cluster.py --vectors 300000 --json benchmarks/results/cluster.json

1. **Search**: a library of `--vectors` synthetic frame vectors (`benchmarks/index.py`'s:
   256-d, videos of 300 similar frames; IVF-PQ past 200K, as the library's policy says),
   queried with near-duplicates of stored frames in batches of `--batch` (one video's
   query frames), from `--clients` threads at once. The single-process library is the
   baseline, run in the same process: for 1, 2 and 4 shards x 1 and 2 replicas on a
   private local Ray instance, the share of queries whose top 10 is identical to the
   baseline's, and queries per second.
2. **Backfill**: the sample videos (`../shared/data/videos`) ingested by `vq index add`'s
   code in this process (the baseline) and by `vq index backfill` (Ray Data) with 1 and 2
   workers: seconds, and whether every stored vector equals the baseline's.

On one 2-core machine shards and replicas share the same cores, so this measures the
overhead and correctness of the fan-out, not the speed-up a cluster of hosts gives; the
paper plan in BENCHMARKS.md scales the per-shard figures measured here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from index import FRAMES_PER_VIDEO, chunk_vectors, make_queries  # noqa: E402

from vq.bench import machine_info  # noqa: E402
from vq.cli.output import print_table  # noqa: E402
from vq.fsutil import atomic_write_text  # noqa: E402


def build_library(root: Path, total: int):
    from vq.index.library import Library, LibraryConfig

    config = LibraryConfig(model="synthetic", model_sha256="-", dim=256)
    t0 = time.perf_counter()
    with Library.create(root, config) as lib:
        for start in range(0, total, FRAMES_PER_VIDEO):
            lib.add_video(
                f"v{start}", chunk_vectors(start, FRAMES_PER_VIDEO), np.arange(FRAMES_PER_VIDEO) * 2.0
            )
        factory = lib.factory_for(lib.total)
    return time.perf_counter() - t0, factory


def queries_per_second(lib, queries: np.ndarray, batch: int, clients: int) -> float:
    """Every batch of `queries` searched once, `clients` threads at a time."""
    batches = [queries[i : i + batch] for i in range(0, len(queries), batch)]
    turn = iter(range(len(batches)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                i = next(turn, None)
            if i is None:
                return
            lib.search(batches[i], 10)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(queries) / (time.perf_counter() - t0)


def bench_search(root: Path, total: int, n_queries: int, batch: int, clients: int) -> list[dict]:
    from vq.index.library import Library
    from vq.index.sharding import shard_library

    queries, _ = make_queries(total, n_queries)
    with Library.open(root) as single:
        truth = single.search(queries, 10)[1]
        queries_per_second(single, queries[:batch], batch, 1)  # warm
        rows = [
            {
                "setting": "single process (baseline)",
                "identical_top10": 1.0,
                "qps": queries_per_second(single, queries, batch, clients),
            }
        ]
    for shards in (1, 2, 4):
        for replicas in (1, 2):
            shard_library(root, shards, replicas, "local")
            t0 = time.perf_counter()
            with Library.open(root, cluster="local") as lib:
                start_s = time.perf_counter() - t0
                ids = lib.search(queries, 10)[1]
                rows.append(
                    {
                        "setting": f"{shards} shard(s) x {replicas} replica(s)",
                        "identical_top10": float(np.mean(np.all(ids == truth, axis=1))),
                        "qps": queries_per_second(lib, queries, batch, clients),
                        "start_s": start_s,
                    }
                )
            print(f"  {rows[-1]}", file=sys.stderr)
    base = rows[0]["qps"]
    for row in rows:
        row["x_single"] = row["qps"] / base
    return rows


def bench_backfill(videos: Path, work: Path) -> list[dict]:
    from vq.cli.app import main
    from vq.index.library import Library
    from vq.media import VIDEO_SUFFIXES
    from vq.pipelines.backfill import backfill

    paths = sorted(p for p in videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    seconds_of_video = 0.0
    rows = []
    baseline = work / "sequential"
    main(["index", "create", str(baseline), "--fps", "1", "--companion", "none"])  # shards of one model
    t0 = time.perf_counter()
    main(["index", "add", *map(str, paths), "-l", str(baseline), "--timeout", "0", "--json"])
    rows.append({"setting": "vq index add (this process, baseline)", "seconds": time.perf_counter() - t0})
    with Library.open(baseline) as lib:
        seconds_of_video = sum(v.duration or 0.0 for v in lib.live_videos())
        expected = {v.name: lib.vectors_of(v.id) for v in lib.live_videos()}
    for workers in (1, 2):
        root = work / f"backfill-{workers}"
        main(["index", "create", str(root), "--fps", "1", "--companion", "none"])
        t0 = time.perf_counter()
        records = list(backfill(paths, root, workers=workers, address="local"))
        seconds = time.perf_counter() - t0
        with Library.open(root) as lib:
            same = all(
                all(np.array_equal(a, b) for a, b in zip(lib.vectors_of(v.id), expected[v.name], strict=True))
                for v in lib.live_videos()
            ) and {v.name for v in lib.live_videos()} == set(expected)
        rows.append(
            {
                "setting": f"vq index backfill, {workers} Ray Data worker(s)",
                "seconds": seconds,
                "ok": sum(r.status == "ok" for r in records),
                "vectors_equal_baseline": same,
            }
        )
        print(f"  {rows[-1]}", file=sys.stderr)
    for row in rows:
        row["x_baseline"] = rows[0]["seconds"] / row["seconds"]
        row["video_seconds_per_s"] = seconds_of_video / row["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64, help="Query frames per search call.")
    parser.add_argument("--clients", type=int, default=4, help="Threads searching at once.")
    parser.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "videos")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import ray

    from vq.index.cluster import connect, disconnect

    work = Path(tempfile.mkdtemp(prefix="vq-cluster-"))
    report: dict = {
        "machine": machine_info(),
        "ray": ray.__version__,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    try:
        connect("local")
        build_s, factory = build_library(work / "library", args.vectors)
        report["library"] = {"vectors": args.vectors, "factory": factory, "build_s": build_s}
        print(f"library: {args.vectors:,} vectors, {factory}, built in {build_s:.0f} s", file=sys.stderr)
        report["search"] = bench_search(
            work / "library", args.vectors, args.queries, args.batch, args.clients
        )
        print_table(
            report["search"],
            [
                ("setting", "setting"),
                ("identical_top10", "top 10 = single"),
                ("qps", "queries/s"),
                ("x_single", "x single"),
                ("start_s", "start s"),
            ],
            title=f"search: {args.vectors:,} vectors, batches of {args.batch}, {args.clients} clients",
        )
        report["backfill"] = bench_backfill(args.videos, work)
        print_table(
            report["backfill"],
            [
                ("setting", "setting"),
                ("seconds", "s"),
                ("x_baseline", "x baseline"),
                ("video_seconds_per_s", "video s / s"),
                ("vectors_equal_baseline", "vectors equal"),
            ],
            title="backfill of the sample videos",
        )
    finally:
        disconnect()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
