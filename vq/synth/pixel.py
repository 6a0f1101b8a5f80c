"""Pixel edits: colour grading, blur, sensor noise, low-quality re-encoding."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from vq.synth.base import Edit, frame_rng


@dataclass
class Color(Edit):
    """Brightness (added), contrast (scaled about mid-grey), saturation, hue rotation (deg)."""

    brightness: float = 0.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    family = "color"

    def __call__(self, image, t):
        x = image.astype(np.float32)
        if self.hue or self.saturation != 1.0:
            # Rotate/scale chroma in YIQ: a linear map, so one 3x3 matrix per frame.
            to_yiq = np.array(
                [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32
            )
            a = math.radians(self.hue)
            rot = np.array(
                [
                    [1, 0, 0],
                    [0, math.cos(a) * self.saturation, -math.sin(a) * self.saturation],
                    [0, math.sin(a) * self.saturation, math.cos(a) * self.saturation],
                ],
                np.float32,
            )
            x = x @ (np.linalg.inv(to_yiq) @ rot @ to_yiq).T
        x = (x - 128.0) * self.contrast + 128.0 + self.brightness
        return np.clip(x, 0, 255).astype(np.uint8)


@dataclass
class Blur(Edit):
    sigma: float = 2.0
    family = "blur"

    def __call__(self, image, t):
        return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(self.sigma)))


@dataclass
class Noise(Edit):
    sigma: float = 8.0
    seed: int = 0
    family = "noise"

    def __call__(self, image, t):
        noise = frame_rng(self.seed, t).normal(0, self.sigma, image.shape).astype(np.float32)
        return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@dataclass
class Reencode(Edit):
    """Low-quality re-encode of each frame as JPEG at `quality` after downscaling by
    `scale`: blocking and ringing like a low-bitrate copy. (`render(..., crf=)` also
    re-encodes the whole video for real.)"""

    quality: int = 25
    scale: float = 0.5
    family = "reencode"

    def __call__(self, image, t):
        h, w = image.shape[:2]
        small = Image.fromarray(image).resize(
            (max(2, int(w * self.scale)), max(2, int(h * self.scale))), Image.BILINEAR
        )
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=int(self.quality))
        return np.asarray(Image.open(buf).convert("RGB").resize((w, h), Image.BILINEAR))


# -- random draws (registered in `vq.synth.families`) ------------------------------------------------


def random_color_grade(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return Color(
        brightness=float(rng.uniform(-40, 40)),
        contrast=float(rng.uniform(0.7, 1.3)),
        saturation=float(rng.uniform(0.5, 1.5)),
        hue=float(rng.uniform(-30, 30)),
    )


def random_blur(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return Blur(float(rng.uniform(1.0, 3.0)))


def random_noise(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return Noise(float(rng.uniform(4, 14)), seed=int(rng.integers(1 << 30)))


def random_reencode(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return Reencode(quality=int(rng.integers(10, 35)), scale=float(rng.uniform(0.3, 0.6)))
