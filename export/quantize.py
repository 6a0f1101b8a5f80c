"""Reduced-precision graphs: fp16 casts and static int8 Q/DQ.

Precision lives in the graph, not in runtime flags: TensorRT 11 removed its builder
precision flags, and a graph that carries its own casts or Q/DQ nodes runs the same
numerics on ONNX Runtime (CPU or CUDA) and TensorRT.

int8 is static and calibrated on real inputs (frames, images) with ONNX Runtime's
quantisation tools, in two flavours because the two runtimes want different graphs:

* ``cpu``: uint8 activations (asymmetric), int8 per-channel weights held to 7 bits
  (``reduce_range``). ONNX Runtime's CPU kernels fuse this Q/DQ pattern into
  QLinearConv/QLinearAdd; the symmetric form below mostly stays in float there
  (ResNet-18, 160 px, batch 32 on 2 Xeon cores: 469 frame/s U8S8 vs 126 S8S8 vs 160 fp32,
  measured 2026-11-22). The 7-bit weights are what makes one graph hold on every x86
  CPU: without VNNI, the U8S8 kernels sum two u8 x s8 products in a saturating int16
  (``vpmaddubsw``), and 2 x 255 x 127 overflows it; with |w| <= 64 the pair sum stays
  below 32767, so AVX2, AVX-512 and VNNI kernels compute the same integers. Measured on
  the shipped models under ``qemu-x86_64 -cpu Haswell`` (AVX2, no VNNI) against a VNNI
  host: 8-bit weights gave embedder cosine min 0.930 vs 0.996 and enhancer mean abs
  diff 3.5 vs 1.0 grey levels; 7-bit weights gave identical outputs on both, and no worse
  accuracy on the VNNI host (ONNX Runtime's own guidance for non-VNNI CPUs, taken for
  all CPUs because a graph does not know where it will run).
* ``gpu``: symmetric signed int8 activations and weights (zero point 0), the only form
  TensorRT's explicit quantisation accepts; ORT's CUDA provider runs it too. GPUs
  accumulate in int32, so full 8-bit weights are kept.

Every op type is quantised (not only Conv/Gemm), so Relu and residual Adds stay in int8
between convolutions instead of bouncing through float.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vq.fsutil import atomic_path

INT8_TARGETS = ("cpu", "gpu")
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def float_tail(model) -> list[str]:
    """Nodes after the last weighted op (the L2 normalisation of an embedding, an output
    clamp): they cost nothing and quantising them breaks exact properties like unit norm."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    feeds_weighted: set[str] = set()
    # Walk backwards: a node feeds a weighted op if it is one, or any consumer feeds one.
    for node in reversed(model.graph.node):
        if node.op_type in WEIGHTED_OPS or any(
            c.name in feeds_weighted for out in node.output for c in consumers.get(out, [])
        ):
            feeds_weighted.add(node.name)
    return [n.name for n in model.graph.node if n.name not in feeds_weighted]


