"""Ladder benchmark: `vq ladder` on a 10 s 720p clip (5 CRF x 3 heights), where the time goes.

    python benchmarks/ladder.py --json benchmarks/results/ladder.json

1. The clip: the first 10 s of ``../shared/data/videos/big_buck_bunny_0_30.webm``
   (1280x720, 24 fps) at H.264 CRF 23 (`benchmarks/quality.py`'s clip).
2. Beside it in the same process: one plain encode of the whole clip at the search
   preset and CRF 23, full height, with every core (the unit a ladder is a multiple of).
3. The ladder (`vq.pipelines.ladder.run_ladder`, defaults: h264 CRF 18-38 x {720, 480,
   360}, veryfast search, KVQ on ORT CPU), with and without `--client-post sharpen sr`;
   its timings split decode / encode (summed over the parallel rungs) / KVQ scoring /
   client post-processing, and the wall time as a multiple of the single encode.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from quality import make_clip

from vq.bench import machine_info
from vq.cli.output import print_table
from vq.fsutil import atomic_write_text


def single_encode(clip: Path) -> float:
    from vq.media.encode import write_video
    from vq.pipelines.ladder import SEARCH_PRESETS, load_source

    source = load_source(clip, 10.0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_video(
            Path(tmp) / "one.mp4",
            source.frames,
            source.fps,
            crf=23,
            preset=SEARCH_PRESETS["h264"],
            threads=os.cpu_count(),
        )
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from vq.pipelines.ladder import LadderOptions, run_ladder

    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp))
        single = single_encode(clip)
        for label, post in (("ladder", []), ("ladder + client sharpen, sr", ["sharpen", "sr"])):
            opts = LadderOptions(backend="ort-cpu", client_post=post, target_score=5.0)  # 5: all rungs below
            t0 = time.perf_counter()
            record = run_ladder(clip, opts)
            wall = time.perf_counter() - t0
            timings = record["timings"]
            results[label] = {"wall_s": round(wall, 2), "timings": timings, "rungs": len(record["rungs"])}
            rows.append(
                {
                    "run": label,
                    "rungs": len(record["rungs"]),
                    "wall": wall,
                    "x_encode": wall / single,
                    **{k: timings.get(k, 0.0) for k in ("decode_s", "encode_s", "score_s", "post_s")},
                }
            )
    print_table(
        rows,
        [
            ("run", "run"),
            ("rungs", "rungs"),
            ("wall", "wall s"),
            ("x_encode", "x one encode"),
            ("decode_s", "decode s"),
            ("encode_s", "encode s (sum)"),
            ("score_s", "KVQ s"),
            ("post_s", "client post s"),
        ],
        title=f"10 s 720p clip; one full-height CRF 23 encode beside it: {single:.2f} s",
    )
    if args.json:
        report = {"machine": machine_info(), "single_encode_s": round(single, 3), "runs": results}
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
