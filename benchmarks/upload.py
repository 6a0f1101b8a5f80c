"""One decode for three jobs: `vq run --score [--enhance]` against the separate commands.

    python benchmarks/upload.py --json benchmarks/results/upload.json

The same inputs (default: ``../shared/data/videos``, the Quickstart's) go through, in
turn and interleaved `--repeats` times (these machines are noisy; the best of each is
compared):

* **shared**: `vq run --score` (copy detection and quality from one decode);
* **separate**: `vq run` then `vq score` (each decodes on its own);

and with `--enhance` also `vq run --score --enhance` against `vq run` + `vq score` +
`vq enhance`. Every run is the CLI in a fresh process, as a user runs it (model loading
and interpreter start included), into a fresh library, with `--timeout 0` (no worker
process) so both sides pay the same overheads.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vq.bench import machine_info
from vq.cli.output import print_table
from vq.fsutil import atomic_write_text

REPO = Path(__file__).resolve().parent.parent
VIDEOS = REPO.parent / "shared" / "data" / "videos"
VQ = [sys.executable, "-m", "vq.cli.app"]


def timed(commands: list[list[str]]) -> float:
    t0 = time.perf_counter()
    for cmd in commands:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode not in (0, 1):  # 1: some input failed, as the batch reports
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def plans(inputs: list[str], work: Path, enhance: bool) -> dict[str, list[list[str]]]:
    # one model, as the figures in BENCHMARKS.md were measured (the default adds a luma companion)
    lib = ["--library", str(work / "lib"), "--create", "--fps", "2", "--companion", "none", "--timeout", "0"]
    run = [*VQ, "run", *inputs, *lib]
    score = [*VQ, "score", *inputs, "--timeout", "0", "--json"]
    out = {
        "vq run --score": [[*run, "--score"]],
        "vq run + vq score": [run, score],
    }
    if enhance:
        enh = str(work / "enhanced")
        out["vq run --score --enhance"] = [[*run, "--score", "--enhance", enh]]
        out["vq run + vq score + vq enhance"] = [run, score, [*VQ, "enhance", *inputs, "--out", enh]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", default=[str(VIDEOS)])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--enhance", action="store_true", help="Also compare with enhancement.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for _ in range(args.repeats):
            for name, commands in plans(args.inputs, work, args.enhance).items():
                shutil.rmtree(work / "lib", ignore_errors=True)  # every run starts a new library
                shutil.rmtree(work / "enhanced", ignore_errors=True)
                seconds = timed(commands)
                best[name] = min(best.get(name, float("inf")), seconds)
    pairs = [("vq run --score", "vq run + vq score")]
    if args.enhance:
        pairs.append(("vq run --score --enhance", "vq run + vq score + vq enhance"))
    rows = [
        {
            "shared": shared,
            "shared_s": best[shared],
            "separate": separate,
            "separate_s": best[separate],
            "speedup": best[separate] / best[shared],
        }
        for shared, separate in pairs
    ]
    columns = [("shared", "shared decode"), ("shared_s", "s"), ("separate", "separate commands")]
    print_table(rows, [*columns, ("separate_s", "s"), ("speedup", "separate / shared")])
    if args.json:
        result = {
            "machine": machine_info(),
            "inputs": args.inputs,
            "repeats": args.repeats,
            "best_seconds": {k: round(v, 3) for k, v in best.items()},
            "speedup": {shared: round(best[separate] / best[shared], 3) for shared, separate in pairs},
        }
        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
