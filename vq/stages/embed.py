"""Embedding stage: frames -> L2-normalised vectors with a copy-detection model.

The runtime preprocessing the seed describes, in order: crop to the content box
(decided once per video, see `vq.preprocess.content_box`), resize with Pillow's
antialiased filter to the model's input size, normalise per the model card, run in
batches on any backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import UsageError
from vq.match.thresholds import Thresholds
from vq.models import Artifact
from vq.preprocess.content_box import ContentBox, detect_content_box
from vq.preprocess.normalize import to_model_input
from vq.preprocess.resize import resize
from vq.stages.base import Stage

DECODE_MAX_SIDE = 640  # frames are decoded no larger than this: content box and crop work on it


class Embedder(Stage):
    """Load an embedding model once; embed frames, images or whole videos."""

    task = "embed"

    def __init__(
        self,
        model: str | Path | Artifact | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        batch: int = 32,
        crop: bool = True,
    ):
        super().__init__(model, backend, precision)
        spec = self.artifact.card.inputs[0]
        if not (isinstance(spec.shape[1], int) and isinstance(spec.shape[2], int)):
            raise UsageError(f"model '{self.artifact.name}' needs a fixed input size")
        self.size = (int(spec.shape[2]), int(spec.shape[1]))
        self.batch, self.crop = batch, crop
        self._input = spec.name
        self._output = self.artifact.card.outputs[0].name
        self.dim = int(self.artifact.card.outputs[0].shape[-1])
        # What a library records to refuse vectors from another model: the fp32 graph's hash.
        self.fingerprint = self.artifact.card.files["fp32"]["sha256"]
        self.matching = Thresholds.from_card(self.artifact.card)  # what a library for it starts with

    def embed_frames(self, frames: np.ndarray, box: ContentBox | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3) -> float32 (N, D); `box` crops every frame first."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise UsageError(f"expected uint8 (N, H, W, 3) frames, got {frames.dtype} {frames.shape}")
        if box is not None:
            frames = frames[:, box.y0 : box.y1, box.x0 : box.x1]
        out = np.empty((len(frames), self.dim), np.float32)
        prep = self.artifact.card.preprocessing
        for start in range(0, len(frames), self.batch):
            chunk = resize(np.ascontiguousarray(frames[start : start + self.batch]), self.size, "bilinear")
            out[start : start + len(chunk)] = self.run({self._input: to_model_input(chunk, prep)})[
                self._output
            ]
        return out

    def embed_frames_list(self, images: list[np.ndarray]) -> np.ndarray:
        """Images of any sizes, no cropping: resized straight to the model input."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        batch = np.stack([resize(im, self.size, "bilinear") for im in images])
        return self.embed_frames(batch)

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """Still images of any sizes; each gets its own content box when cropping."""
        vectors = []
        for image in images:
            frames = image[None]
            box = detect_content_box(frames) if self.crop else None
            vectors.append(self.embed_frames(frames, box))
        return np.concatenate(vectors) if vectors else np.zeros((0, self.dim), np.float32)

    def embed_video(self, path: str | Path, fps: float = 1.0) -> dict[str, Any]:
        """Vectors for frames sampled at `fps`, cropped to the video's content box."""
        from vq.media import open_video

        with open_video(path) as video:
            frames = video.sample(fps=fps, max_side=DECODE_MAX_SIDE)
        if len(frames) == 0:
            return {"vectors": np.zeros((0, self.dim), np.float32), "times": np.zeros(0), "box": None}
        box = detect_content_box(frames.images) if self.crop else None
        return {
            "vectors": self.embed_frames(frames.images, box),
            "times": frames.times,
            "box": box,
            "stats": frames.stats,
        }
