"""vq.runtimes: ORT and JAX sessions on an exported conv+attention net; selection; errors."""

from __future__ import annotations

import numpy as np
import pytest

from vq.errors import BackendError, UsageError
from vq.runtimes import get_backend, open_session, resolve_backend

from conftest import needs_gpu, needs_ort_cuda, needs_train


def feeds(batch=4, seed=0):
    return {"image": np.random.default_rng(seed).random((batch, 32, 32, 3), dtype=np.float32)}


@needs_train
def test_ort_matches_jax_reference(conv_attn_artifact):
    with (
        open_session(conv_attn_artifact, backend="ort-cpu") as ort_s,
        open_session(conv_attn_artifact, backend="jax") as jax_s,
    ):
        for batch in (1, 5):
            x = feeds(batch, seed=batch)
            a, b = ort_s.run(x)["logits"], jax_s.run(x)["logits"]
            assert a.shape == b.shape == (batch, 8)
            assert np.max(np.abs(a - b)) <= 1e-4
        assert ort_s.last_run_s is not None and ort_s.last_run_s > 0
        assert ort_s.describe()["providers"] == ["CPUExecutionProvider"]
        assert jax_s.describe()["backend"] == "jax"


@needs_train
@pytest.mark.parametrize("precision, cosine", [("int8", 0.98), ("fp16", 0.999)])
def test_reduced_precision_graphs_stay_close(conv_attn_artifact, precision, cosine):
    x = feeds(16, seed=3)
    with (
        open_session(conv_attn_artifact, "ort-cpu", precision="fp32") as ref,
        open_session(conv_attn_artifact, "ort-cpu", precision=precision) as low,
    ):
        a, b = ref.run(x)["logits"], low.run(x)["logits"]
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() >= cosine


@needs_train
def test_feeds_are_checked_against_the_card(conv_attn_artifact):
    with open_session(conv_attn_artifact, backend="ort-cpu") as s:
        with pytest.raises(BackendError, match="missing"):
            s.run({})
        with pytest.raises(BackendError, match="unexpected"):
            s.run({**feeds(), "extra": np.zeros(1, np.float32)})
        with pytest.raises(BackendError, match="must be float32, got float64"):
            s.run({"image": np.zeros((1, 32, 32, 3))})
        with pytest.raises(BackendError, match="axis 1 must be 32, got 31"):
            s.run({"image": np.zeros((1, 31, 32, 3), np.float32)})
        with pytest.raises(BackendError, match="must have shape"):
            s.run({"image": np.zeros((32, 32, 3), np.float32)})
        with pytest.raises(BackendError, match="empty axis"):
            s.run({"image": np.zeros((0, 32, 32, 3), np.float32)})
        with pytest.raises(BackendError, match="numpy array"):
            s.run({"image": [[0.0]]})
    with pytest.raises(BackendError, match="closed"):
        s.run(feeds())


@needs_train
def test_symbolic_dims_must_agree_across_inputs(tmp_path):
    """A two-input model: the shared symbolic batch must have one size."""
    from flax import nnx

    from vq.export.artifact import export_artifact
    from vq.models import TensorSpec
    from vq.train.models import MODELS, ModelDef, ModelIO

    class Pair(nnx.Module):
        def __init__(self, *, rngs):
            self.lin = nnx.Linear(4, 2, rngs=rngs)

        def __call__(self, a, b):
            return self.lin(a + b)

    definition = ModelDef(
        build=lambda *, rngs: Pair(rngs=rngs),
        io=lambda: ModelIO(
            [TensorSpec("a", "float32", ("B", 4)), TensorSpec("b", "float32", ("B", 4))],
            [TensorSpec("y", "float32", ("B", 2))],
        ),
    )
    with MODELS.temporary("_pair", definition):
        art = export_artifact(
            definition.build(rngs=nnx.Rngs(0)),
            model_name="_pair",
            model_kwargs={},
            out_dir=tmp_path / "pair",
            name="pair",
            task="test",
        )
        with open_session(art, "ort-cpu") as s:
            out = s.run({"a": np.ones((3, 4), np.float32), "b": np.ones((3, 4), np.float32)})
            assert out["y"].shape == (3, 2)
            with pytest.raises(BackendError, match="symbolic dim 'B' is 3 elsewhere but 2"):
                s.run({"a": np.ones((3, 4), np.float32), "b": np.ones((2, 4), np.float32)})
        with open_session(art, "jax") as s:
            ones = np.ones((2, 4), np.float32)
            assert s.run({"a": ones, "b": ones})["y"].shape == (2, 2)


