"""ONNX Runtime backend: CPU everywhere, CUDA and TensorRT execution providers on GPU hosts.

On ``device="cuda"`` the provider chain is TensorRT EP (engine + timing cache on disk)
-> CUDA EP -> CPU, so operators TensorRT cannot take still run on the GPU. Precision is
carried by the graph the card names for it (fp32, fp16 casts, int8 Q/DQ), never by
provider flags, so ORT and native TensorRT run the same numerics.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import BackendError, MissingExtraError
from vq.models import Artifact
from vq.runtimes.base import Session, writable_dir_for

log = logging.getLogger(__name__)

_DEVICE_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def tensorrt_sonames(ep_library: bytes) -> list[str]:
    """The TensorRT libraries an ORT TensorRT EP build links (``libnvinfer.so.10``, ...):
    its dynamic section names them as plain strings."""
    found = re.findall(rb"lib(?:nvinfer|nvonnxparser)\.so\.\d+", ep_library)
    return sorted({m.decode() for m in found})


@functools.cache
def tensorrt_ep_loads() -> bool:
    """Whether ORT's TensorRT EP can start here. onnxruntime-gpu lists the EP whether or not
    TensorRT is installed; without the TensorRT major version it was built against, every
    session printed a red error block and then fell back (seen on an H200 host with CUDA 13
    and no TensorRT). So: the sonames this EP build links must load, after importing the
    `tensorrt` wheel, which loads its libraries. Where the answer is wrongly no, the CUDA EP
    still runs the graph."""
    spec = importlib.util.find_spec("onnxruntime")
    roots = list(spec.submodule_search_locations or []) if spec else []
    libs = [Path(root) / "capi" / "libonnxruntime_providers_tensorrt.so" for root in roots]
    lib = next((p for p in libs if p.is_file()), None)
    if lib is None:  # the CPU wheel, or not Linux
        return False
    needed = tensorrt_sonames(lib.read_bytes())
    if importlib.util.find_spec("tensorrt") is not None:
        with contextlib.suppress(Exception):  # a broken TensorRT install: the sonames decide
            import tensorrt  # noqa: F401
    try:
        for soname in needed:
            ctypes.CDLL(soname)
    except OSError:
        return False
    return bool(needed)


def provider_chain(device: str, available: set[str], trt_cache: str | None) -> list[Any]:
    """The execution providers to ask for, in order, with their options.

    CUDA: TensorRT EP (engine and timing caches in `trt_cache`; None leaves the EP out),
    then the CUDA EP, then the CPU for the operators neither takes."""
    providers: list[Any] = []
    for name in _DEVICE_PROVIDERS[device]:
        if name not in available:
            continue
        if name == "TensorrtExecutionProvider":
            if trt_cache is None:
                continue
            cache = {"trt_engine_cache_enable": True, "trt_engine_cache_path": trt_cache}
            cache |= {"trt_timing_cache_enable": True, "trt_timing_cache_path": trt_cache}
            providers.append((name, cache))
        else:
            # By name alone, the CUDA EP included (device 0 is its default): a device_id
            # option sends ORT >= 1.26 looking for a plugin EP device first, with a warning
            # on every session that there is none before it falls back to the built-in EP.
            providers.append(name)
    return providers


def _ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise MissingExtraError("the ort backend", "cpu", e) from e
    return onnxruntime


class OrtBackend:
    name = "ort"

    def available(self) -> bool:
        return importlib.util.find_spec("onnxruntime") is not None

    def unavailable_reason(self) -> str:
        return "onnxruntime is not installed: pip install 'vq[cpu]' (or onnxruntime-gpu via 'vq[gpu]')"

    def devices(self) -> list[str]:
        providers = set(_ort().get_available_providers())
        return ["cpu", *(["cuda"] if "CUDAExecutionProvider" in providers else [])]

    def load(
        self,
        artifact: Artifact,
        device: str = "auto",
        precision: str = "fp32",
        threads: int | None = None,
        tensorrt_ep: bool = True,
        **options: Any,
    ) -> OrtSession:
        if options:
            raise BackendError(f"ort backend: unknown options {sorted(options)}")
        if device == "auto":
            device = "cuda" if "cuda" in self.devices() else "cpu"
        if device not in _DEVICE_PROVIDERS:
            raise BackendError(f"ort backend: unknown device {device!r} (cpu or cuda)")
        if device == "cuda" and "cuda" not in self.devices():
            raise BackendError(
                "ort backend: CUDA requested but this onnxruntime has no CUDAExecutionProvider "
                "(install onnxruntime-gpu via 'vq[gpu]', not onnxruntime)"
            )
        return OrtSession(artifact, device, precision, threads=threads, tensorrt_ep=tensorrt_ep)


def _warn_if_int8_saturates(artifact: Artifact) -> None:
    """An int8-cpu graph with full 8-bit weights (exported before vq held CPU weights to
    7 bits) loses accuracy on CPUs without VNNI; say so instead of running quietly."""
    from vq.hardware import int8_isa

    bits = artifact.card.export.get("int8", {}).get("cpu", {}).get("weight_bits", 8)
    isa = int8_isa()
    if bits > 7 and isa in ("avx2", "avx512"):
        log.warning(
            "model '%s': its int8-cpu graph has 8-bit weights, which saturate in this CPU's "
            "int8 kernels (%s, no VNNI); re-quantise it with `vq export int8 %s --calib DIR`",
            artifact.name,
            isa,
            artifact.root,
        )


class OrtSession(Session):
    backend_name = "ort"

    def __init__(
        self, artifact: Artifact, device: str, precision: str, threads: int | None, tensorrt_ep: bool
    ):
        super().__init__(artifact, device, precision)
        ort = _ort()
        path = artifact.onnx_path(precision, device)
        if precision == "int8" and device == "cpu":
            _warn_if_int8_saturates(artifact)

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: provider chatter is not for users
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1

        available = set(ort.get_available_providers())
        use_trt = tensorrt_ep and device == "cuda" and tensorrt_ep_loads()
        trt_cache = str(writable_dir_for(artifact, "ort-trt-cache")) if use_trt else None
        providers = provider_chain(device, available, trt_cache)
        try:
            self._session = ort.InferenceSession(os.fspath(path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types for bad graphs
            raise BackendError(f"ort could not load {path.name}: {str(e).splitlines()[0]}") from e

        # ORT drops a provider that fails to initialise (missing CUDA libraries) without
        # raising; an explicit GPU request must not quietly run on the CPU.
        self.providers = self._session.get_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in self.providers:
            raise BackendError(f"ort: CUDA provider failed to initialise (got {self.providers})")
        self._ort = ort
        names = [o.name for o in self._session.get_outputs()]
        if sorted(names) != sorted(self.output_names):
            raise BackendError(f"{path.name} outputs {names} do not match the card's {self.output_names}")

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.device == "cuda":
            return self._run_bound(feeds)
        outputs = self._session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outputs, strict=True))

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # I/O binding: inputs are copied to the GPU once, outputs are allocated there by
        # ORT and copied back in one go, so no provider copies tensors per node boundary.
        binding = self._session.io_binding()
        for name, arr in feeds.items():
            binding.bind_ortvalue_input(name, self._ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0))
        for name in self.output_names:
            binding.bind_output(name, "cuda", 0)
        self._session.run_with_iobinding(binding)
        values = binding.get_outputs()
        return {name: value.numpy() for name, value in zip(self.output_names, values, strict=True)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "providers": self.providers}

    def _close(self) -> None:
        self._session = None
