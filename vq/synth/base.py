"""The `Edit` contract and the small helpers every family of synthetic edits shares.

An edit is a pure function of its parameters: spatial edits transform one frame
(`edit(image, t)`) and say where the source picture lands (`map_box`), which is the
ground truth the content-box detector is scored on; temporal edits (`vq.synth.timeline`)
re-time the video instead. Per-frame randomness depends only on (seed, time), so a set
rebuilt from the same seed is identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFont

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), in output pixels

WORDS = (
    "wow",
    "666",
    "lol",
    "first",
    "nice",
    "haha",
    "replay",
    "omg",
    "gg",
    "cool",
    "up!",
    "love it",
    "again",
    "legend",
    "no way",
    "2x speed",
    "same",
    "hello",
    "+1",
    "awesome",
)


def text_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, int(size)))


def frame_rng(seed: int, t: float) -> np.random.Generator:
    """Per-frame randomness that depends only on (seed, time)."""
    return np.random.default_rng((seed, round(t * 1000)))


def fit(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize with Pillow's antialiased bilinear filter."""
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return np.asarray(Image.fromarray(image).resize((max(1, w), max(1, h)), Image.BILINEAR))


def paste(canvas: np.ndarray, image: np.ndarray, window: Box) -> np.ndarray:
    """`image` fitted into `window` of `canvas` (in place); the canvas is returned."""
    x0, y0, x1, y1 = window
    canvas[y0:y1, x0:x1] = fit(image, x1 - x0, y1 - y0)
    return canvas


def solid_canvas(width: int, height: int, color: tuple[int, int, int]) -> np.ndarray:
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = color
    return canvas


def into_window(box: Box, size: tuple[int, int], window: Box) -> Box:
    """Where `box` of a (w, h) frame lands when the frame is scaled into `window`."""
    x0, y0, x1, y1 = window
    sx, sy = (x1 - x0) / size[0], (y1 - y0) / size[1]
    bx0, by0, bx1, by1 = box
    return x0 + round(bx0 * sx), y0 + round(by0 * sy), x0 + round(bx1 * sx), y0 + round(by1 * sy)


def clip_box(box: Box, w: int, h: int) -> Box:
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


class Edit:
    """Base: identity in space and time. Subclasses override what they change."""

    family = "identity"

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        return image

    def map_box(self, box: Box, size: tuple[int, int]) -> tuple[Box, tuple[int, int]]:
        """Where the source picture (`box` inside a frame of `size`) lands after this edit."""
        return box, size

    def describe(self) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {
            "family": self.family,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items() if jsonable(v)},
        }


def jsonable(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool, tuple, list)) or v is None


def random_color(rng) -> tuple[int, int, int]:
    kind = rng.integers(3)
    if kind == 0:
        return (0, 0, 0)
    if kind == 1:
        return (255, 255, 255)
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def random_window(rng, w: int, h: int, lo: float, hi: float, aspect: float | None = None) -> Box:
    """A random rectangle covering lo..hi of the width, inside (w, h)."""
    ww = int(w * rng.uniform(lo, hi))
    hh = int(ww / aspect) if aspect else int(h * rng.uniform(lo, hi))
    hh = max(8, min(hh, h - 4))
    ww = max(8, min(ww, w - 4))
    x0 = int(rng.integers(0, w - ww + 1))
    y0 = int(rng.integers(0, h - hh + 1))
    return x0, y0, x0 + ww, y0 + hh
