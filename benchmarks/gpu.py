"""GPU paths against their CPU baselines, side by side in one run.

    python benchmarks/gpu.py --json benchmarks/results/gpu.json

1. What this host offers: each inference backend and its devices, faiss GPUs, the GPU's
   name (nvidia-smi).
2. The shipped models on every GPU variant this host can run (ONNX Runtime CUDA at each
   graph the card has, TensorRT engines, JAX on the GPU): the largest output difference
   from ONNX Runtime CPU fp32 on the same input, and throughput as a ratio to it.
3. NVDEC against the CPU decoder: every frame of a generated 10 s 720p H.264 clip, the
   mean pixel difference and frames/s as a ratio to the CPU.

On a host without a GPU, each GPU row says why it could not run (the one-line error the
runtime gives a user), so the script is a check of the error paths there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

# JAX takes 75 % of GPU memory at its first use and keeps it: the rows after a JAX row
# (ORT CUDA, TensorRT) would run on what is left.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from vq.bench import machine_info, make_feeds, measure
from vq.errors import VqError, one_line
from vq.fsutil import atomic_write_text
from vq.models import load_model
from vq.runtimes import backend_status, open_session

# (model, symbolic dims, batch): the quality model at its clip size, the enhancer on a
# 256x256 tile, the LPM restorer (whose card has fp16 and fp8 graphs) where shipped.
MODELS = [
    ("vq-kvq", {}, 8),
    ("vq-enhance-x2", {"H": 256, "W": 256}, 8),
    ("vq-lpm-x2", {}, 4),
]
GPU_VARIANTS = (
    [("ort", "cuda", p) for p in ("fp32", "fp16", "int8", "fp8")]
    + [("trt", "cuda", p) for p in ("fp32", "fp16", "int8", "fp8")]
    + [("jax", "cuda", "fp32")]
)


def host() -> dict:
    """Backends and their devices, faiss GPUs, and the GPU nvidia-smi names."""
    backends = {r["name"]: r["devices"] if r["available"] else r["reason"] for r in backend_status()}
    try:
        import faiss

        faiss_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        faiss_gpus = "faiss is not installed"
    smi = shutil.which("nvidia-smi")
    gpu = (
        subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout.strip()
        if smi
        else "no nvidia-smi"
    )
    return {"backends": backends, "faiss_gpus": faiss_gpus, "gpu": gpu}


def model_rows(min_seconds: float) -> list[dict]:
    """Each GPU variant of each shipped model against ORT CPU fp32 on the same feeds."""
    rows = []
    for name, dims, batch in MODELS:
        try:
            artifact = load_model(name)
        except VqError as e:
            rows.append({"model": name, "variant": "-", "error": one_line(e)})
            continue
        feeds = make_feeds(artifact, batch, dims)
        with open_session(artifact, backend="ort", device="cpu", precision="fp32") as ref:
            expected = ref.run(feeds)
            base = measure(ref, feeds, min_seconds=min_seconds)
        rows.append(
            {
                "model": name,
                "variant": "ort-cpu-fp32",
                "batch": batch,
                **base,
                "max_abs_diff": 0.0,
                "speedup": 1.0,
            }
        )
        for backend, device, precision in GPU_VARIANTS:
            label = f"{backend}-{device}-{precision}"
            if backend != "jax" and precision not in artifact.precisions:
                continue
            try:
                with open_session(artifact, backend=backend, device=device, precision=precision) as session:
                    got = session.run(feeds)
                    stats = measure(session, feeds, min_seconds=min_seconds)
                    providers = session.describe().get("providers")
            except Exception as e:  # a GPU failure of any kind is a row, not the end of the check
                rows.append({"model": name, "variant": label, "error": one_line(e)})
                continue
            diff = max(float(np.max(np.abs(got[k].astype(np.float32) - expected[k]))) for k in expected)
            rows.append(
                {
                    "model": name,
                    "variant": label,
                    "batch": batch,
                    **stats,
                    "max_abs_diff": diff,
                    "speedup": stats["items_per_s"] / base["items_per_s"],
                    **({"providers": providers} if providers else {}),
                }
            )
    return rows


def test_clip(path: Path, seconds: float = 10.0, fps: int = 25) -> None:
    """A 720p clip with texture and motion (a drifting pattern plus fixed grain), 2 s GOP."""
    from vq.media.encode import write_video

    yy, xx = np.mgrid[0:720, 0:1280].astype(np.float32)
    grain = np.random.default_rng(0).normal(0, 12, (720, 1280, 1)).astype(np.float32)

    def frames():
        for i in range(int(seconds * fps)):
            t = i / fps
            base = 128 + 60 * np.sin((xx + 40 * t) / 37.0) * np.cos((yy - 25 * t) / 23.0)
            rgb = np.stack([base, np.roll(base, 7, axis=1), 255 - base], axis=-1) + grain
            yield np.clip(rgb, 0, 255).astype(np.uint8)

    write_video(path, frames(), fps=fps, crf=23, gop=2 * fps)


def nvdec_row(work: Path, repeat: int, seconds: float = 10.0) -> dict:
    """Every frame decoded on the CPU and through NVDEC; their difference and speed."""
    from vq.media import open_video

    clip = work / "clip720.mp4"
    test_clip(clip, seconds)
    fps = 25.0  # ask for every frame: no decode can be skipped

    def decode(**kw):
        best, frames = float("inf"), None
        for _ in range(repeat):
            t0 = time.perf_counter()
            with open_video(clip, **kw) as v:
                frames = v.sample(fps=fps, fast=False)
            best = min(best, time.perf_counter() - t0)
        return best, frames

    cpu_s, cpu = decode()
    row = {
        "clip": f"{seconds:g} s 1280x720 H.264, 2 s GOP",
        "frames": len(cpu.images),
        "cpu_fps": len(cpu.images) / cpu_s,
    }
    try:
        gpu_s, gpu = decode(hw="cuda")
    except Exception as e:  # as above: reported, and the JSON still written
        return {**row, "error": one_line(e)}
    same_times = len(gpu.times) == len(cpu.times) and bool(np.allclose(gpu.times, cpu.times))
    # Frame by frame: int16 copies of two whole 720p decodes would take gigabytes.
    diff = float(
        np.mean(
            [
                np.abs(g.astype(np.int16) - c.astype(np.int16)).mean()
                for g, c in zip(gpu.images, cpu.images, strict=False)
            ]
        )
    )
    return {
        **row,
        "nvdec_fps": len(gpu.images) / gpu_s,
        "speedup": cpu_s / gpu_s,
        "nvdec_frames": len(gpu.images),
        "same_times": same_times,
        "mean_abs_diff": diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-models", action="store_true", help="NVDEC only (e.g. under taskset).")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    report = {"machine": machine_info(), "host": host()}
    print(json.dumps(report["host"], indent=1))
    report["models"] = [] if args.no_models else model_rows(args.min_seconds)
    # One line a row (the table's error column is too wide to read): the JSON has it all.
    print("shipped models: GPU variants against ORT CPU fp32 (same feeds, same process)")
    for r in report["models"]:
        if "error" in r:
            print(f"  {r['model']:14} {r['variant']:15} {r['error'][:110]}")
        else:
            print(
                f"  {r['model']:14} {r['variant']:15} batch {r['batch']}  max|diff| {r['max_abs_diff']:.2e}  "
                f"{r['items_per_s']:9.1f} items/s  x{r['speedup']:.2f}"
            )
    with tempfile.TemporaryDirectory() as tmp:
        report["nvdec"] = nvdec_row(Path(tmp), args.repeat)
    print(json.dumps(report["nvdec"], indent=1))
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
