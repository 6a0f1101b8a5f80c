"""Quality benchmark: `vq score` on a 10 s 720p H.264 clip, decode included, and the
model alone on every backend here.

    python benchmarks/quality.py --json benchmarks/results/quality.json

1. The clip: the first 10 s of ``../shared/data/videos/big_buck_bunny_0_30.webm``
   (1280x720, 24 fps) encoded to H.264 (libx264, CRF 23, the encoder's default GOP),
   written to a temporary folder.
2. Beside it in the same process: a plain full decode of that file to RGB (PyAV, the
   decoder `vq score` uses), the floor any scorer that looks at every frame pays.
3. `vq score`'s job (`vq.pipelines.score.score_video`: decode the segment windows at native
   resolution, fragments, model) with the shipped model on ORT CPU: best of `--repeats`
   runs; x real time = clip seconds / wall seconds.
4. The model alone at batch 1 and 8: JAX, ORT fp32 (and int8 where the artifact has it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from vq.bench import bench_backends, default_variants, machine_info
from vq.cli.output import print_table
from vq.fsutil import atomic_write_text

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO.parent / "shared" / "data" / "videos" / "big_buck_bunny_0_30.webm"


def make_clip(folder: Path, seconds: float = 10.0) -> Path:
    from vq.media import open_video
    from vq.media.encode import write_video

    with open_video(SOURCE) as video:
        fps = float(video.info.fps)
        frames = video.sample(times=np.arange(int(seconds * fps)) / fps, fast=False).images
    return write_video(folder / "clip720p.mp4", frames, fps, codec="h264", crf=23)


def full_decode(path: Path) -> float:
    import av

    t0 = time.perf_counter()
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        n = sum(1 for f in container.decode(video=0) if f.to_ndarray(format="rgb24") is not None)
    assert n > 0
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Quality model (default: the shipped vq-kvq).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--views", type=int, default=None, help="Fragment placements per window (default: vq score's)."
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from vq.media import probe
    from vq.pipelines.score import score_video
    from vq.stages.quality import DEFAULT_VIEWS, QualityScorer

    views = DEFAULT_VIEWS if args.views is None else args.views

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp))
        info = probe(clip)
        seconds = float(info.duration)
        with QualityScorer(args.model, backend="ort-cpu", views=views).open() as scorer:
            score_video(clip, scorer)  # warm-up: session and first decode
            runs, decodes = [], []
            for _ in range(args.repeats):  # interleaved, so both see the same machine state
                decodes.append(full_decode(clip))
                t0 = time.perf_counter()
                record = score_video(clip, scorer)
                runs.append(time.perf_counter() - t0)
            artifact = scorer.artifact
        job = {
            "clip": f"{info.width}x{info.height} {info.codec} {seconds:.2f} s {info.fps:.0f} fps",
            "views": views,
            "score": record["score"],
            "segments": len(record["segments"]),
            "vq_score_s": min(runs),
            "x_real_time": seconds / min(runs),
            "full_decode_s": min(decodes),
            "full_decode_x_real_time": seconds / min(decodes),
            "timings_last_run": record["timings"],
        }
    rows = bench_backends(artifact, default_variants(artifact), [1, 8])
    result = {"machine": machine_info(), "model": artifact.name, "job": job, "model_alone": rows}
    print_table(
        [job],
        [
            (k, k)
            for k in (
                "clip",
                "score",
                "segments",
                "vq_score_s",
                "x_real_time",
                "full_decode_s",
                "full_decode_x_real_time",
            )
        ],
        "vq score, decode included",
    )
    print_table(
        rows,
        [
            ("label", "variant"),
            ("batch", "batch"),
            ("p50_ms", "p50 ms"),
            ("items_per_s", "windows/s"),
            ("speedup", "vs first"),
        ],
        "model alone (one window = 16 frames)",
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
