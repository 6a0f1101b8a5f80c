"""Baseline frame descriptors the learned embedding is measured against.

* PDQ: Facebook's perceptual hash (256 bits; Hamming similarity), the industry's
  near-duplicate reference (`pdqhash`, in `vq[eval]`); `PdqFrames` runs it through the
  copy-detection pipeline as if it were an embedding;
* a 16x16 grey thumbnail, zero-mean and unit-norm: the simplest pixel fingerprint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from vq.errors import MissingExtraError
from vq.match.thresholds import Thresholds


def pdq_descriptor(images: list[np.ndarray]) -> np.ndarray:
    try:
        import pdqhash
    except ImportError as e:
        raise MissingExtraError("the PDQ baseline", "eval", e) from e
    return np.stack([pdqhash.compute(np.ascontiguousarray(im))[0].astype(np.float32) for im in images])


def pdq_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1.0 - np.mean(a != b, axis=1)  # 1 - Hamming distance / 256


class PdqFrames:
    """PDQ hashes as frame vectors for the copy-detection pipeline: bits mapped to ±1/16,
    so that inner product = 1 - 2 * Hamming / 256 and faiss search ranks by Hamming."""

    name = fingerprint = "pdq"
    dim = 256

    def __init__(self, bits: int = 31):
        # A frame match within `bits` of 256 (31 is PDQ's reference operating point), as
        # the cosine of the ±1/16 vectors.
        cosine = 1.0 - 2.0 * bits / 256
        self.matching = Thresholds(frame=cosine, min_score=cosine)

    def embed_frames(self, frames: np.ndarray, box: Any = None) -> np.ndarray:
        if box is not None:
            frames = frames[:, box.y0 : box.y1, box.x0 : box.x1]
        if len(frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        bits = pdq_descriptor(list(frames))
        return (bits * 2.0 - 1.0) / 16.0


def thumbnail_descriptor(images: list[np.ndarray]) -> np.ndarray:
    """16x16 grey thumbnail, zero-mean and unit-norm: the simplest pixel fingerprint."""
    out = []
    for im in images:
        t = np.asarray(Image.fromarray(im).convert("L").resize((16, 16), Image.BOX), np.float32).ravel()
        t -= t.mean()
        out.append(t / (np.linalg.norm(t) + 1e-6))
    return np.stack(out)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)
