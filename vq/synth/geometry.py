"""Geometric disguises: bars, blur-fill padding, crops, scaling, small rotations, mirroring."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from vq.synth.base import Box, Edit, clip_box, fit, into_window, paste, random_color


@dataclass
class Border(Edit):
    """Solid bars of one colour (black, white, any) around the picture."""

    top: int
    bottom: int
    left: int
    right: int
    color: tuple[int, int, int] = (0, 0, 0)
    family = "border"

    def __call__(self, image, t):
        h, w = image.shape[:2]
        out = np.empty((h + self.top + self.bottom, w + self.left + self.right, 3), np.uint8)
        out[:] = self.color
        out[self.top : self.top + h, self.left : self.left + w] = image
        return out

    def map_box(self, box, size):
        x0, y0, x1, y1 = box
        return (
            (x0 + self.left, y0 + self.top, x1 + self.left, y1 + self.top),
            (size[0] + self.left + self.right, size[1] + self.top + self.bottom),
        )


@dataclass
class BlurFill(Edit):
    """The picture fitted inside a canvas whose padding is a blurred, enlarged copy of it
    (how landscape clips are posted to portrait feeds)."""

    width: int
    height: int
    sigma: float = 12.0
    darken: float = 0.8
    family = "blur_fill"

    def _layout(self, w: int, h: int) -> Box:
        scale = min(self.width / w, self.height / h)
        fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
        x0, y0 = (self.width - fw) // 2, (self.height - fh) // 2
        return x0, y0, x0 + fw, y0 + fh

    def __call__(self, image, t):
        h, w = image.shape[:2]
        cover = max(self.width / w, self.height / h)
        bw, bh = math.ceil(w * cover), math.ceil(h * cover)
        bg = Image.fromarray(image).resize((bw, bh), Image.BILINEAR)
        bx, by = (bw - self.width) // 2, (bh - self.height) // 2
        bg = bg.crop((bx, by, bx + self.width, by + self.height)).filter(ImageFilter.GaussianBlur(self.sigma))
        out = (np.asarray(bg, np.float32) * self.darken).astype(np.uint8)
        return paste(out, image, self._layout(w, h))

    def map_box(self, box, size):
        return into_window(box, size, self._layout(*size)), (self.width, self.height)


@dataclass
class Crop(Edit):
    """Keep the fractional rectangle (x0, y0, x1, y1) of the frame."""

    x0: float
    y0: float
    x1: float
    y1: float
    family = "crop"

    def _pixels(self, w, h) -> Box:
        return (
            round(self.x0 * w),
            round(self.y0 * h),
            max(round(self.x0 * w) + 2, round(self.x1 * w)),
            max(round(self.y0 * h) + 2, round(self.y1 * h)),
        )

    def __call__(self, image, t):
        x0, y0, x1, y1 = self._pixels(image.shape[1], image.shape[0])
        return image[y0:y1, x0:x1]

    def map_box(self, box, size):
        x0, y0, x1, y1 = self._pixels(*size)
        bx0, by0, bx1, by1 = box
        new = (bx0 - x0, by0 - y0, bx1 - x0, by1 - y0)
        return clip_box(new, x1 - x0, y1 - y0), (x1 - x0, y1 - y0)


@dataclass
class Scale(Edit):
    """Resize to (width, height): aspect changes, low-resolution copies."""

    width: int
    height: int
    family = "scale"

    def __call__(self, image, t):
        return fit(image, self.width, self.height)

    def map_box(self, box, size):
        return into_window(box, size, (0, 0, self.width, self.height)), (self.width, self.height)


@dataclass
class Rotate(Edit):
    """A small rotation (degrees, counter-clockwise) about the centre, corners filled black."""

    degrees: float
    family = "rotate"

    def __call__(self, image, t):
        return np.asarray(Image.fromarray(image).rotate(self.degrees, Image.BILINEAR, expand=False))

    def map_box(self, box, size):
        # The largest axis-aligned rectangle still all picture (no black corners).
        w, h = size
        a = math.radians(abs(self.degrees))
        s, c = abs(math.sin(a)), abs(math.cos(a))
        long_side, short_side = max(w, h), min(w, h)
        if short_side <= 2 * s * c * long_side or abs(s - c) < 1e-10:
            half = 0.5 * short_side
            iw, ih = (half / s, half / c) if w >= h else (half / c, half / s)
        else:
            iw, ih = (w * c - h * s) / (c * c - s * s), (h * c - w * s) / (c * c - s * s)
        iw, ih = max(2, min(w, int(iw))), max(2, min(h, int(ih)))
        return ((w - iw) // 2, (h - ih) // 2, (w + iw) // 2, (h + ih) // 2), size


@dataclass
class Flip(Edit):
    family = "flip"

    def __call__(self, image, t):
        return image[:, ::-1]

    def map_box(self, box, size):
        x0, y0, x1, y1 = box
        return (size[0] - x1, y0, size[0] - x0, y1), size


# -- random draws (registered in `vq.synth.families`) ------------------------------------------------


def random_border(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    w, h = size
    return Border(*(int(rng.integers(0, max(2, s // 5))) for s in (h, h, w, w)), color=random_color(rng))


def random_letterbox(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    """Landscape into portrait: bars above and below."""
    w, h = size
    out_h = int(w * rng.uniform(1.3, 1.9))
    pad = max(0, out_h - h)
    top = int(rng.integers(0, pad + 1))
    return Border(top, pad - top, 0, 0, color=random_color(rng))


def random_blur_fill(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    w, _ = size
    oh = int(w * rng.uniform(1.3, 1.9))  # portrait canvas
    return BlurFill(w, oh, sigma=float(rng.uniform(6, 20)), darken=float(rng.uniform(0.5, 0.9)))


def random_crop(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    x0, y0 = rng.uniform(0, 0.2, 2)
    x1, y1 = 1 - rng.uniform(0, 0.2, 2)
    return Crop(float(x0), float(y0), float(x1), float(y1))


def random_scale(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    w, h = size
    s = rng.uniform(0.4, 0.9)
    return Scale(max(16, int(w * s * rng.uniform(0.8, 1.25))), max(16, int(h * s)))


def random_flip(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return Flip()


def random_rotate(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return Rotate(float(rng.uniform(-6, 6)))
