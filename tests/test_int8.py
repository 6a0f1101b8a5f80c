"""int8 graphs hold their accuracy on every x86 CPU class (AVX2, AVX-512, VNNI).

The shipped int8-cpu graphs have 7-bit weights so that ONNX Runtime's U8S8 kernels cannot
saturate on CPUs without VNNI (see `vq.export.quantize`). The accuracy tests below run on
whatever CPU runs the suite; where `qemu-x86_64` (Debian's qemu-user) is installed, the
cross-CPU test also runs the graphs on an emulated Haswell (AVX2, no VNNI) and requires
the very same outputs as the host: integer arithmetic without saturation is exact.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vq.images import read_rgb
from vq.stages.embed import Embedder
from vq.stages.enhance import Enhancer

from conftest import TESTS


def held_out_images(shared_data: Path) -> list[np.ndarray]:
    """Images no shipped model trained or calibrated on: the photos (none of them is in
    any training or calibration set) and Set5 (never used for int8 calibration)."""
    folders = [shared_data / "images" / "photos", shared_data / "images" / "set5"]
    return [read_rgb(p) for f in folders for p in sorted(f.glob("*.png"))]


def test_int8_embedder_keeps_direction_on_held_out_images(shared_data):
    images = held_out_images(shared_data)
    with (
        Embedder(backend="ort-cpu", crop=False) as fp32,
        Embedder(backend="ort-cpu", precision="int8", crop=False) as int8,
    ):
        a, b = fp32.embed_frames_list(images), int8.embed_frames_list(images)
    cosine = np.sum(a * b, axis=1)  # both are unit vectors
    assert len(cosine) == 31
    assert cosine.min() >= 0.99, (cosine.min(), cosine.mean())


def test_int8_enhancer_within_two_grey_levels_on_held_out_images(shared_data):
    lr = [read_rgb(p) for p in sorted((shared_data / "images" / "set5_lr_x2").glob("*.png"))]
    with (
        Enhancer("vq-enhance-x2", backend="ort-cpu") as fp32,
        Enhancer("vq-enhance-x2", backend="ort-cpu", precision="int8") as int8,
    ):
        diffs = [np.abs(fp32.enhance(x).astype(int) - int8.enhance(x).astype(int)).mean() for x in lr]
    assert max(diffs) < 2, diffs


def test_shipped_cpu_graphs_record_their_weight_bits():
    from vq.models import load_model

    for name in ("vq-embed", "vq-embed-luma", "vq-enhance-x2"):
        facts = load_model(name).card.export["int8"]
        assert facts["cpu"]["weight_bits"] == 7 and facts["gpu"]["weight_bits"] == 8
        assert facts["cpu"]["measured_on"]["int8_isa"]


# -- the same outputs on an AVX2-only CPU -------------------------------------------------

PROBE = """
import sys, numpy as np
from vq.stages.embed import Embedder
from vq.stages.enhance import Enhancer
rng = np.random.default_rng(7)
images = rng.integers(0, 256, (6, 128, 128, 3), dtype=np.uint8)
with Embedder(backend="ort-cpu", precision="int8", crop=False) as e:
    vectors = e.embed_frames(images)
with Enhancer("vq-enhance-x2", backend="ort-cpu", precision="int8") as s:
    enhanced = s.enhance(images[0, :48, :48])
np.savez(sys.argv[1], vectors=vectors, enhanced=enhanced)
"""


def run_probe(out: Path, emulate: str | None) -> dict[str, np.ndarray]:
    cmd = [sys.executable, "-c", PROBE, str(out)]
    if emulate:
        cmd = ["qemu-x86_64", "-cpu", emulate, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=TESTS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.skipif(
    shutil.which("qemu-x86_64") is None or platform.machine() != "x86_64",
    reason="needs an x86-64 host with qemu-user (qemu-x86_64) to emulate an AVX2-only CPU",
)
def test_int8_outputs_are_identical_on_an_avx2_cpu(tmp_path):
    host = run_probe(tmp_path / "host.npz", None)
    haswell = run_probe(tmp_path / "haswell.npz", "Haswell")
    diff = {k: float(np.max(np.abs(host[k].astype(np.float64) - haswell[k]))) for k in host}
    assert diff["vectors"] <= 1e-5 and diff["enhanced"] == 0, json.dumps(diff)
