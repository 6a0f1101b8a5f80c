"""Write a complete model artifact (see `vq.models`) from a Flax model.

Everything is written into a temporary folder beside the destination and renamed into
place at the end, so a failed export (parity above tolerance, a crash) never leaves a
half-written model where a runtime would find it.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from vq.errors import RegistryError, UsageError
from vq.export.onnx_export import DEFAULT_OPSET, export_onnx
from vq.export.parity import check_parity, ort_session, random_feeds
from vq.export.quantize import WEIGHTED_OPS, quantize_fp8, quantize_int8, to_fp16
from vq.fsutil import DIR_MODE
from vq.models import Artifact, ModelCard, file_entry, write_card
from vq.train.checkpoints import save_params
from vq.train.models import ModelIO, model_def, model_io

Feeds = Iterable[dict[str, np.ndarray]]


def compare_graphs(reference: Path, candidate: Path, feeds: Feeds, output: str) -> dict[str, float]:
    """How far `candidate` (fp16/int8) drifts from `reference` (fp32) on `feeds`."""
    ref_s, cand_s = ort_session(reference), ort_session(candidate)
    max_abs, sq_err, sq_ref, cosines = 0.0, 0.0, 0.0, []
    for feed in feeds:
        r = ref_s.run([output], feed)[0].astype(np.float64)
        c = cand_s.run([output], feed)[0].astype(np.float64)
        max_abs = max(max_abs, float(np.max(np.abs(r - c))))
        sq_err += float(np.sum((r - c) ** 2))
        sq_ref += float(np.sum(r**2))
        rf, cf = r.reshape(len(r), -1), c.reshape(len(c), -1)
        denom = np.linalg.norm(rf, axis=1) * np.linalg.norm(cf, axis=1) + 1e-12
        cosines.extend((np.sum(rf * cf, axis=1) / denom).tolist())
    return {
        "max_abs_error": max_abs,
        "relative_rms_error": (sq_err / max(sq_ref, 1e-30)) ** 0.5,
        "min_cosine": float(np.min(cosines)),
        "mean_cosine": float(np.mean(cosines)),
    }


def export_artifact(
    model: nnx.Module,
    *,
    model_name: str,
    model_kwargs: dict[str, Any],
    out_dir: str | Path,
    name: str,
    task: str,
    version_tag: str = "1",
    description: str = "",
    precisions: tuple[str, ...] = ("fp32",),
    calibration: Callable[[int], Feeds] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    trt_profile: dict[str, list[int]] | None = None,
    command: str | None = None,
    include_params: bool = True,
    force: bool = False,
    temperature: float | None = None,
) -> Artifact:
    """Export `model` (built from registry `model_name` with `model_kwargs`) to `out_dir`.

    `calibration(seed)` returns feed batches of real inputs; seed 0 calibrates int8 and
    seed 1 draws the batches its drift from fp32 is measured on. Raises `ParityError` if
    ONNX and JAX disagree beyond 1e-4.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise UsageError(f"{out_dir} exists; pass --force to replace it")
    if {"int8", "fp8"} & set(precisions) and calibration is None:
        raise UsageError("int8 and fp8 export need calibration data (--calib DIR)")
    io: ModelIO = model_io(model_name, **model_kwargs)
    if temperature is not None:  # a generative model's default sampler noise temperature
        if "sampler" not in io.preprocessing:
            raise UsageError(f"--temperature is for generative (sampler) models; {model_name} has no sampler")
        if not 0.0 <= temperature <= 2.0:
            raise UsageError(f"--temperature must be in [0, 2] (got {temperature:g})")
        io.preprocessing["sampler"] = {**io.preprocessing["sampler"], "temperature": float(temperature)}
    with _staged(out_dir) as tmp:
        model.eval()
        if include_params:
            save_params(model, tmp / "params.msgpack")
        facts = export_onnx(model, io.inputs, io.outputs, tmp / "model.onnx", opset=opset, name=name)
        facts["onnxruntime"] = version("onnxruntime")
        if command:
            facts["command"] = command
        facts["parity"] = check_parity(
            model, tmp / "model.onnx", io.inputs, io.outputs, make_feeds=io.parity_feeds
        )
        if trt_profile:
            facts["profile"] = trt_profile
        files = {"fp32": file_entry(tmp, "model.onnx")}
        first_output = io.outputs[0].name

        if "fp16" in precisions:
            facts["fp16"] = to_fp16(tmp / "model.onnx", tmp / "model.fp16.onnx")
            rng = np.random.default_rng(1)
            probe = [random_feeds(io.inputs, rng, 2) for _ in range(4)]
            facts["fp16"]["vs_fp32"] = compare_graphs(
                tmp / "model.onnx", tmp / "model.fp16.onnx", probe, first_output
            )
            files["fp16"] = file_entry(tmp, "model.fp16.onnx")
        if "int8" in precisions:
            assert calibration is not None
            int8_ops = model_def(model_name).int8_op_types
            facts["int8"] = write_int8_graphs(tmp, calibration, first_output, files, op_types=int8_ops)
        if "fp8" in precisions:
            assert calibration is not None
            fp8_ops = model_def(model_name).fp8_op_types or WEIGHTED_OPS
            facts["fp8"] = quantize_fp8(tmp / "model.onnx", tmp / "model.fp8.onnx", calibration(0), fp8_ops)
            # ONNX Runtime's CPU kernels run the Q/DQ pairs as written, so the FP8
            # rounding error is measured here even without a GPU that computes in FP8.
            facts["fp8"]["vs_fp32"] = compare_graphs(
                tmp / "model.onnx", tmp / "model.fp8.onnx", list(calibration(1)), first_output
            )
            files["fp8"] = file_entry(tmp, "model.fp8.onnx")
        card = ModelCard(
            name=name,
            task=task,
            version=version_tag,
            description=description,
            inputs=io.inputs,
            outputs=io.outputs,
            files=files,
            layout="NHWC",
            preprocessing=io.preprocessing,
            # Without params the card still names the architecture (for baselines and
            # rebuilding from a checkpoint); the jax backend then says what is missing.
            flax={
                "model": model_name,
                "kwargs": model_kwargs,
                **(
                    {"params": "params.msgpack", "sha256": file_entry(tmp, "params.msgpack")["sha256"]}
                    if include_params
                    else {}
                ),
            },
            export=facts,
            training=training or {},
            metrics=metrics or {},
        )
        write_card(tmp, card)
    return Artifact(out_dir)


