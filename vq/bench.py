"""Backend benchmark harness: one artifact, several (backend, device, precision) variants.

Every variant runs in the same process on the same inputs, and the table reports each
throughput as a ratio to the first variant (the baseline), because on shared machines
absolute times drift while ratios measured side by side hold.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from vq.errors import VqError
from vq.hardware import cpu_model, int8_isa
from vq.models import Artifact
from vq.runtimes import get_backend, open_session


@dataclass(frozen=True)
class Variant:
    backend: str
    device: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.backend}-{self.device}-{self.precision}"


def machine_info() -> dict[str, Any]:
    """Where a benchmark ran: CPU model, cores, and the versions that matter."""
    versions = {}
    for pkg in ("onnxruntime", "onnxruntime-gpu", "tensorrt", "jax", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return {
        "cpu": cpu_model(),
        "int8_isa": int8_isa(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }


def default_variants(artifact: Artifact) -> list[Variant]:
    """What can run here: jax (if params and JAX), ORT fp32/int8, CUDA and TensorRT if present."""
    variants: list[Variant] = []
    precisions = artifact.precisions
    jax = get_backend("jax")
    if jax.available() and "params" in (artifact.card.flax or {}):
        variants.append(Variant("jax", "cpu", "fp32"))
    ort = get_backend("ort")
    if ort.available():
        devices = ort.devices()
        for device in devices:
            # Every graph the artifact has; one ONNX Runtime cannot run here becomes a row
            # saying why (fp16 and fp8 on CPU run as written, through casts and Q/DQ).
            for p in ("fp32", "int8", "fp16", "fp8"):
                if p in precisions:
                    variants.append(Variant("ort", device, p))
    trt = get_backend("trt")
    if trt.available():
        variants.extend(Variant("trt", "cuda", p) for p in ("fp32", "fp16", "int8", "fp8") if p in precisions)
    return variants


def make_feeds(artifact: Artifact, batch: int, dims: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {"B": batch, **dims}
    feeds = {}
    for spec in artifact.card.inputs:
        missing = [d for d in spec.shape if isinstance(d, str) and d not in sizes]
        if missing:
            raise VqError(f"give a size for symbolic dim(s) {missing} (--dims NAME=SIZE)")
        shape = [sizes[d] if isinstance(d, str) else d for d in spec.shape]
        feeds[spec.name] = rng.random(shape, dtype=np.float32).astype(spec.dtype)
    return feeds


def measure(
    session: Any, feeds: dict[str, np.ndarray], min_iters: int = 10, min_seconds: float = 1.0, warmup: int = 2
) -> dict[str, float]:
    """Latency percentiles over at least `min_iters` runs and `min_seconds` of runs."""
    for _ in range(warmup):
        session.run(feeds)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - t0)
    lat = np.asarray(times)
    batch = len(next(iter(feeds.values())))
    return {
        "iters": len(times),
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "mean_ms": float(lat.mean() * 1e3),
        "items_per_s": float(batch / lat.mean()),
    }


def bench_backends(
    artifact: Artifact,
    variants: list[Variant],
    batches: list[int],
    dims: dict[str, int] | None = None,
    threads: int | None = None,
    min_iters: int = 10,
    min_seconds: float = 1.0,
) -> list[dict[str, Any]]:
    """Rows of {variant, batch, p50/p99, items/s, speedup vs the first variant}."""
    rows: list[dict[str, Any]] = []
    base: dict[int, float] = {}
    for variant in variants:
        options = {"threads": threads} if threads and variant.backend == "ort" else {}
        try:
            session = open_session(
                artifact,
                backend=variant.backend,
                device=variant.device,
                precision=variant.precision,
                **options,
            )
        except VqError as e:
            rows.append({**asdict(variant), "label": variant.label, "error": str(e)})
            continue
        with session:
            for batch in batches:
                stats = measure(session, make_feeds(artifact, batch, dims or {}), min_iters, min_seconds)
                base.setdefault(batch, stats["items_per_s"])
                rows.append(
                    {
                        **asdict(variant),
                        "label": variant.label,
                        "batch": batch,
                        **stats,
                        "speedup": stats["items_per_s"] / base[batch],
                    }
                )
    return rows
