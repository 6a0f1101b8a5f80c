"""Generative enhancement benchmark: the one-step student against its 25-step teacher.

    python benchmarks/lpm.py --model runs/art/lpm-x2 --teacher runs/art/lpm-teacher \\
        --json benchmarks/results/lpm.json

1. The same frame (a 128x128 crop of Set14's ``baboon``, the detail-heavy image) is
   enhanced x2 (256x256 out) by the distilled student (`--model`, 1 step) and by its
   teacher (the exported `lpm-control` run) at 25 / 8 / 4 / 1 steps, on each backend here
   (ORT CPU fp32, int8, fp8 Q/DQ, JAX), interleaved `--repeats` times so all see the same machine
   state; the best time of each is kept. Seconds per output megapixel, and the speed-up
   of the student over the teacher at 25 steps on the same backend.
2. A 2 s 360p clip through `vq enhance` (decode, tiles, encode with audio): x real time
   and the flicker ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from vq.bench import machine_info
from vq.cli.output import print_table
from vq.fsutil import atomic_write_text

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def time_variant(enhancer, frame: np.ndarray) -> float:
    t0 = time.perf_counter()
    enhancer.enhance(frame)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="The exported one-step student.")
    parser.add_argument("--teacher", type=Path, required=True, help="The exported teacher artifact.")
    parser.add_argument("--teacher-steps", default="25,8,4,1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from vq.images import read_rgb
    from vq.pipelines.enhance import enhance_video
    from vq.runtimes import get_backend
    from vq.stages.enhance import Enhancer

    frame = np.ascontiguousarray(read_rgb(DATA / "images" / "set14_lr_x2" / "baboon.png")[:128, :128])
    out_mp = (frame.shape[0] * 2) * (frame.shape[1] * 2) / 1e6
    variants = [("ort-cpu", "fp32"), ("ort-cpu", "int8"), ("ort-cpu", "fp8")]
    if get_backend("jax").available():
        variants.append(("jax", "fp32"))
    steps = [int(s) for s in args.teacher_steps.split(",")]
    rows = []
    for backend, precision in variants:
        runs: dict[str, Enhancer] = {}
        try:
            runs["student@1"] = Enhancer(args.model, backend=backend, precision=precision, batch=64)
            for n in steps:
                runs[f"teacher@{n}"] = Enhancer(
                    args.teacher, backend=backend, precision=precision, batch=64, steps=n
                )
        except Exception as e:  # a graph this backend lacks: say so in the table
            rows.append({"backend": backend, "precision": precision, "model": "-", "error": str(e)[:80]})
            continue
        for enhancer in runs.values():
            enhancer.enhance(frame)  # warm-up: session, first allocation
        best = {name: np.inf for name in runs}
        for _ in range(args.repeats):
            for name, enhancer in runs.items():
                best[name] = min(best[name], time_variant(enhancer, frame))
        for name, enhancer in runs.items():
            enhancer.close()
            rows.append(
                {
                    "backend": backend,
                    "precision": precision,
                    "model": name,
                    "s_per_mp": best[name] / out_mp,
                    "student_speedup": best[f"teacher@{steps[0]}"] / best["student@1"]
                    if name == "student@1"
                    else None,
                }
            )

    with tempfile.TemporaryDirectory() as tmp:
        from vq.media.encode import write_video

        source = DATA / "videos" / "example3.mp4"  # 854x480, 2 s, with audio
        from vq.media import open_video

        with open_video(source) as video:
            frames = video.sample(times=np.arange(48) / 24.0, size=(320, 180), fast=False).images
        clip = write_video(Path(tmp) / "clip.mp4", frames, 24, crf=20, audio_from=source)
        with Enhancer(args.model, backend="ort-cpu") as enhancer:
            t0 = time.perf_counter()
            record = enhance_video(clip, Path(tmp) / "out.mp4", enhancer)
            wall = time.perf_counter() - t0
        video_row = {
            "clip": "320x180 H.264 2 s 24 fps, audio",
            "frames": record["frames"],
            "wall_s": wall,
            "x_real_time": 2.0 / wall,
            "flicker_ratio": record["flicker_ratio"],
        }
    print_table(
        rows,
        [
            ("backend", "backend"),
            ("precision", "precision"),
            ("model", "model"),
            ("s_per_mp", "s / output MP"),
            ("student_speedup", "student speed-up"),
            ("error", "error"),
        ],
        "x2 enhancement, 256x256 output",
    )
    print_table([video_row], [(k, k) for k in video_row], "vq enhance on a video")
    if args.json:
        result = {
            "machine": machine_info(),
            "frame": "set14_lr_x2/baboon.png[:128, :128]",
            "rows": rows,
            "video": video_row,
        }
        atomic_write_text(args.json, json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
