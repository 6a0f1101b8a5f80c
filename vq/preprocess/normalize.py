"""Turn uint8 frames into the float32 tensor a model card asks for."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_model_input(frames: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """uint8 RGB ``(..., H, W, 3)`` (a frame batch, a clip batch) -> float32
    ``(x * scale - mean) / std`` per the card's preprocessing.

    The affine map is folded into one multiply-add per channel, so a batch of frames
    costs two vectorised passes, whatever the card says.
    """
    if frames.dtype != np.uint8 or frames.ndim < 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 (..., H, W, 3) RGB frames, got {frames.dtype} {frames.shape}")
    scale = float(preprocessing.get("scale", 1 / 255))
    mean = np.asarray(preprocessing.get("mean", (0.0, 0.0, 0.0)), dtype=np.float32)
    std = np.asarray(preprocessing.get("std", (1.0, 1.0, 1.0)), dtype=np.float32)
    gain = (scale / std).astype(np.float32)
    offset = (-mean / std).astype(np.float32)
    out = frames.astype(np.float32)
    out *= gain
    out += offset
    return out
