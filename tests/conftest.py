"""Shared fixtures. Heavy ones (exports) are session-scoped and built once."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
SHARED_DATA = Path(os.environ.get("VQ_SHARED_DATA", REPO.parent / "shared" / "data"))
# On a GPU host JAX would take 75 % of the GPU at its first use and keep it for the whole
# session, leaving the ORT CUDA and TensorRT tests what remains.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, str(TESTS))

HAS_TRAIN = all(importlib.util.find_spec(m) for m in ("jax", "flax", "jax2onnx"))
needs_train = pytest.mark.skipif(not HAS_TRAIN, reason="needs the 'train' extra (jax, flax, jax2onnx)")


def gpu_available() -> bool:
    from vq.runtimes import get_backend

    return get_backend("trt").available()


def ort_cuda_available() -> bool:
    from vq.runtimes import get_backend

    ort = get_backend("ort")
    return ort.available() and "cuda" in ort.devices()


needs_gpu = pytest.mark.skipif(
    not gpu_available(), reason="needs an NVIDIA GPU with TensorRT and the CUDA Python bindings"
)
needs_ort_cuda = pytest.mark.skipif(
    not ort_cuda_available(), reason="needs onnxruntime-gpu with a working CUDA provider"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "images").is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (set VQ_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory) -> Path:
    from helpers import smooth_images, write_images

    folder = tmp_path_factory.mktemp("calib")
    write_images(folder, smooth_images(24, (48, 48), seed=1))
    return folder


@pytest.fixture(scope="session")
def conv_attn_artifact(tmp_path_factory, calib_dir):
    """The test conv+attention net exported with fp32, fp16 and int8 graphs."""
    if not HAS_TRAIN:
        pytest.skip("needs the 'train' extra")
    from vq.export.artifact import export_artifact
    from vq.export.calibration import image_feeds
    from vq.train.models import MODELS, create_model, model_io

    from helpers import conv_attn_def

    definition = conv_attn_def()
    with MODELS.temporary("_conv_attn", definition, extra="train"):
        io = model_io("_conv_attn")
        out = tmp_path_factory.mktemp("artifacts") / "conv-attn"

        def calibration(seed: int):
            return image_feeds([calib_dir], io.inputs[0], io.preprocessing, count=16, batch=8, seed=seed)

        artifact = export_artifact(
            create_model("_conv_attn", seed=0),
            model_name="_conv_attn",
            model_kwargs={},
            out_dir=out,
            name="conv-attn",
            task="test",
            precisions=("fp32", "fp16", "int8"),
            calibration=calibration,
        )
        yield artifact
