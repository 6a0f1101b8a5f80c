"""Edited views for contrastive training of the copy-detection embedder.

Sources (`vq.media.sources`: images and video frames, a hash-based hold-out that `vq eval
pairs` scores) are loaded once; a training view is a random chain of 1-3 copy-disguise
edits (`vq.synth`) and, half the time, a crop to where the edits put the picture
(what the runtime's content box does when it succeeds), resized to the model's input.
Two views of one source are a positive pair; everything else in the batch and the queue
is a negative. Two things make the negatives hard on purpose:

* a share of views get a strong colour grade on top of their edits (film looks, grey,
  hue shifts: `vq.synth.pixel.ColorGrade`), so that a grade is not a reason to differ;
* with `lookalike_share`, the second row of each pair of rows is, that often, another
  moment (>= 2 s away) of the same video as the first: the same scene with a different
  action, which must not match (a fixed camera filming different people is not a copy);
* with `scene_share`, a pair of rows is, that often, a synthetic fixed-camera scene
  (`vq.synth.scenes`): one background, the same objects at other places in each row.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vq.media.sources import Source
from vq.synth import SPATIAL_FAMILIES, apply_spatial, random_edit, track_box
from vq.synth.scenes import moment, scene_objects


def make_view(
    source: np.ndarray,
    rng: np.random.Generator,
    size: int,
    backgrounds: list[np.ndarray],
    max_edits: int = 3,
    grade_share: float = 0.0,
) -> np.ndarray:
    """One random edited view of `source`, resized to (size, size) uint8."""
    h, w = source.shape[:2]
    edits = []
    for family in rng.choice(SPATIAL_FAMILIES, size=int(rng.integers(1, max_edits + 1)), replace=False):
        bg = backgrounds[int(rng.integers(len(backgrounds)))] if family == "picture_in_picture" else None
        _, cur_size = track_box(edits, (w, h))
        edits.append(random_edit(str(family), rng, cur_size, background=bg))
    image = apply_spatial(edits, source, float(rng.uniform(0, 5)))
    if grade_share and rng.random() < grade_share:
        image = random_edit("grade", rng, (image.shape[1], image.shape[0]))(np.ascontiguousarray(image), 0.0)
    if rng.random() < 0.5:  # the runtime crops to the content box when it finds it
        x0, y0, x1, y1 = track_box(edits, (w, h))[0]
        if x1 - x0 > 8 and y1 - y0 > 8:
            image = image[y0:y1, x0:x1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.BILINEAR))


def siblings_of(sources: list[Source], min_gap: float = 2.0) -> list[list[int]]:
    """For each source, the other frames of its video at least `min_gap` seconds away
    (names are "clip.mp4@12.000"; images have none)."""
    by_video: dict[str, list[tuple[int, float]]] = {}
    for i, s in enumerate(sources):
        if "@" in s.name:
            video, t = s.name.rsplit("@", 1)
            by_video.setdefault(video, []).append((i, float(t)))
    out: list[list[int]] = [[] for _ in sources]
    for frames in by_video.values():
        for i, t in frames:
            out[i] = [j for j, u in frames if abs(u - t) >= min_gap]
    return out


def pair_batch(
    sources: list[Source],
    seed: int,
    step: int,
    rows: range,
    size: int,
    *,
    siblings: list[list[int]] | None = None,
    lookalike_share: float = 0.0,
    grade_share: float = 0.0,
    scene_share: float = 0.0,
) -> dict[str, np.ndarray]:
    """Two views per row (uint8), deterministic in (seed, step, row): any process builds
    any row, so runs resume exactly and do not depend on the device count."""
    a, b = [], []
    backgrounds = [s.image for s in sources[:64]]
    for row in rows:
        rng = np.random.default_rng((seed, step, row))
        index = int(rng.integers(len(sources)))
        if lookalike_share and siblings is not None and row % 2 == 1:
            # the even row before this one drew its source first from its own generator
            anchor = int(np.random.default_rng((seed, step, row - 1)).integers(len(sources)))
            if siblings[anchor] and rng.random() < lookalike_share:
                index = siblings[anchor][int(rng.integers(len(siblings[anchor])))]
        src = sources[index].image
        pair_rng = np.random.default_rng((seed, step, row // 2, 1))  # the same for both rows
        if scene_share and pair_rng.random() < scene_share:
            background = sources[int(pair_rng.integers(len(sources)))].image
            objects = scene_objects(backgrounds, (background.shape[1], background.shape[0]), pair_rng)
            src = moment(background, objects, np.random.default_rng((seed, step, row, 2)))
        a.append(make_view(src, rng, size, backgrounds, grade_share=grade_share))
        b.append(make_view(src, rng, size, backgrounds, grade_share=grade_share))
    return {"view_a": np.stack(a), "view_b": np.stack(b)}