def test_auto_prefers_gpu_backends_only_when_present():
    order = resolve_backend("auto")
    trt, ort = get_backend("trt"), get_backend("ort")
    expected = (
        ([("trt", "cuda")] if trt.available() else [])
        + ([("ort", "cuda")] if "cuda" in ort.devices() else [])
        + [("ort", "cpu")]
    )
    assert order == expected
    assert resolve_backend("ort-cuda") == [("ort", "cuda")]
    with pytest.raises(UsageError, match="unknown backend 'tpu'"):
        resolve_backend("tpu")


@needs_train
def test_explicit_backends_never_fall_back(conv_attn_artifact):
    if not get_backend("trt").available():
        with pytest.raises(BackendError, match=r"backend 'trt' is unavailable here: .*vq\[gpu\]"):
            open_session(conv_attn_artifact, backend="trt")
    if "cuda" not in get_backend("ort").devices():
        with pytest.raises(BackendError, match="CUDA requested"):
            open_session(conv_attn_artifact, backend="ort-cuda")
    with pytest.raises(BackendError, match="fp32 reference"):
        open_session(conv_attn_artifact, backend="jax", precision="int8")
    with pytest.raises(BackendError, match="unknown options"):
        open_session(conv_attn_artifact, backend="ort", bogus=1)


@needs_train
def test_auto_loads_something_that_runs(conv_attn_artifact):
    with open_session(conv_attn_artifact) as s:
        assert s.run(feeds(2))["logits"].shape == (2, 8)


@needs_gpu
def test_tensorrt_matches_ort_and_caches_engines(conv_attn_artifact):
    x = feeds(8)
    with open_session(conv_attn_artifact, "ort-cpu") as ref:
        expected = ref.run(x)["logits"]
    with open_session(conv_attn_artifact, "trt", precision="fp32") as s:
        got = s.run(x)["logits"]
        engine = s.describe()["engine"]
    assert np.max(np.abs(got - expected)) < 1e-3
    import os

    mtime = os.path.getmtime(engine)
    with open_session(conv_attn_artifact, "trt", precision="fp32") as s:  # reuses the engine
        assert s.describe()["engine"] == engine
    assert os.path.getmtime(engine) == mtime
    for precision, tol in (("fp16", 0.05), ("int8", 0.2)):
        with open_session(conv_attn_artifact, "trt", precision=precision) as s:
            assert np.max(np.abs(s.run(x)["logits"] - expected)) < tol


@needs_ort_cuda
def test_ort_cuda_matches_cpu(conv_attn_artifact):
    x = feeds(4)
    with (
        open_session(conv_attn_artifact, "ort-cpu") as cpu,
        open_session(conv_attn_artifact, "ort-cuda") as gpu,
    ):
        assert "CUDAExecutionProvider" in gpu.describe()["providers"]
        assert np.max(np.abs(cpu.run(x)["logits"] - gpu.run(x)["logits"])) < 1e-3


def test_the_cuda_chain_asks_for_tensorrt_only_where_it_loads():
    # onnxruntime-gpu lists the TensorRT EP with or without TensorRT installed; asking for it
    # without libnvinfer prints an error block per session (seen on an H200 host).
    import ctypes.util
    import importlib.util

    from vq.runtimes.ort import provider_chain, tensorrt_ep_loads, tensorrt_sonames

    def names(chain):
        return [p[0] if isinstance(p, tuple) else p for p in chain]

    trt, cuda, cpu = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
    gpu_wheel = {trt, cuda, cpu}
    chain = provider_chain("cuda", gpu_wheel, "/cache")
    assert names(chain) == [trt, cuda, cpu]
    assert chain[0][1]["trt_engine_cache_path"] == chain[0][1]["trt_timing_cache_path"] == "/cache"
    assert chain[1] == cuda  # no device_id option: it sends ORT looking for a plugin EP
    assert names(provider_chain("cuda", gpu_wheel, None)) == [cuda, cpu]
    assert names(provider_chain("cpu", gpu_wheel, "/cache")) == [cpu]
    assert names(provider_chain("cuda", {cpu}, "/cache")) == [cpu]  # the CPU wheel
    # The EP build's own TensorRT sonames decide (the plugin library is not one of them).
    dynstr = b"\0libcublas.so.13\0libnvinfer.so.10\0libnvinfer_plugin.so.10\0libnvonnxparser.so.10\0"
    assert tensorrt_sonames(dynstr) == ["libnvinfer.so.10", "libnvonnxparser.so.10"]
    assert tensorrt_sonames(b"libcudart.so.13") == []
    if importlib.util.find_spec("tensorrt") is None and ctypes.util.find_library("nvinfer") is None:
        assert tensorrt_ep_loads() is False
