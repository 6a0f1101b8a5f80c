"""Native TensorRT backend (10.x and 11.x).

Builds a strongly typed engine from the artifact's ONNX graph. Precision is whatever the
graph says: fp32, fp16 casts, or int8 Q/DQ nodes. TensorRT 11 removed the builder
precision flags, and 10.x strong typing accepts the same graphs, so one build path
serves both. The engine is serialized beside the artifact (or in the user cache when
the artifact folder is read-only), keyed by ONNX sha256, TensorRT version, GPU and
optimisation profile, with a timing cache per GPU + TensorRT version to speed rebuilds.

Inference uses name-based I/O tensors and `execute_async_v3` on one CUDA stream, with
device buffers from the CUDA Python bindings that grow as batches grow.

`tensorrt` and `cuda` are imported only inside functions, so listing backends or
importing `vq.runtimes` costs nothing on machines without them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import BackendError, MissingExtraError
from vq.fsutil import atomic_write_bytes
from vq.models import Artifact, TensorSpec
from vq.runtimes.base import Session, cache_dir, writable_dir_for

DEFAULT_BATCH = (1, 8, 32)  # min / opt / max of the optimisation profile for dim "B"
Profile = dict[str, tuple[int, int, int]]


# -- lazy imports ----------------------------------------------------------------------


def _trt():
    try:
        import tensorrt
    except ImportError as e:
        raise MissingExtraError("the trt backend", "gpu", e) from e
    return tensorrt


def _cudart():
    """The CUDA runtime bindings (cuda-python 12.x+ layout first, then the older one)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime  # cuda-python < 12.6
        except ImportError as e:
            raise MissingExtraError("the trt backend (CUDA Python bindings)", "gpu", e) from e
    return runtime


def _check(result: Any) -> Any:
    """Unwrap a cuda-python `(err, *values)` tuple, raising on a CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(getattr(err, "value", err)) != 0:
        raise BackendError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else tuple(values)


def gpu_name_and_capability(device: int = 0) -> tuple[str, str]:
    cudart = _cudart()
    props = _check(cudart.cudaGetDeviceProperties(device))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return name.strip("\x00 "), f"{props.major}{props.minor}"


def cuda_device_count() -> int:
    try:
        return int(_check(_cudart().cudaGetDeviceCount()))
    except Exception:
        return 0


# -- backend -----------------------------------------------------------------------------


class TensorRTBackend:
    name = "trt"

    def available(self) -> bool:
        if importlib.util.find_spec("tensorrt") is None:
            return False
        if importlib.util.find_spec("cuda") is None:
            return False
        return cuda_device_count() > 0

    def unavailable_reason(self) -> str:
        if importlib.util.find_spec("tensorrt") is None:
            return "tensorrt is not installed: pip install 'vq[gpu]'"
        if importlib.util.find_spec("cuda") is None:
            return "the CUDA Python bindings are not installed: pip install 'vq[gpu]'"
        return "no CUDA GPU is visible"

    def devices(self) -> list[str]:
        return ["cuda"]

    def load(
        self,
        artifact: Artifact,
        device: str = "auto",
        precision: str = "fp32",
        profile: Profile | None = None,
        workspace_gib: float = 4.0,
        **options: Any,
    ) -> TensorRTSession:
        if options:
            raise BackendError(f"trt backend: unknown options {sorted(options)}")
        if device not in ("auto", "cuda"):
            raise BackendError(f"trt backend runs on cuda only, not {device!r}")
        if not self.available():
            raise BackendError(f"trt backend unavailable: {self.unavailable_reason()}")
        if precision == "fp8":
            gpu, cc = gpu_name_and_capability()
            if int(cc) < 89:  # FP8 tensor cores: Ada (sm89) and Hopper (sm90) onwards
                raise BackendError(f"fp8 needs an Ada or Hopper GPU (sm89+); {gpu} is sm{cc}")
        onnx_path = artifact.onnx_path(precision, "cuda")
        full_profile = resolve_profile(artifact.card.inputs, profile, artifact.card.export)
        engine_dir = writable_dir_for(artifact, "engines")
        sha = artifact.graph_entry(precision, "cuda")[1]["sha256"]
        engine_path = engine_dir / engine_file_name(sha, precision, full_profile)
        if not engine_path.is_file():
            build_engine(onnx_path, engine_path, artifact.card.inputs, full_profile, workspace_gib)
        return TensorRTSession(artifact, precision, engine_path)


# -- engine build --------------------------------------------------------------------------


def resolve_profile(
    inputs: list[TensorSpec], given: Profile | None, export_facts: dict[str, Any] | None = None
) -> Profile:
    """min/opt/max for every symbolic dim: given > card's `export.profile` > batch default."""
    card_profile = {k: tuple(v) for k, v in (export_facts or {}).get("profile", {}).items()}
    merged: Profile = {"B": DEFAULT_BATCH, **card_profile, **(given or {})}
    symbols = {d for t in inputs for d in t.shape if isinstance(d, str)}
    missing = sorted(symbols - merged.keys())
    if missing:
        raise BackendError(
            f"trt needs a min:opt:max range for symbolic dim(s) {missing}; pass --profile NAME=MIN:OPT:MAX"
        )
    for name, (lo, opt, hi) in merged.items():
        if not 0 < lo <= opt <= hi:
            raise BackendError(f"profile for '{name}' must satisfy 0 < min <= opt <= max, got {lo, opt, hi}")
    return {k: merged[k] for k in sorted(symbols)}


