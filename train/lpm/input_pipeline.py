"""Training crops for LPM: high-quality images, their clean and degraded low-quality twins.

Every data image is split by a hash of its name (`vq.media.sources`' rule): the
`holdout` share is never read by training. Each training image gets its clean LR twin
and `degraded` chain versions (`vq.synth.pairs`), made once when the task starts, seeded
by the image's name so every stage and every resumed run sees the same pairs. A batch row
is a pure function of (seed, step, row): an image, a variant (clean with probability
`clean_share`), an aligned crop, a rotation and a flip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vq.errors import UsageError
from vq.media.sources import held_out, load_pairs
from vq.synth.pairs import LqVariant, lq_variants


@dataclass(frozen=True)
class PairSource:
    name: str
    hr: np.ndarray  # uint8 (H, W, 3), H and W multiples of the scale
    variants: list[LqVariant]  # [clean, degraded...]


def _name_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def load_pair_sources(
    folders: list[str], scale: int, holdout: float, split: str, degraded: int, min_side: int
) -> list[PairSource]:
    """The `split` side of the images in `folders` with their LQ variants."""
    pairs = [
        p
        for p in load_pairs(list(folders), scale)
        if held_out(p.name, holdout) == (split == "holdout") and min(p.lr.shape[:2]) >= min_side
    ]
    if not pairs:
        raise UsageError(f"no {split} images of at least {min_side} px (LR) in {', '.join(folders)}")
    return [
        PairSource(
            p.name,
            p.hr,
            lq_variants(
                p.hr,
                scale,
                np.random.default_rng(_name_seed(p.name)),
                degraded if split == "train" else 0,
                p.lr,
            ),
        )
        for p in pairs
    ]


def random_crops(
    sources: list[PairSource],
    seed: int,
    step: int,
    rows: range,
    tile: int,
    scale: int,
    clean_share: float,
) -> dict[str, np.ndarray]:
    """Aligned crops: ``lq`` (B, tile, tile, 3) and ``hq`` (B, tile*scale, tile*scale, 3), in [0, 1]."""
    lqs, hqs = [], []
    for row in rows:
        rng = np.random.default_rng((seed, step, row))
        src = sources[int(rng.integers(len(sources)))]
        degraded = src.variants[1:]
        use_clean = not degraded or rng.random() < clean_share
        lr = (src.variants[0] if use_clean else degraded[int(rng.integers(len(degraded)))]).image
        h, w = lr.shape[:2]
        y, x = int(rng.integers(h - tile + 1)), int(rng.integers(w - tile + 1))
        lq = lr[y : y + tile, x : x + tile]
        hq = src.hr[y * scale : (y + tile) * scale, x * scale : (x + tile) * scale]
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        lq, hq = np.rot90(lq, k), np.rot90(hq, k)
        if flip:
            lq, hq = lq[:, ::-1], hq[:, ::-1]
        lqs.append(lq)
        hqs.append(hq)
    return {"lq": np.stack(lqs).astype(np.float32) / 255.0, "hq": np.stack(hqs).astype(np.float32) / 255.0}


def facts(sources: list[PairSource], folders: list[str]) -> dict:
    return {
        "folders": [str(Path(f)) for f in folders],
        "images": len(sources),
        "degraded_examples": [v.chain for s in sources[:3] for v in s.variants[1:]],
    }