def to_fp16(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """fp16 weights and compute, fp32 inputs/outputs (callers keep feeding float32)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
    return {"method": "onnxruntime.transformers.float16", "keep_io_types": True}


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over an iterable of feed dicts."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]):
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._it, None)
        if feed is not None:
            self.count += len(next(iter(feed.values())))  # samples, not batches
        return feed

    def rewind(self) -> None:  # ORT calls it for some calibrators; ours is one pass
        pass


def quantize_int8(
    src: str | Path,
    dst: str | Path,
    calibration: Iterable[dict[str, np.ndarray]],
    target: str = "cpu",
    per_channel: bool = True,
    method: str = "minmax",
    weight_bits: int | None = None,
    op_types: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Static int8 Q/DQ graph for `target` calibrated on `calibration` feeds (real inputs).

    The ``cpu`` graph has 7-bit weights (see the module docstring: no int16 saturation on
    CPUs without VNNI); the ``gpu`` graph keeps 8. `weight_bits` overrides that, for
    measuring what the choice does (`benchmarks/int8.py`). `op_types`: quantise only these
    ONNX ops (a model family's `int8_op_types`; None: every op).
    """
    bits = weight_bits if weight_bits is not None else (7 if target == "cpu" else 8)
    ops = None if op_types is None else sorted(op_types)
    if ops == []:
        raise ValueError("op_types is empty: name the ops to quantise, or None for every op")
    if bits not in (7, 8):
        raise ValueError(f"weight_bits must be 7 or 8, got {bits}")
    if target not in INT8_TARGETS:
        raise ValueError(f"int8 target must be one of {INT8_TARGETS}, got {target!r}")
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    reader = _Calibration(calibration)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        import onnx

        tail = float_tail(onnx.load(str(prepared)))
        with atomic_path(dst) as out:
            symmetric = target == "gpu"
            reduce_range = bits == 7
            quantize_static(
                str(prepared),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                nodes_to_exclude=tail,
                op_types_to_quantize=ops,
                reduce_range=reduce_range,
                extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
            )
    return {
        "target": target,
        "format": "QDQ",
        "activations": "int8 symmetric" if target == "gpu" else "uint8 asymmetric",
        "weights": "int8 symmetric per-channel" if per_channel else "int8 symmetric",
        "weight_bits": bits,
        "calibration_method": method,
        "calibration_samples": reader.count,
        "float_nodes": len(tail),
        "op_types": ops if ops is not None else "all",
    }


# -- FP8 ---------------------------------------------------------------------------------------
# Hopper and Ada tensor cores multiply FP8 (E4M3: 4 exponent bits, 3 mantissa, largest
# finite 448). TensorRT takes FP8 only as explicit Q/DQ in the graph (precision lives in
# the graph), so this pass writes one: every MatMul / Gemm / Conv whose second input is a
# weight gets that weight stored as FLOAT8E4M3FN behind a DequantizeLinear (a quarter of
# the file) and QuantizeLinear -> DequantizeLinear on its activation input (per-tensor
# scales), so the GPU runs the product in FP8 and everything else in the graph's own
# precision. ONNX Runtime's quantiser has a float8 mode, but in
# onnxruntime 1.32 its only calibrator for it (Distribution) fails on these graphs
# ("Attributes 'avg' and/or 'std' missing"); the pass is small enough to own.
FP8_MAX = 448.0
FP8_OPSET = 19  # QuantizeLinear / DequantizeLinear take float8 from opset 19


def _activation_amax(model, feeds: Iterable[dict[str, np.ndarray]], names: list[str]) -> dict[str, float]:
    """Largest |value| of each named tensor over the calibration feeds (ORT, CPU)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph_outputs = {o.name for o in probe.graph.output}
    for name in names:
        if name not in graph_outputs:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    amax = dict.fromkeys(names, 0.0)
    for feed in feeds:
        values = session.run(names, feed)
        for name, value in zip(names, values, strict=True):
            amax[name] = max(amax[name], float(np.max(np.abs(value))))
    return amax


def _fp8_weight(weight, tag: str, inits: list) -> tuple[str, list]:
    """A weight stored as FP8 E4M3 (a quarter of its float size) behind a DequantizeLinear."""
    import ml_dtypes
    from onnx import helper, numpy_helper

    w = numpy_helper.to_array(weight).astype(np.float32)
    scale = max(float(np.max(np.abs(w))) if w.size else 0.0, 1e-12) / FP8_MAX
    inits.append(numpy_helper.from_array((w / scale).astype(ml_dtypes.float8_e4m3fn), f"{tag}_fp8"))
    inits.append(numpy_helper.from_array(np.asarray(scale, np.float32), f"{tag}_scale"))
    dq = helper.make_node(
        "DequantizeLinear", [f"{tag}_fp8", f"{tag}_scale", "fp8_zero"], [f"{tag}_dq"], name=f"{tag}_DQ"
    )
    return f"{tag}_dq", [dq]


def quantize_fp8(
    src: str | Path,
    dst: str | Path,
    calibration: Iterable[dict[str, np.ndarray]],
    op_types: frozenset[str] = WEIGHTED_OPS,
) -> dict[str, Any]:
    """FP8 E4M3 Q/DQ graph for TensorRT on Hopper/Ada: per-tensor max calibration of the
    activations on `calibration` feeds, per-tensor weight scales."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    weights = {init.name: init for init in model.graph.initializer}
    targets = [
        n for n in model.graph.node if n.op_type in op_types and len(n.input) > 1 and n.input[1] in weights
    ]
    activations = sorted({n.input[0] for n in targets})
    amax = _activation_amax(model, calibration, activations)
    new_inits = [helper.make_tensor("fp8_zero", TensorProto.FLOAT8E4M3FN, [], [0.0])]
    before: dict[int, list] = {}  # target node index -> the Q/DQ nodes that go just before it

    def qdq(tensor: str, scale_value: float, tag: str) -> tuple[str, list]:
        scale = numpy_helper.from_array(
            np.asarray(max(scale_value, 1e-12) / FP8_MAX, np.float32), f"{tag}_scale"
        )
        new_inits.append(scale)
        q = helper.make_node(
            "QuantizeLinear", [tensor, scale.name, "fp8_zero"], [f"{tag}_q"], name=f"{tag}_Q"
        )
        dq = helper.make_node(
            "DequantizeLinear", [f"{tag}_q", scale.name, "fp8_zero"], [f"{tag}_dq"], name=f"{tag}_DQ"
        )
        return f"{tag}_dq", [q, dq]

    act_dq: dict[str, str] = {}
    for i, node in enumerate(targets):
        inserted = []
        a = node.input[0]
        if a not in act_dq:
            act_dq[a], nodes = qdq(a, amax[a], f"fp8_act{len(act_dq)}")
            inserted += nodes
        w_dq, nodes = _fp8_weight(weights[node.input[1]], f"fp8_w{i}", new_inits)
        inserted += nodes
        node.input[0], node.input[1] = act_dq[a], w_dq
        before[i] = inserted
    used = {name for n in model.graph.node for name in n.input}
    kept = [init for init in model.graph.initializer if init.name in used]  # float weights now stored as FP8
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    # Each Q/DQ pair goes just before the node that first uses it: the node list stays
    # topologically sorted (an activation's producer comes before its first consumer).
    position = {id(node): i for i, node in enumerate(targets)}
    ordered = []
    for node in model.graph.node:
        ordered.extend(before.get(position.get(id(node), -1), []))
        ordered.append(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    model.graph.initializer.extend(new_inits)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < FP8_OPSET:
            opset.version = FP8_OPSET
    onnx.checker.check_model(model)
    with atomic_path(dst) as out:
        onnx.save(model, str(out))
    return {
        "format": "QDQ",
        "type": "FLOAT8E4M3FN",
        "scales": "per-tensor (activations: max over calibration; weights: max |w|)",
        "weights": "stored as FLOAT8E4M3FN behind DequantizeLinear",
        "quantized_ops": len(targets),
        "op_types": sorted(op_types),
        "opset": FP8_OPSET,
    }
