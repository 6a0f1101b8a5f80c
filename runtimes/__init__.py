"""Inference backends behind one contract, chosen at load time.

>>> from vq.models import load_model
>>> from vq.runtimes import open_session
>>> with open_session(load_model("vq-enhance-x2"), backend="auto") as s:  # doctest: +SKIP
...     out = s.run({"image": x})

Backends: ``trt`` (native TensorRT, GPU), ``ort`` (ONNX Runtime; TensorRT EP -> CUDA EP
-> CPU), ``jax`` (rebuilds the Flax model; the numerical reference). ``auto`` picks
trt > ort on CUDA > ort on CPU by what is installed and present. An explicitly named
backend that cannot load fails with one line; it never falls back silently.
"""

from __future__ import annotations

import logging
from typing import Any

from vq.errors import BackendError, UsageError, VqError, one_line
from vq.models import Artifact
from vq.registry import Registry
from vq.runtimes.base import Backend, Session

__all__ = [
    "BACKENDS",
    "BACKEND_CHOICES",
    "Backend",
    "Session",
    "backend_status",
    "get_backend",
    "open_session",
    "resolve_backend",
]

log = logging.getLogger(__name__)

BACKENDS = Registry("backend")
BACKENDS.register(
    "trt", "vq.runtimes.trt:TensorRTBackend", extra="gpu", summary="native TensorRT engines (NVIDIA GPU)"
)
BACKENDS.register(
    "ort", "vq.runtimes.ort:OrtBackend", extra="cpu", summary="ONNX Runtime: TensorRT EP -> CUDA EP -> CPU"
)
BACKENDS.register(
    "jax", "vq.runtimes.jax:JaxBackend", extra="train", summary="Flax model rebuilt from params (reference)"
)

# What `--backend` accepts: a registry name, or ort pinned to a device.
BACKEND_CHOICES = ("auto", "trt", "ort", "ort-cuda", "ort-cpu", "jax")


def get_backend(name: str) -> Backend:
    return BACKENDS.get(name)()


def resolve_backend(backend: str = "auto", device: str = "auto") -> list[tuple[str, str]]:
    """The (backend, device) pairs to try, in order, for a `--backend` value."""
    if backend.startswith("ort-"):
        backend, device = "ort", backend.removeprefix("ort-")
    if backend != "auto":
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r} (choose from {', '.join(BACKEND_CHOICES)})")
        return [(backend, device)]
    candidates: list[tuple[str, str]] = []
    trt = get_backend("trt")
    if trt.available():
        candidates.append(("trt", "cuda"))
    ort = get_backend("ort")
    if ort.available():
        if "cuda" in ort.devices():
            candidates.append(("ort", "cuda"))
        candidates.append(("ort", "cpu"))
    if not candidates:
        raise BackendError("no inference backend is installed: pip install 'vq[cpu]' (or 'vq[gpu]')")
    return candidates


def open_session(
    artifact: Artifact, backend: str = "auto", device: str = "auto", precision: str = "fp32", **options: Any
) -> Session:
    """Load `artifact` on the chosen backend.

    With ``backend="auto"`` a candidate that fails to load is logged and the next one is
    tried; a named backend either loads or raises `BackendError` naming the reason.
    """
    candidates = resolve_backend(backend, device)
    errors: list[str] = []
    for name, dev in candidates:
        impl = get_backend(name)
        if len(candidates) == 1 and not impl.available():
            raise BackendError(f"backend '{name}' is unavailable here: {impl.unavailable_reason()}")
        try:
            return impl.load(artifact, device=dev, precision=precision, **options)
        except VqError as e:
            if len(candidates) == 1:
                raise
            log.warning("backend %s on %s failed, trying the next: %s", name, dev, e)
            errors.append(f"{name}/{dev}: {e}")
    raise BackendError("no backend could load the model: " + "; ".join(errors))


def backend_status() -> list[dict[str, Any]]:
    """One row per registered backend: available or why not (imports light modules only)."""
    rows = []
    for name in BACKENDS.names():
        entry = BACKENDS.entry(name)
        try:
            impl = get_backend(name)
            ok = impl.available()
            reason = "" if ok else impl.unavailable_reason()
            devices = impl.devices() if ok and hasattr(impl, "devices") else []
        except Exception as e:  # a half-installed runtime is a row saying so, not a crash
            ok, reason, devices = False, one_line(e), []
        rows.append(
            {
                "name": name,
                "available": ok,
                "devices": devices,
                "reason": reason,
                "extra": entry.extra,
                "summary": entry.summary,
            }
        )
    return rows
