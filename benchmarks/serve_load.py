"""Load test of `vq serve` on loopback: 60 s 720p uploads at a steady rate, against a
library of >= 100k vectors; throughput, p50 / p99 latency, share answered within 10 s.

    python benchmarks/serve_load.py --work runs/serve-load --json benchmarks/results/serve-load.json

1. **Library**: a new library (1 frame/s, the shipped embedding) filled with
   `--background` vectors of other videos (random unit vectors, 100 per video: what the
   search pays for is their number, not their content), then the uploads themselves as
   the service ingests them.
2. **Uploads**: `--clips` distinct 60 s 1280x720 24 fps H.264 clips spliced from the
   sample videos (cached under `--work`); each is sent several times, so later uploads are
   copies of earlier ones, as on a real platform.
3. **Server**: `vq serve` in its own process on 127.0.0.1 (`--workers`), one warm-up
   upload first.
4. **Load**: one multipart upload every `--interval` seconds (default: 1.25 x the
   sequential service time measured on the warm-up, a rate the service can sustain), each
   from its own thread, which then polls the job; latency is from the first byte sent to
   the record being ready. Stops by itself after `--uploads` uploads.
5. **Queries beside the load** (`--queries N`): a 10 s 720p piece of an upload sent to
   `/v1/query` N times, spread over the load, and 3 times before it on the idle server
   (the baseline): a query must not wait behind the uploads' queue, so its latency under
   load should stay near the idle one (it shares the two cores, not the line).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vq.bench import machine_info
from vq.cli.output import print_table
from vq.fsutil import atomic_write_text

REPO = Path(__file__).resolve().parent.parent
VIDEOS = REPO.parent / "shared" / "data" / "videos"
TOKEN = "load-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PIECES = [
    ("big_buck_bunny_0_30.webm", 0.0, 30.0),
    ("example.mp4", 0.0, 16.0),
    ("video_with_failing_audio.mp4", 0.0, 11.0),
    ("smpte-2997.mp4", 0.0, 10.0),
    ("chaplin.mp4", 0.0, 9.5),
]


def make_uploads(work: Path, count: int) -> list[Path]:
    """`count` distinct 60 s 720p clips: the sample videos spliced in rotated orders."""
    from vq import synth as E

    out = []
    for i in range(count):
        path = work / f"upload{i}.mp4"
        if not path.exists():
            pieces, total, k = [], 0.0, i
            while total < 60.0:
                name, a, b = PIECES[k % len(PIECES)]
                b = min(b, a + 60.0 - total)
                pieces.append((VIDEOS / name, a, b))
                total += b - a
                k += 1
            E.splice(pieces, path, fps=24, size=(1280, 720), crf=23)
        out.append(path)
    return out


def make_library(lib: Path, background: int, per_video: int = 100) -> int:
    from vq.index.library import open_library
    from vq.pipelines.library import create_library

    if (lib / "library.toml").exists():
        with open_library(lib) as library:
            return int(library.total)
    # One model at 1 fps, as measured since the fourth session (the default is now 2 fps and a
    # luma companion; this measures the service and the index, not the embedders).
    config = create_library(lib, None, fps=1.0, companions=())
    rng = np.random.default_rng(0)
    with open_library(lib, write=True) as library:
        for v in range(background // per_video):
            x = rng.standard_normal((per_video, config.dim)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            library.add_video(f"background-{v}", x, np.arange(per_video, dtype=np.float64))
        library.flush()
        return int(library.total)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(lib: Path, state: Path, workers: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "vq.cli.app", "serve", "--library", str(lib), "--state", str(state)]
    cmd += ["--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env={**os.environ, "VQ_SERVE_TOKEN": TOKEN}, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vq serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit("vq serve did not come up")


def upload(url: str, path: Path, endpoint: str = "/v1/videos") -> dict:
    """Send one upload (or query), poll until its record is ready; latency and outcome."""
    import httpx

    t0 = time.perf_counter()
    with open(path, "rb") as f:
        reply = httpx.post(f"{url}{endpoint}", files={"file": (path.name, f)}, headers=AUTH, timeout=120)
    reply.raise_for_status()
    job = reply.json()["id"]
    while True:
        got = httpx.get(f"{url}/v1/videos/{job}", timeout=30).json()
        if got["status"] in ("done", "error"):
            record = got.get("record", {})
            return {
                "latency": time.perf_counter() - t0,
                "status": got["status"],
                "mode": record.get("mode"),
                "matches": len(record.get("matches", [])),
            }
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/serve-load"))
    parser.add_argument("--background", type=int, default=100_000, help="Vectors in the library first.")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--interval", type=float, default=None, help="Seconds between uploads.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queries", type=int, default=0, help="/v1/query calls spread over the load.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    clips = make_uploads(args.work, args.clips)
    query_clip = args.work / "query.mp4"
    if not query_clip.exists():
        from vq import synth as E

        E.splice([(clips[0], 5.0, 15.0)], query_clip, fps=24, size=(1280, 720), crf=23)
    lib = args.work / "library"
    background = make_library(lib, args.background)
    state = args.work / f"state-{int(time.time())}"
    proc, url = start_server(lib, state, args.workers)
    try:
        warm = upload(url, clips[0])
        idle = [upload(url, query_clip, "/v1/query") for _ in range(3 if args.queries else 0)]
        interval = args.interval or 1.25 * warm["latency"]
        results: list[dict] = []
        queries: list[dict] = []
        threads = []
        start = time.perf_counter()
        query_every = args.uploads * interval / args.queries if args.queries else float("inf")
        sent = 0
        for i in range(args.uploads):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t = threading.Thread(target=lambda p=clips[i % len(clips)]: results.append(upload(url, p)))
            t.start()
            threads.append(t)
            while (
                sent < args.queries and start + (sent + 0.5) * query_every <= time.perf_counter() + interval
            ):
                at = start + (sent + 0.5) * query_every

                def ask(at: float = at) -> None:
                    time.sleep(max(0.0, at - time.perf_counter()))
                    queries.append(upload(url, query_clip, "/v1/query"))

                t = threading.Thread(target=ask)
                t.start()
                threads.append(t)
                sent += 1
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    latency = np.asarray([r["latency"] for r in results])
    row = {
        "uploads": len(results),
        "interval_s": round(interval, 2),
        "rate_per_min": round(60 / interval, 2),
        "throughput_per_min": round(60 * len(results) / wall, 2),
        "p50_s": round(float(np.percentile(latency, 50)), 2),
        "p99_s": round(float(np.percentile(latency, 99)), 2),
        "max_s": round(float(latency.max()), 2),
        "within_10s": round(float(np.mean(latency <= 10.0)), 3),
        "errors": sum(r["status"] != "done" for r in results),
        "fallbacks": sum(r["mode"] == "fallback" for r in results),
    }
    if queries:
        q = np.asarray([r["latency"] for r in queries])
        row |= {
            "queries": len(queries),
            "query_idle_p50_s": round(float(np.median([r["latency"] for r in idle])), 2),
            "query_p50_s": round(float(np.percentile(q, 50)), 2),
            "query_p99_s": round(float(np.percentile(q, 99)), 2),
            "queries_found_source": sum(r["matches"] > 0 for r in queries),
        }
    columns = [(k, k) for k in row]
    print_table([row], columns, title=f"vq serve, {background} vectors, 60 s 720p uploads")
    if args.json:
        result = {
            "machine": machine_info(),
            "library_vectors_before": background,
            "warmup_latency_s": round(warm["latency"], 2),
            "workers": args.workers,
            **row,
        }
        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
