"""Edited views for contrastive training of the copy-detection embedder.

Sources (`vq.media.sources`: images and video frames, a hash-based hold-out that `vq eval
pairs` scores) are loaded once; a training view is a random chain of 1-3 copy-disguise
edits (`vq.synth`) and, half the time, a crop to where the edits put the picture
(what the runtime's content box does when it succeeds), resized to the model's input.
Two views of one source are a positive pair; everything else in the batch and the queue
is a negative.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vq.media.sources import Source
from vq.synth import SPATIAL_FAMILIES, apply_spatial, random_edit, track_box


def make_view(
    source: np.ndarray, rng: np.random.Generator, size: int, backgrounds: list[np.ndarray], max_edits: int = 3
) -> np.ndarray:
    """One random edited view of `source`, resized to (size, size) uint8."""
    h, w = source.shape[:2]
    edits = []
    for family in rng.choice(SPATIAL_FAMILIES, size=int(rng.integers(1, max_edits + 1)), replace=False):
        bg = backgrounds[int(rng.integers(len(backgrounds)))] if family == "picture_in_picture" else None
        _, cur_size = track_box(edits, (w, h))
        edits.append(random_edit(str(family), rng, cur_size, background=bg))
    image = apply_spatial(edits, source, float(rng.uniform(0, 5)))
    if rng.random() < 0.5:  # the runtime crops to the content box when it finds it
        x0, y0, x1, y1 = track_box(edits, (w, h))[0]
        if x1 - x0 > 8 and y1 - y0 > 8:
            image = image[y0:y1, x0:x1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.BILINEAR))


def pair_batch(sources: list[Source], seed: int, step: int, rows: range, size: int) -> dict[str, np.ndarray]:
    """Two views per row (uint8), deterministic in (seed, step, row)."""
    a, b = [], []
    backgrounds = [s.image for s in sources[:64]]
    for row in rows:
        rng = np.random.default_rng((seed, step, row))
        src = sources[int(rng.integers(len(sources)))].image
        a.append(make_view(src, rng, size, backgrounds))
        b.append(make_view(src, rng, size, backgrounds))
    return {"view_a": np.stack(a), "view_b": np.stack(b)}
