"""Image pairs for super-resolution training and evaluation.

A data folder holds high-resolution images; its low-resolution twin is the sibling
folder ``<name>_lr_x<scale>`` with the same file names (the layout of the SelfExSR
benchmark sets in ``../shared/data/images``, made with MATLAB's bicubic ``imresize``).
Where no twin exists, LR images are made here with Pillow's antialiased bicubic.

Training batches are random aligned crops with flips and 90-degree rotations, drawn
from a generator seeded by (seed, step, row): any process can build any row of any
step, which is what makes runs resumable and device-count independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vq.errors import UsageError
from vq.images import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Pair:
    name: str
    hr: np.ndarray  # uint8 (H*s, W*s, 3)
    lr: np.ndarray  # uint8 (H, W, 3)


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_pairs(folders: list[str | Path], scale: int) -> list[Pair]:
    """HR/LR pairs from `folders`, HR cropped to a multiple of `scale`."""
    pairs: list[Pair] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise UsageError(f"data folder {folder} does not exist")
        twin = folder.with_name(f"{folder.name}_lr_x{scale}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"no images in {folder}")
        for path in files:
            hr = _read_rgb(path)
            h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
            hr = hr[:h, :w]
            if (twin / path.name).is_file():
                lr = _read_rgb(twin / path.name)
                if lr.shape[:2] != (h // scale, w // scale):
                    raise UsageError(f"{twin / path.name}: size {lr.shape[:2]} is not HR/{scale}")
            else:
                lr = np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))
            pairs.append(Pair(f"{folder.name}/{path.name}", hr, lr))
    return pairs


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


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The classical baseline: Pillow bicubic (a = -0.5, as MATLAB) to `scale` x size."""
    h, w = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.BICUBIC))
