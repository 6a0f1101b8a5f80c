"""Prebuild the TensorRT engine of an artifact (what `vq export engine` runs).

Building is the slow part of loading on TensorRT (seconds to minutes per GPU type), so
deployments build once per GPU + TensorRT version and ship the engine beside the model;
`vq.runtimes.trt` then finds it by the same key and skips the build.
"""

from __future__ import annotations

from pathlib import Path

from vq.models import Artifact
from vq.runtimes.base import writable_dir_for
from vq.runtimes.trt import Profile, build_engine, engine_file_name, resolve_profile


def build_engine_for(
    artifact: Artifact,
    precision: str = "fp32",
    profile: Profile | None = None,
    workspace_gib: float = 4.0,
    rebuild: bool = False,
) -> Path:
    full = resolve_profile(artifact.card.inputs, profile, artifact.card.export)
    onnx_path = artifact.onnx_path(precision, "cuda")
    sha = artifact.graph_entry(precision, "cuda")[1]["sha256"]
    path = writable_dir_for(artifact, "engines") / engine_file_name(sha, precision, full)
    if rebuild or not path.is_file():
        build_engine(onnx_path, path, artifact.card.inputs, full, workspace_gib)
    return path
