"""benchmarks/gpu.py: every GPU row is a measurement or a one-line reason, never a crash."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_gpu_variant_is_measured_against_the_cpu_or_says_why_not(gpu_check, monkeypatch):
    monkeypatch.setattr(
        gpu_check, "MODELS", [("vq-enhance-x2", {"H": 32, "W": 32}, 2), ("no-such-model", {}, 1)]
    )
    host = gpu_check.host()
    assert set(host["backends"]) == {"jax", "ort", "trt"}
    rows = gpu_check.model_rows(min_seconds=0.05)
    base, *gpu, missing = rows
    assert base["variant"] == "ort-cpu-fp32" and base["max_abs_diff"] == 0 and base["items_per_s"] > 0
    assert missing["model"] == "no-such-model" and "no model named" in missing["error"]
    # fp32 and int8 on ORT CUDA and TensorRT (the card's graphs), fp32 on JAX: each once.
    assert sorted(r["variant"] for r in gpu) == sorted(
        ["ort-cuda-fp32", "ort-cuda-int8", "trt-cuda-fp32", "trt-cuda-int8", "jax-cuda-fp32"]
    )
    by_variant = {r["variant"]: r for r in gpu}
    # Where a GPU path exists, its fp32 row is a measurement that agrees with the CPU.
    from vq.runtimes import get_backend

    must_run = ["ort-cuda-fp32"] if "cuda" in get_backend("ort").devices() else []
    must_run += ["trt-cuda-fp32"] if get_backend("trt").available() else []
    for label in must_run:
        assert "error" not in by_variant[label], by_variant[label]
    for r in gpu:
        if "error" in r:  # the runtime's own reason (no GPU, no TensorRT, ...), one line
            assert r["error"].strip()
        elif r["variant"].endswith("fp32"):
            assert r["max_abs_diff"] < 1e-2 and r["speedup"] > 0


def test_nvdec_row_decodes_every_frame_on_the_cpu_and_reports_nvdec(gpu_check, tmp_path):
    row = gpu_check.nvdec_row(tmp_path, repeat=1, seconds=0.4)
    assert row["frames"] == 10 and row["cpu_fps"] > 0
    if "error" in row:  # no NVIDIA GPU here: the decoder's own message
        assert "NVDEC" in row["error"]
    else:
        assert row["same_times"] and row["mean_abs_diff"] < 3
