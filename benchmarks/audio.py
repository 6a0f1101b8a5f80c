"""What the soundtrack costs an upload: decode + landmarks, with and without the speed search.

    python benchmarks/audio.py --json benchmarks/results/audio-cost.json

`Dedup.sound` (what `vq run` does with a query's sound) on a `--seconds` soundtrack made
of the sample videos' sound tracks end to end, written to an AAC file as an upload
carries it: once with the speed search off (`audio_speed_seconds=0`) and once at the
default, interleaved `--repeats` times in this one process (the best of each is
compared). The speed search fingerprints the first 20 s again at 20 other speeds.
`--learned vq-audiofp` also times the learned fingerprint (log-mel + the model) beside them.
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
VIDEOS = REPO.parent / "shared" / "data" / "videos"
RATE = 16000


def soundtrack(seconds: float, dest: Path) -> Path:
    from vq.media.audio import decode_audio
    from vq.media.encode import write_audio

    parts = [decode_audio(VIDEOS / name, RATE) for name in ("big_buck_bunny_0_30.webm", "chaplin.mp4")]
    track = np.concatenate(parts)
    track = np.tile(track, int(np.ceil(seconds * RATE / len(track))))[: int(seconds * RATE)]
    return write_audio(dest, track, RATE, bitrate=128_000)


def best_time(job, path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        job.sound(path, "main", query=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from vq.pipelines.dedup import Dedup, DedupConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--learned", default="", help="also time a learned fingerprint model (vq-audiofp)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from vq.media.audio import decode_audio
    from vq.stages.audio_fingerprint import AudioFingerprinter

    plain = Dedup(None, [], DedupConfig(audio_speed_seconds=0))  # sound only: no embedder, no library
    speedy = Dedup(None, [], DedupConfig())
    learned = AudioFingerprinter(args.learned, backend="ort-cpu").open() if args.learned else None
    with tempfile.TemporaryDirectory() as tmp:
        path = soundtrack(args.seconds, Path(tmp) / "upload.m4a")
        plain.sound(path, "main")  # warm up
        runs: dict[str, list[float]] = {"plain": [], "speed": [], "learned": []}
        for _ in range(args.repeats):  # interleaved, so drift hits every side alike
            runs["plain"].append(best_time(plain, path, 1))
            runs["speed"].append(best_time(speedy, path, 1))
            if learned is not None:
                t0 = time.perf_counter()
                learned.vectors(decode_audio(path, RATE))
                runs["learned"].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in runs.items() if v}
    rows = [
        {"what": "decode + landmarks", "seconds": round(best["plain"], 3), "ratio": 1.0},
        {
            "what": f"+ speed search (first {DedupConfig().audio_speed_seconds:.0f} s, 20 speeds)",
            "seconds": round(best["speed"], 3),
            "ratio": round(best["speed"] / best["plain"], 2),
        },
    ]
    if "learned" in best:
        rows.append(
            {
                "what": f"decode + learned vectors ({args.learned})",
                "seconds": round(best["learned"], 3),
                "ratio": round(best["learned"] / best["plain"], 2),
            }
        )
    print_table(
        rows, [("what", ""), ("seconds", "s"), ("ratio", "x")], f"sound of a {args.seconds:.0f} s upload"
    )
    if args.json:
        out = {"machine": machine_info(), "seconds_of_sound": args.seconds, "best": best, "runs": runs}
        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
