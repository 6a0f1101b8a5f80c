"""Flax NNX module -> ONNX through jax2onnx, keeping symbolic dimensions symbolic."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from flax import nnx

from vq.fsutil import atomic_write_bytes
from vq.models import TensorSpec

DEFAULT_OPSET = 18  # jax2onnx emits opset-18 Reduce* (axes as input); TensorRT 10/11 parse 18

# jax2onnx 0.17.1's `remove_redundant_transpose_pairs` pass drops a layout transpose in a
# ResNet block that follows a projection shortcut (NCHW BatchNorm output added to an NHWC
# tensor: ONNX Runtime refuses the graph). Without the pass the graph is correct and keeps
# NHWC<->NCHW transposes that ONNX Runtime's transpose optimiser and TensorRT remove at
# load time. Parity is still checked on every export, whatever jax2onnx does.
DISABLED_JAX2ONNX_PASSES = ("remove_redundant_transpose_pairs",)


@contextmanager
def _jax2onnx_passes_disabled(names: tuple[str, ...]) -> Iterator[list[str]]:
    from jax2onnx.converter import ir_optimizations as opt

    passes = getattr(opt, "_OPTIMIZER_PASSES", None)
    if passes is None:  # a jax2onnx without the pass table: nothing to disable
        yield []
        return
    opt._OPTIMIZER_PASSES = tuple(p for p in passes if p.name not in names)
    try:
        yield [p.name for p in passes if p.name in names]
    finally:
        opt._OPTIMIZER_PASSES = passes


def export_onnx(
    model: nnx.Module,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    path: str | Path,
    opset: int = DEFAULT_OPSET,
    name: str = "vq_model",
) -> dict[str, Any]:
    """Write `model` (called positionally with `inputs`, in order) as ONNX to `path`.

    String dims in the specs (``"B"``, ``"H"``) stay symbolic in the graph. Output names
    come from `outputs`; their symbolic dims are re-labelled to the card's expressions.
    Returns the export facts recorded in the card.
    """
    import onnx
    from jax2onnx import to_onnx

    # onnx_ir warns about every untyped shape constant; nothing a user can act on.
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)
    model.eval()
    with _jax2onnx_passes_disabled(DISABLED_JAX2ONNX_PASSES) as disabled:
        proto = to_onnx(
            model,
            [tuple(spec.shape) for spec in inputs],
            model_name=name,
            opset=opset,
            input_names=[spec.name for spec in inputs],
            output_names=[spec.name for spec in outputs],
        )
    for value, spec in zip(proto.graph.output, outputs, strict=True):
        for dim, want in zip(value.type.tensor_type.shape.dim, spec.shape, strict=False):
            if isinstance(want, str):
                dim.dim_param = want
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return {
        "opset": opset,
        "jax2onnx": version("jax2onnx"),
        "jax": version("jax"),
        "flax": version("flax"),
        "onnx": version("onnx"),
        "jax2onnx_passes_disabled": disabled,
    }
