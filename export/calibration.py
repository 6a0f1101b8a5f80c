"""Calibration inputs for int8: real images, prepared exactly as the runtime prepares them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from vq.errors import UsageError
from vq.images import IMAGE_SUFFIXES
from vq.models import TensorSpec
from vq.preprocess.normalize import to_model_input


def image_files(folders: list[str | Path]) -> list[Path]:
    files = sorted(
        p
        for f in map(Path, folders)
        if f.is_dir()
        for p in f.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise UsageError(f"no calibration images under {', '.join(map(str, folders))}")
    return files


def image_feeds(
    folders: list[str | Path],
    spec: TensorSpec,
    preprocessing: dict,
    count: int = 256,
    batch: int = 8,
    crop: int = 64,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """`count` preprocessed images in batches, for a single-image-input model.

    Fixed-size inputs get the whole image resized (antialiased bilinear, as the runtime);
    symbolic H/W inputs get random `crop` px crops, which covers the value range the
    activations see without the cost of whole frames.
    """
    files = image_files(folders)
    rng = np.random.default_rng(seed)
    fixed = all(isinstance(d, int) for d in spec.shape[1:3])
    emitted = 0
    while emitted < count:
        frames = []
        for _ in range(min(batch, count - emitted)):
            with Image.open(files[int(rng.integers(len(files)))]) as im:
                im = im.convert("RGB")
                if fixed:
                    im = im.resize((spec.shape[2], spec.shape[1]), Image.BILINEAR, reducing_gap=None)
                    frames.append(np.asarray(im))
                else:
                    arr = np.asarray(im)
                    y = int(rng.integers(max(1, arr.shape[0] - crop + 1)))
                    x = int(rng.integers(max(1, arr.shape[1] - crop + 1)))
                    frames.append(arr[y : y + crop, x : x + crop])
        if not fixed:
            h = min(f.shape[0] for f in frames)
            w = min(f.shape[1] for f in frames)
            frames = [f[:h, :w] for f in frames]
        emitted += len(frames)
        yield {spec.name: to_model_input(np.stack(frames), preprocessing)}


def sampler_feeds(
    folders: list[str | Path],
    inputs: list[TensorSpec],
    preprocessing: dict,
    count: int = 256,
    batch: int = 8,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Feeds for a generative sampler-step graph (``image``, ``x``, ``t``): real tiles of
    the graph's fixed size cut from the images, Gaussian ``x`` and the times the sampler
    visits (t = 0 only for a one-step student: the inputs it will actually see)."""
    specs = {s.name: s for s in inputs}
    side = int(preprocessing["tile"])
    steps = int(preprocessing.get("sampler", {}).get("steps", 1))
    rng = np.random.default_rng(seed)
    crops = image_feeds(
        folders,
        TensorSpec("image", "float32", ("B", "H", "W", 3)),
        preprocessing,
        count=count,
        batch=batch,
        crop=side,
        seed=seed,
    )
    for feed in crops:
        image = feed["image"]
        short_h, short_w = max(0, side - image.shape[1]), max(0, side - image.shape[2])
        if short_h or short_w:  # an image smaller than a tile: pad it, as the runtime does
            image = np.pad(image, ((0, 0), (0, short_h), (0, short_w), (0, 0)), mode="symmetric")
        n = len(image)
        x_shape = [n, *specs["x"].shape[1:]]
        yield {
            "image": image,
            "x": rng.standard_normal(x_shape, dtype=np.float32),
            "t": (rng.integers(0, steps, n) / steps).astype(np.float32),
        }
