"""Does the ONNX graph compute what the Flax model computes? Measured, not assumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from vq.errors import VqError
from vq.models import TensorSpec

FP32_TOLERANCE = 1e-4


class ParityError(VqError):
    exit_code = 4


def random_feeds(
    inputs: list[TensorSpec], rng: np.random.Generator, batch: int, dims: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Inputs of the specs' shapes: `batch` for ``B``, `dims` or a random 16..48 otherwise."""
    sizes = {"B": batch, **(dims or {})}
    feeds = {}
    for spec in inputs:
        shape = []
        for d in spec.shape:
            if isinstance(d, str):
                sizes.setdefault(d, int(rng.integers(16, 49)))
                d = sizes[d]
            shape.append(d)
        feeds[spec.name] = rng.random(shape, dtype=np.float32)
    return feeds


def ort_session(path: str | Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_parity(
    model: nnx.Module,
    onnx_path: str | Path,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    trials: int = 3,
    batch_sizes: tuple[int, ...] = (1, 3),
    seed: int = 0,
    tolerance: float | None = FP32_TOLERANCE,
    make_feeds: Any = None,
) -> dict[str, Any]:
    """Max |ONNX Runtime - JAX| over fresh random inputs at several batch sizes
    (`make_feeds(rng, batch)` where the model gives them; uniform noise otherwise).

    Raises `ParityError` above `tolerance` (pass None to only measure).
    """
    import jax

    model.eval()
    graphdef, state = nnx.split(model)
    apply = jax.jit(lambda s, *xs: nnx.merge(graphdef, s)(*xs))
    session = ort_session(onnx_path)
    names = [o.name for o in outputs]
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(trials):
        for batch in batch_sizes:
            feeds = make_feeds(rng, batch) if make_feeds else random_feeds(inputs, rng, batch)
            ref = apply(state, *(feeds[s.name] for s in inputs))
            ref = ref if isinstance(ref, tuple | list) else (ref,)
            got = session.run(names, feeds)
            for r, g in zip(ref, got, strict=True):
                r = np.asarray(r)
                if r.shape != g.shape:
                    raise ParityError(f"{Path(onnx_path).name}: output shape {g.shape} != JAX {r.shape}")
                worst = max(worst, float(np.max(np.abs(r - g))))
    if tolerance is not None and not worst <= tolerance:
        raise ParityError(f"{Path(onnx_path).name}: ONNX differs from JAX by {worst:.3g} > {tolerance:g}")
    return {
        "max_abs_error": worst,
        "trials": trials,
        "batch_sizes": list(batch_sizes),
        "reference": "jax-cpu",
        "runtime": "onnxruntime-cpu",
    }
