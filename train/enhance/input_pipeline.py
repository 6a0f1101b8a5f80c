"""Training batches for super-resolution from HR/LR image pairs (`vq.media.sources`).

Training batches are random aligned crops with flips and 90-degree rotations, drawn
from a generator seeded by (seed, step, row): any process can build any row of any
step, which is what makes runs resumable and device-count independent.
"""

from __future__ import annotations

import numpy as np

from vq.errors import UsageError
from vq.media.sources import Pair, bicubic_upscale, load_pairs

__all__ = ["Pair", "bicubic_upscale", "load_pairs", "random_crop_batch"]


def random_crop_batch(
    pairs: list[Pair], seed: int, step: int, rows: range, patch: int, scale: int
) -> dict[str, np.ndarray]:
    """Aligned LR/HR crops (LR `patch` px) for `rows` of global batch `step`, in [0, 1]."""
    lrs, hrs = [], []
    for row in rows:
        rng = np.random.default_rng((seed, step, row))
        pair = pairs[rng.integers(len(pairs))]
        h, w = pair.lr.shape[:2]
        if h < patch or w < patch:
            raise UsageError(f"{pair.name} is smaller than the {patch}px training patch")
        y, x = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
        lr = pair.lr[y : y + patch, x : x + patch]
        hr = pair.hr[y * scale : (y + patch) * scale, x * scale : (x + patch) * scale]
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        lr, hr = np.rot90(lr, k), np.rot90(hr, k)
        if flip:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        lrs.append(lr)
        hrs.append(hr)
    return {"lr": np.stack(lrs).astype(np.float32) / 255.0, "hr": np.stack(hrs).astype(np.float32) / 255.0}
