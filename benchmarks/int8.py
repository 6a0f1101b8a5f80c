"""int8 vs fp32 on the shipped models, with 8-bit and 7-bit CPU weights, on this CPU.

Re-quantises each shipped model's fp32 graph twice in one process (calibration as its card
records: BSD100 [+ Set14] images) — CPU graph with full 8-bit weights, and with the 7-bit
weights vq ships — and measures both against fp32 on images no model trained or
calibrated on: the 26 photos and Set5 for the embedder (cosine per image), Set5 and
Set14 LR images for the enhancer (mean abs difference in grey levels, tiled as the runtime
tiles). Run it natively and under an emulated AVX2-only CPU to see the other class:

    python benchmarks/int8.py --json benchmarks/results/int8-native.json
    qemu-x86_64 -cpu Haswell .venv/bin/python benchmarks/int8.py --emulated "qemu -cpu Haswell" \\
        --json benchmarks/results/int8-haswell.json

Speed is reported only natively (`--speed`): under emulation it means nothing.
Needs the `train` extra (onnx, for quantisation).
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
from vq.export.calibration import image_feeds
from vq.export.parity import ort_session
from vq.export.quantize import quantize_int8
from vq.fsutil import atomic_write_text
from vq.hardware import int8_isa
from vq.images import read_rgb
from vq.models import load_model
from vq.preprocess.normalize import to_model_input
from vq.preprocess.resize import resize
from vq.stages.enhance import split_tiles

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "images"


def graphs(name: str, calib: list[Path], count: int, tmp: Path) -> tuple[object, dict[str, Path]]:
    art = load_model(name)
    feeds = list(image_feeds(calib, art.card.inputs[0], art.card.preprocessing, count=count, seed=0))
    out = {"fp32": art.onnx_path("fp32")}
    for bits in (8, 7):
        out[f"int8 ({bits}-bit weights)"] = tmp / f"{name}.w{bits}.onnx"
        quantize_int8(out["fp32"], out[f"int8 ({bits}-bit weights)"], feeds, target="cpu", weight_bits=bits)
    return art, out


def embedder_rows(tmp: Path, speed: bool) -> list[dict]:
    art, paths = graphs("vq-embed", [DATA / "bsd100", DATA / "set14"], 128, tmp)
    files = sorted((DATA / "photos").glob("*.png")) + sorted((DATA / "set5").glob("*.png"))
    x = to_model_input(
        np.stack([resize(read_rgb(f), (128, 128), "bilinear") for f in files]), art.card.preprocessing
    )
    name = art.card.inputs[0].name
    outputs = {label: ort_session(p).run(None, {name: x})[0] for label, p in paths.items()}
    ref = outputs["fp32"]
    rows = []
    for label, out in outputs.items():
        if label == "fp32":
            continue
        cos = np.sum(ref * out, 1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)
        row = {
            "model": "vq-embed",
            "graph": label,
            "images": len(files),
            "cos_min": float(cos.min()),
            "cos_mean": float(cos.mean()),
        }
        if speed:
            row["x_fp32"] = throughput(paths[label], name, x[:32]) / throughput(paths["fp32"], name, x[:32])
        rows.append(row)
    return rows


def enhancer_rows(tmp: Path, speed: bool) -> list[dict]:
    art, paths = graphs("vq-enhance-x2", [DATA / "bsd100"], 256, tmp)
    name = art.card.inputs[0].name
    images = [read_rgb(f) for d in ("set5_lr_x2", "set14_lr_x2") for f in sorted((DATA / d).glob("*.png"))]
    tiles = [to_model_input(split_tiles(im, 128, 16)[0], art.card.preprocessing) for im in images]
    sessions = {label: ort_session(p) for label, p in paths.items()}

    def run(label: str, t: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(sessions[label].run(None, {name: t})[0] * 255), 0, 255)

    rows = []
    for label in paths:
        if label == "fp32":
            continue
        diffs = [float(np.abs(run("fp32", t) - run(label, t)).mean()) for t in tiles]
        row = {
            "model": "vq-enhance-x2",
            "graph": label,
            "images": len(images),
            "mean_abs": float(np.mean(diffs)),
            "max_image_mean_abs": float(np.max(diffs)),
        }
        if speed:
            row["x_fp32"] = throughput(paths[label], name, tiles[0][:8]) / throughput(
                paths["fp32"], name, tiles[0][:8]
            )
        rows.append(row)
    return rows


def throughput(path: Path, name: str, x: np.ndarray, seconds: float = 2.0) -> float:
    session = ort_session(path)
    session.run(None, {name: x})
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {name: x})
        runs += 1
    return runs * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--speed", action="store_true", help="also int8/fp32 throughput (native runs only)")
    parser.add_argument(
        "--emulated", default="", help="say what emulates the CPU (qemu-user shows the host's /proc/cpuinfo)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        embed = embedder_rows(Path(tmp), args.speed)
        enhance = enhancer_rows(Path(tmp), args.speed)
    isa = int8_isa()
    print_table(
        embed,
        [
            ("graph", "graph"),
            ("images", "images"),
            ("cos_min", "cosine min"),
            ("cos_mean", "cosine mean"),
            ("x_fp32", "x fp32"),
        ],
        title=f"vq-embed int8 vs fp32 (int8 path of this CPU, by /proc/cpuinfo: {isa})",
    )
    print_table(
        enhance,
        [
            ("graph", "graph"),
            ("images", "images"),
            ("mean_abs", "mean abs (grey levels)"),
            ("max_image_mean_abs", "worst image"),
            ("x_fp32", "x fp32"),
        ],
        title="vq-enhance-x2 int8 vs fp32",
    )
    if args.json:
        atomic_write_text(
            args.json,
            json.dumps({"machine": machine_info(), "embed": embed, "enhance": enhance}, indent=2) + "\n",
        )


if __name__ == "__main__":
    main()
