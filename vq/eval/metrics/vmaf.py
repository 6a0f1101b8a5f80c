"""VMAF (Netflix's full-reference video quality model) through ffmpeg's libvmaf filter.

KVQ's label-free training data and `vq eval quality` score degraded clips against their
pristine source with VMAF (v0.6.1, the model built into libvmaf). The ffmpeg that ships
in the ``imageio-ffmpeg`` wheel (the ``train`` and ``eval`` extras) is built with libvmaf;
Debian's ffmpeg is not, so an ffmpeg found on ``PATH`` is only used when it has the
filter, and a missing libvmaf is one line naming the fix. Clips go to ffmpeg as raw RGB
files in a private temporary folder; both sides are converted to 4:2:0 the same way.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from vq.errors import MissingExtraError, UsageError, VqError


class VmafUnavailable(VqError):
    exit_code = 3


@functools.cache
def ffmpeg_with_vmaf() -> str:
    """Path of an ffmpeg that has the libvmaf filter (imageio-ffmpeg's first)."""
    candidates = []
    try:
        import imageio_ffmpeg

        candidates.append(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    if system := shutil.which("ffmpeg"):
        candidates.append(system)
    for exe in candidates:
        try:
            filters = subprocess.run(
                [exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if " libvmaf " in filters.stdout:
            return exe
    if not candidates:
        raise MissingExtraError("VMAF", "eval", ImportError("no ffmpeg found"))
    raise VmafUnavailable(
        f"VMAF needs an ffmpeg built with libvmaf; {', '.join(candidates)} has none "
        "(pip install 'vq[eval]' brings imageio-ffmpeg's, which has it)"
    )


# libvmaf's built-in models by the name their scores get. "vmaf_neg" is Netflix's "no
# enhancement gain" variant: plain VMAF rates an unsharp-masked copy of a clip as good as
# the clip itself or better (100 against 88 and 94 NEG on two sharpened test clips, mean over frames), so it
# cannot say whether a phone's sharpening helped the viewer or only the metric.
VMAF_MODELS = {"vmaf": "vmaf_v0.6.1", "vmaf_neg": "vmaf_v0.6.1neg"}

# The elementary features VMAF v0.6.1 fuses (its SVM's inputs, as libvmaf logs them), by
# short name: the detail-loss measure (ADM) and visual information fidelity at four
# scales, each 1 for an undamaged frame and lower for lost detail at that scale. Motion,
# the sixth input, measures the content rather than its damage and is left out. They say
# *which* detail a clip lost, where the score says only how much it mattered.
VMAF_FEATURES = {
    "adm": "integer_adm2",
    "vif0": "integer_vif_scale0",
    "vif1": "integer_vif_scale1",
    "vif2": "integer_vif_scale2",
    "vif3": "integer_vif_scale3",
}


def vmaf(distorted: np.ndarray, reference: np.ndarray, fps: float = 25.0, threads: int = 2) -> np.ndarray:
    """Per-frame VMAF (0-100) of a uint8 (T, H, W, 3) clip against its reference."""
    return vmaf_scores(distorted, reference, fps, threads)["vmaf"]


def vmaf_scores(
    distorted: np.ndarray,
    reference: np.ndarray,
    fps: float = 25.0,
    threads: int = 2,
    models: tuple[str, ...] = ("vmaf",),
    features: bool = False,
) -> dict[str, np.ndarray]:
    """Per-frame scores of each of `models` (names of `VMAF_MODELS`), in one libvmaf pass;
    with `features`, also each of `VMAF_FEATURES` (the same pass computes them)."""
    if distorted.shape != reference.shape or distorted.ndim != 4 or distorted.dtype != np.uint8:
        raise UsageError(
            f"vmaf needs two uint8 (T, H, W, 3) clips of one shape, got {distorted.shape} {reference.shape}"
        )
    unknown = [m for m in models if m not in VMAF_MODELS]
    if unknown or not models:
        raise UsageError(f"unknown VMAF model {unknown} (choose from {', '.join(VMAF_MODELS)})")
    if features and "vmaf" not in models:  # the features are logged under plain VMAF's names
        raise UsageError("VMAF's features come with the vmaf model; add it to models")
    t, h, w, _ = distorted.shape
    exe = ffmpeg_with_vmaf()
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}"]
    chosen = "|".join(f"version={VMAF_MODELS[m]}\\\\:name={m}" for m in models)
    with tempfile.TemporaryDirectory(prefix="vq-vmaf-") as tmp:
        d, r, log = Path(tmp) / "d.rgb", Path(tmp) / "r.rgb", Path(tmp) / "vmaf.json"
        d.write_bytes(np.ascontiguousarray(distorted).tobytes())
        r.write_bytes(np.ascontiguousarray(reference).tobytes())
        graph = (
            "[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];"
            f"[d][r]libvmaf=log_fmt=json:log_path={log}:n_threads={threads}:model={chosen}"
        )
        cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", *raw, "-i", str(d), *raw, "-i", str(r)]
        done = subprocess.run([*cmd, "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True)
        if done.returncode != 0 or not log.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise VqError(f"ffmpeg libvmaf failed: {last}")
        frames = json.loads(log.read_text())["frames"]
    if len(frames) != t:
        raise VqError(f"libvmaf scored {len(frames)} of {t} frames")
    out = {m: np.asarray([f["metrics"][m] for f in frames], np.float64) for m in models}
    if features:
        out.update(
            {k: np.asarray([f["metrics"][v] for f in frames], np.float64) for k, v in VMAF_FEATURES.items()}
        )
    return out


def vmaf_to_mos(score: float | np.ndarray) -> float | np.ndarray:
    """VMAF 0-100 onto the 1-5 opinion scale (linear: VMAF was fitted to such scores, and
    its 20-point bands match the five ACR categories: 80+ excellent, 60-80 good, ...)."""
    return np.clip(1.0 + 4.0 * np.asarray(score, np.float64) / 100.0, 1.0, 5.0)
