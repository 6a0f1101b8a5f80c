"""Camera moves over still images: a photo becomes a short clip, as a phone pan or a
slideshow's slow zoom (the "Ken Burns" move) would film it.

A move is a crop window that travels from one rectangle of the photo to another with
eased speed; each frame is that window resampled to the clip size (Pillow's antialiased
bilinear, so a zoom-out does not alias). Windows keep the clip's aspect ratio and stay
inside the photo, so every frame is all picture. Deterministic in the rng.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class CameraMove:
    """Start and end windows (x0, y0, x1, y1) in photo pixels, and the clip's size."""

    start: tuple[float, float, float, float]
    end: tuple[float, float, float, float]
    size: tuple[int, int]  # (w, h) of the clip

    def window(self, progress: float) -> tuple[float, float, float, float]:
        """The window at `progress` in [0, 1], eased in and out (smoothstep)."""
        p = float(np.clip(progress, 0.0, 1.0))
        p = p * p * (3.0 - 2.0 * p)
        a, b = np.asarray(self.start), np.asarray(self.end)
        x0, y0, x1, y1 = (a + (b - a) * p).tolist()
        return x0, y0, x1, y1


def random_move(
    photo_size: tuple[int, int], clip_size: tuple[int, int], rng: np.random.Generator
) -> CameraMove:
    """A pan, a zoom in or a zoom out (one of them, or a mix), inside a (w, h) photo."""
    pw, ph = photo_size
    cw, ch = clip_size
    aspect = cw / ch
    # The largest window of the clip's aspect that fits in the photo.
    full_w = min(pw, ph * aspect)

    def window(scale: float) -> tuple[float, float, float, float]:
        w = full_w * scale
        h = w / aspect
        x0 = rng.uniform(0, pw - w)
        y0 = rng.uniform(0, ph - h)
        return x0, y0, x0 + w, y0 + h

    kind = rng.choice(["pan", "zoom_in", "zoom_out", "drift"])
    if kind == "pan":
        s = rng.uniform(0.55, 0.8)
        start, end = window(s), window(s)
    elif kind == "zoom_in":
        start, end = window(rng.uniform(0.85, 1.0)), window(rng.uniform(0.45, 0.65))
    elif kind == "zoom_out":
        start, end = window(rng.uniform(0.45, 0.65)), window(rng.uniform(0.85, 1.0))
    else:
        start, end = window(rng.uniform(0.6, 0.9)), window(rng.uniform(0.6, 0.9))
    return CameraMove(start, end, (cw, ch))


def move_frames(photo: np.ndarray, move: CameraMove, frames: int) -> Iterator[np.ndarray]:
    """`frames` uint8 RGB frames of the move over `photo`."""
    image = Image.fromarray(photo)
    for k in range(frames):
        box = move.window(k / max(1, frames - 1))
        yield np.asarray(image.resize(move.size, Image.BILINEAR, box=box, reducing_gap=None))