def engine_file_name(onnx_sha256: str, precision: str, profile: Profile) -> str:
    trt = _trt()
    gpu, cc = gpu_name_and_capability()
    gpu_slug = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-").lower()
    prof = hashlib.sha256(json.dumps(profile, sort_keys=True).encode()).hexdigest()[:8]
    return f"{onnx_sha256[:16]}-{precision}-trt{trt.__version__}-{gpu_slug}-sm{cc}-{prof}.engine"


def _shapes(spec: TensorSpec, profile: Profile, which: int) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else profile[d][which] for d in spec.shape)


def build_engine(
    onnx_path: Path, engine_path: Path, inputs: list[TensorSpec], profile: Profile, workspace_gib: float = 4.0
) -> Path:
    """Parse ONNX, build a strongly typed engine over `profile`, write it atomically."""
    trt = _trt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if major < 11 and strongly_typed is not None:
        flags = 1 << int(strongly_typed)  # 11.x is always strongly typed
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BackendError(f"TensorRT could not parse {Path(onnx_path).name}: {'; '.join(errors)[:500]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    opt_profile = builder.create_optimization_profile()
    for spec in inputs:
        opt_profile.set_shape(spec.name, *(_shapes(spec, profile, i) for i in range(3)))
    config.add_optimization_profile(opt_profile)

    gpu, cc = gpu_name_and_capability()
    timing_path = cache_dir() / "trt-timing" / f"trt{trt.__version__}-sm{cc}.cache"
    timing_bytes = timing_path.read_bytes() if timing_path.is_file() else b""
    timing_cache = config.create_timing_cache(timing_bytes)
    config.set_timing_cache(timing_cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine for {Path(onnx_path).name} on {gpu}")
    atomic_write_bytes(engine_path, bytes(serialized))
    atomic_write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    return engine_path


# -- session ---------------------------------------------------------------------------------


class TensorRTSession(Session):
    backend_name = "trt"

    def __init__(self, artifact: Artifact, precision: str, engine_path: Path):
        super().__init__(artifact, "cuda", precision)
        trt = _trt()
        self._cudart = _cudart()
        self.engine_path = engine_path
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            # A stale or foreign engine: remove it so the next load rebuilds.
            engine_path.unlink(missing_ok=True)
            raise BackendError(f"TensorRT could not deserialize {engine_path.name}; removed it, retry")
        self._context = self._engine.create_execution_context()
        self._stream = _check(self._cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._input_names = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in names}

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self._cudart.cudaFree(ptr))
            ptr = int(_check(self._cudart.cudaMalloc(max(nbytes, 1))))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self._cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in self._input_names:
            arr = np.ascontiguousarray(feeds[name], dtype=self._dtypes[name])
            if not self._context.set_input_shape(name, arr.shape):
                raise BackendError(f"trt: shape {arr.shape} for '{name}' is outside the engine profile")
            ptr = self._buffer(name, arr.nbytes)
            _check(cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, h2d, self._stream))
            self._context.set_tensor_address(name, ptr)
        outputs: dict[str, np.ndarray] = {}
        for name in self.output_names:
            shape = tuple(self._context.get_tensor_shape(name))
            out = np.empty(shape, dtype=self._dtypes[name])
            outputs[name] = out
            self._context.set_tensor_address(name, self._buffer(name, out.nbytes))
        if not self._context.execute_async_v3(int(self._stream)):
            raise BackendError("trt: execute_async_v3 failed")
        for name, out in outputs.items():
            ptr, _ = self._buffers[name]
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, ptr, out.nbytes, d2h, self._stream))
        _check(cudart.cudaStreamSynchronize(self._stream))
        return {n: (o.astype(np.float32) if o.dtype == np.float16 else o) for n, o in outputs.items()}

    def describe(self) -> dict[str, Any]:
        trt = _trt()
        gpu, cc = gpu_name_and_capability()
        return {
            **super().describe(),
            "tensorrt": trt.__version__,
            "gpu": gpu,
            "sm": cc,
            "engine": str(self.engine_path),
        }

    def _close(self) -> None:
        for ptr, _ in self._buffers.values():
            self._cudart.cudaFree(ptr)
        self._buffers.clear()
        if getattr(self, "_stream", None) is not None:
            self._cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        self._context = None
        self._engine = None
