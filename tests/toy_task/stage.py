"""Toy runtime stage: uint8 clips + gains -> scores, in batches."""

from __future__ import annotations

import numpy as np

from vq.stages.base import Stage


class ToyStage(Stage):
    task = "toy"

    def score(self, clips: np.ndarray, gains: np.ndarray, batch: int = 4) -> np.ndarray:
        feeds = {"clip": clips.astype(np.float32) / 255.0, "gain": gains.astype(np.float32)}
        return self.run_batched(feeds, batch)["score"]
