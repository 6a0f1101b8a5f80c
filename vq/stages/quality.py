"""Quality stage: score uint8 clips on the 1-5 scale with a `kvq` model on any backend.

A model sees windows of `frames` consecutive frames as fragments (native-resolution
mini-patches at fixed, centred positions: `vq.preprocess.fragments`), so a score never
depends on a random draw or on the frame size the video happens to have. The model also
returns each frame's KL divergence from the window (its key-frame statistic); the stage
reports the frames it attended to.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vq.errors import UsageError
from vq.models import Artifact
from vq.preprocess.fragments import fragments
from vq.preprocess.normalize import to_model_input
from vq.stages.base import Stage


class QualityScorer(Stage):
    """Load a quality model once; `score_windows(windows)` per batch of clips."""

    task = "kvq"

    def __init__(
        self,
        model: str | Path | Artifact | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        batch: int = 8,
    ):
        super().__init__(model, backend, precision)
        prep = self.artifact.card.preprocessing
        self.frames = int(prep["frames"])
        self.keyframes = int(prep.get("keyframes", 4))
        self.grid, self.patch = int(prep["fragments"]["grid"]), int(prep["fragments"]["patch"])
        self.score_range = tuple(prep.get("score_range", (1.0, 5.0)))
        self.batch = batch

    def score_windows(self, windows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """N uint8 (frames, H, W, 3) windows (one array, or a list of any frame sizes) ->
        (scores (N,), key-frame indices (N, keyframes))."""
        for w in windows:
            if w.dtype != np.uint8 or w.ndim != 4 or w.shape[0] != self.frames or w.shape[-1] != 3:
                raise UsageError(
                    f"a quality window must be uint8 ({self.frames}, H, W, 3), got {w.dtype} {w.shape}"
                )
        frags = np.stack([fragments(w, self.grid, self.patch) for w in windows])
        x = to_model_input(frags, self.artifact.card.preprocessing)
        out = self.run_batched({"clip": x}, self.batch)
        kl = out["frame_kl"]
        # Key frames: largest KL first, ties to the earlier frame (the model's own rule).
        order = np.argsort(-kl, axis=1, kind="stable")[:, : self.keyframes]
        return out["score"].astype(np.float64), order
