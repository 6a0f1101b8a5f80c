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
        if self.hue or self.saturation != 1.0:  # a linear map in YIQ: one 3x3 matrix per frame
            x = x @ chroma_matrix(self.hue, self.saturation).T
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


@dataclass
class ColorGrade(Edit):
    """A strong grade, as colourists and filter apps apply them: hue rotation (degrees),
    saturation (0 is grey), a tone curve (gamma, then an S-curve of strength `contrast`),
    split toning (RGB tints added in the shadows and the highlights, the "teal and orange"
    and sepia looks) and a faded black (`fade` lifts it)."""

    hue: float = 0.0
    saturation: float = 1.0
    gamma: float = 1.0
    contrast: float = 0.0  # -0.5 (flat) .. 0.8 (punchy)
    shadows: tuple[float, float, float] = (0.0, 0.0, 0.0)  # in [0, 1] units
    highlights: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fade: float = 0.0
    family = "grade"

    def __call__(self, image, t):
        x = image.astype(np.float32) / 255.0
        x = x @ chroma_matrix(self.hue, self.saturation).T
        x = np.clip(x, 0.0, 1.0) ** self.gamma
        s_curve = 0.5 - 0.5 * np.cos(np.pi * x)
        x = x + self.contrast * (s_curve - x)
        luma = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        x = x + (1.0 - luma) ** 2 * np.asarray(self.shadows, np.float32)
        x = x + luma**2 * np.asarray(self.highlights, np.float32)
        x = self.fade + (1.0 - self.fade) * x
        return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def chroma_matrix(hue: float, saturation: float) -> np.ndarray:
    """RGB -> RGB: rotate chroma by `hue` degrees and scale it by `saturation` in YIQ."""
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
    a = math.radians(hue)
    rot = np.array(
        [
            [1, 0, 0],
            [0, math.cos(a) * saturation, -math.sin(a) * saturation],
            [0, math.sin(a) * saturation, math.cos(a) * saturation],
        ],
        np.float32,
    )
    return np.linalg.inv(to_yiq) @ rot @ to_yiq


LOOKS = ("grey", "sepia", "teal_orange", "cross_process", "hue_shift", "vivid", "faded_film", "night")


def random_grade(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    """One of the looks filter apps ship, with random strength."""
    look = str(rng.choice(LOOKS))
    if look == "grey":
        return ColorGrade(saturation=0.0, contrast=float(rng.uniform(-0.2, 0.5)))
    if look == "sepia":
        warm = float(rng.uniform(0.08, 0.18))
        return ColorGrade(
            saturation=0.0,
            shadows=(warm * 0.6, warm * 0.3, 0.0),
            highlights=(warm, warm * 0.6, 0.0),
            fade=0.05,
        )
    if look == "teal_orange":
        k = float(rng.uniform(0.08, 0.2))
        return ColorGrade(
            saturation=float(rng.uniform(1.0, 1.4)),
            contrast=0.3,
            shadows=(0.0, k * 0.5, k),
            highlights=(k, k * 0.4, -k * 0.5),
        )
    if look == "cross_process":
        return ColorGrade(
            hue=float(rng.uniform(-25, 25)),
            saturation=1.3,
            gamma=float(rng.uniform(0.75, 0.9)),
            contrast=0.5,
            shadows=(0.0, 0.05, 0.15),
            highlights=(0.1, 0.1, -0.1),
        )
    if look == "hue_shift":
        return ColorGrade(
            hue=float(rng.choice([-1, 1]) * rng.uniform(60, 180)), saturation=float(rng.uniform(0.9, 1.5))
        )
    if look == "vivid":
        return ColorGrade(saturation=float(rng.uniform(1.6, 2.2)), contrast=float(rng.uniform(0.3, 0.7)))
    if look == "faded_film":
        return ColorGrade(
            saturation=float(rng.uniform(0.4, 0.7)), contrast=-0.3, fade=float(rng.uniform(0.1, 0.25))
        )
    return ColorGrade(  # night: dark and blue
        saturation=0.6,
        gamma=float(rng.uniform(1.6, 2.2)),
        shadows=(0.0, 0.02, 0.12),
        highlights=(-0.05, 0.0, 0.05),
    )
