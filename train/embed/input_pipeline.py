"""Source frames and edited views for contrastive training of the copy-detection embedder.

Sources are images (folders, files) and video frames (sampled at `video_fps`). A stable
hash of each source's name puts `holdout` of them aside: they are never trained on and
are what `vq eval pairs` scores. A training view is a random chain of 1-3 copy-disguise
edits (`vq.synth`) and, half the time, a crop to where the edits put the picture
(what the runtime's content box does when it succeeds), resized to the model's input.
Two views of one source are a positive pair; everything else in the batch and the queue
is a negative.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vq.errors import UsageError
from vq.images import IMAGE_SUFFIXES
from vq.media import VIDEO_SUFFIXES
from vq.synth import SPATIAL_FAMILIES, apply_spatial, random_edit, track_box

MAX_SIDE = 320  # sources are kept at most this large; views are made from them


@dataclass(frozen=True)
class Source:
    name: str  # "folder/file.png" or "video.mp4@12.000"
    image: np.ndarray


def _held_out(name: str, fraction: float) -> bool:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def _shrink(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return image
    s = MAX_SIDE / max(h, w)
    return np.asarray(
        Image.fromarray(image).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    )


def list_sources(paths: list[str | Path], video_fps: float = 1.0) -> list[tuple[str, Path, float | None]]:
    """(name, file, time) for every image and every sampled video frame under `paths`."""
    from vq.media import probe

    items: list[tuple[str, Path, float | None]] = []
    for root in map(Path, paths):
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            suffix = f.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                items.append((f"{f.parent.name}/{f.name}", f, None))
            elif suffix in VIDEO_SUFFIXES:
                try:
                    duration = probe(f).duration or 0.0
                except Exception:  # unreadable clips are skipped, as the runtime would
                    continue
                items.extend(
                    (f"{f.name}@{t:.3f}", f, float(t)) for t in np.arange(0.5, duration, 1 / video_fps)
                )
    if not items:
        raise UsageError(f"no images or videos under {', '.join(map(str, paths))}")
    return items


def load_sources(
    paths: list[str | Path], holdout: float, split: str, video_fps: float = 1.0, drop_flat: bool = True
) -> list[Source]:
    """The `split` ("train" or "holdout") part of the sources, decoded and shrunk."""
    from vq.images import read_rgb
    from vq.media import open_video

    chosen = [
        it for it in list_sources(paths, video_fps) if _held_out(it[0], holdout) == (split == "holdout")
    ]
    by_video: dict[Path, list[tuple[str, float]]] = {}
    sources: list[Source] = []
    for name, path, t in chosen:
        if t is None:
            sources.append(Source(name, _shrink(read_rgb(path))))
        else:
            by_video.setdefault(path, []).append((name, t))
    for path, entries in by_video.items():
        with open_video(path) as video:
            frames = video.sample(times=[t for _, t in entries], max_side=MAX_SIDE)
        for (name, _), image in zip(entries, frames.images, strict=False):
            sources.append(Source(name, image))
    if drop_flat:  # fades and black frames teach nothing and match everything
        sources = [s for s in sources if s.image.std() > 12]
    if not sources:
        raise UsageError(f"no {split} sources (holdout fraction {holdout})")
    return sources


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
