"""The embedding job (`vq embed`): frame vectors of images and videos into one .npz file."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import VqError
from vq.images import read_rgb
from vq.media import VIDEO_SUFFIXES
from vq.stages.embed import Embedder


@dataclass
class Embedded:
    """One input's vectors (`times` NaN for still images) and its JSON-able record."""

    path: Path
    vectors: np.ndarray
    times: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


def embed_files(paths: Iterable[Path], embedder: Embedder, fps: float = 1.0) -> Iterator[Embedded]:
    """Vectors per input: one per image, `fps` per second of video. A bad input yields an
    error record with no vectors and the job goes on."""
    empty = np.zeros((0, embedder.dim), np.float32)
    for path in paths:
        record: dict[str, Any] = {"path": str(path)}
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                result = embedder.embed_video(path, fps=fps)
                vectors, times = result["vectors"], result["times"]
                record["content_box"] = result["box"].to_json() if result["box"] else None
            else:
                vectors, times = embedder.embed_images([read_rgb(path)]), np.array([np.nan])
            record.update(status="ok", vectors=len(vectors))
        except VqError as e:
            vectors, times = empty, np.zeros(0)
            record.update(status="error", error=str(e))
        yield Embedded(path, vectors, times, record)


def vectors_npz(results: list[Embedded], embedder: Embedder) -> bytes:
    """The .npz file: vectors, the path and time of each, and the model that made them."""
    buf = io.BytesIO()
    np.savez(
        buf,
        vectors=np.concatenate([r.vectors for r in results]) if results else np.zeros((0, 0), np.float32),
        paths=np.array([str(r.path) for r in results for _ in range(len(r.vectors))]),
        times=np.concatenate([r.times for r in results]) if results else np.zeros(0),
        model=np.array(embedder.artifact.name),
        model_sha256=np.array(embedder.fingerprint),
    )
    return buf.getvalue()