def write_int8_graphs(
    root: Path,
    calibration: Callable[[int], Feeds],
    output: str,
    files: dict[str, Any],
    fp32: str = "model.onnx",
    op_types: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Quantise `root`/model.onnx for both int8 targets (only `op_types` where the model
    family names them); adds their `files` entries and returns the card's ``export.int8``
    facts (drift from fp32 on other draws, and where that drift was measured: int8 kernels
    differ by CPU, see `vq.export.quantize`)."""
    from vq.hardware import cpu_model, int8_isa

    calib = list(calibration(0))  # one pass over the data serves both targets
    held_out = list(calibration(1))  # other draws, to measure the drift on
    facts: dict[str, Any] = {}
    for target in ("cpu", "gpu"):
        rel = f"model.int8-{target}.onnx"
        info = quantize_int8(root / fp32, root / rel, calib, target=target, op_types=op_types)
        info["vs_fp32"] = compare_graphs(root / fp32, root / rel, held_out, output)
        info["measured_on"] = {
            "cpu": cpu_model(),
            "int8_isa": int8_isa(),
            "onnxruntime": version("onnxruntime"),
        }
        facts[target] = info
        files[f"int8-{target}"] = file_entry(root, rel)
    return facts


def requantize_artifact(
    artifact: Artifact, calibration: Callable[[int], Feeds], command: str = ""
) -> Artifact:
    """Rewrite the int8 graphs of an existing artifact from its fp32 graph (new
    calibration data, or a quantiser fix), keeping everything else. The folder is copied,
    changed and swapped in, so a failure leaves the old artifact as it was."""
    artifact.verify()
    with _staged(artifact.root) as tmp:
        shutil.copytree(artifact.root, tmp, dirs_exist_ok=True)
        os.chmod(tmp, DIR_MODE)
        # A copy: a failed run must leave the loaded artifact's card as it was, too.
        card = copy.deepcopy(artifact.card)
        files = {k: v for k, v in card.files.items() if not k.startswith("int8")}
        int8_ops = _int8_op_types(card)
        int8 = write_int8_graphs(
            tmp, calibration, card.outputs[0].name, files, fp32=files["fp32"]["path"], op_types=int8_ops
        )
        if command:
            int8["command"] = command
        card.files = files
        card.export = {**card.export, "int8": int8}
        write_card(tmp, card)
    return Artifact(artifact.root)


def _int8_op_types(card: ModelCard) -> frozenset[str] | None:
    """The ops an artifact's int8 graphs quantise: its family's `int8_op_types`, or, where
    the family is not installed here, what its card recorded last time (None: every op)."""
    family = (card.flax or {}).get("model")
    try:
        return model_def(family).int8_op_types if family else None
    except RegistryError:
        recorded = (card.export.get("int8") or {}).get("cpu", {}).get("op_types")
        if recorded == "all":
            return None
        if isinstance(recorded, list) and recorded:
            return frozenset(recorded)
        raise UsageError(
            f"{card.name}: its model family {family!r} is not installed here, and its card "
            "does not say which ops its int8 graphs quantise"
        ) from None


@contextmanager
def _staged(out_dir: Path) -> Iterator[Path]:
    """A temporary folder beside `out_dir`, swapped in for it when the block succeeds and
    removed when it fails: a runtime never finds a half-written artifact."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    os.chmod(tmp, DIR_MODE)
    try:
        yield tmp
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename `tmp` to `out_dir`; an existing `out_dir` is moved aside first, then removed."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
