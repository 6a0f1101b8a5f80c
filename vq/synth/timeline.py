"""Temporal edits: they re-time a video (which source time each output frame shows)
instead of changing pixels; evaluation derives the copied segments from the mapping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vq.errors import UsageError
from vq.synth.base import Edit


@dataclass
class Speed(Edit):
    """Play `factor` times faster (0.5 = slow motion); frames are re-timed, not interpolated."""

    factor: float
    family = "speed"

    def retime(self, out_t: np.ndarray, src_t: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
        duration = (out_t[-1] + 1 / fps) / self.factor
        new_out = np.arange(0.0, duration - 1e-9, 1.0 / fps)
        return new_out, np.interp(new_out * self.factor, out_t, src_t)


@dataclass
class FrameRate(Edit):
    fps: float
    family = "frame_rate"

    def retime(self, out_t, src_t, fps):
        duration = out_t[-1] + 1 / fps
        new_out = np.arange(0.0, duration - 1e-9, 1.0 / self.fps)
        idx = np.clip(np.searchsorted(out_t, new_out, side="right") - 1, 0, len(out_t) - 1)
        return new_out, src_t[idx]


@dataclass
class Trim(Edit):
    """Keep [start, end) seconds of the current timeline."""

    start: float
    end: float
    family = "trim"

    def retime(self, out_t, src_t, fps):
        keep = (out_t >= self.start) & (out_t < self.end)
        if not keep.any():
            raise UsageError(f"trim [{self.start}, {self.end}) keeps no frames")
        return out_t[keep] - out_t[keep][0], src_t[keep]


@dataclass
class Reverse(Edit):
    """Play the current timeline backwards (the picture only: a reversed render is silent)."""

    family = "reverse"

    def retime(self, out_t, src_t, fps):
        return out_t, src_t[::-1].copy()


TEMPORAL = (Speed, FrameRate, Trim, Reverse)


def segments_from(
    out_t: np.ndarray, src_t: np.ndarray, fps: float, tolerance: float = 0.6
) -> list[tuple[float, float, float, float]]:
    """Piecewise-linear (out_start, out_end, src_start, src_end) runs of the time mapping
    (a run played backwards still gives its source span low to high)."""
    if len(out_t) == 0:
        return []
    step = 1.0 / fps
    segs = []
    start = 0
    for i in range(1, len(out_t) + 1):
        broken = i == len(out_t) or abs(src_t[i] - src_t[i - 1]) > tolerance + step * 4
        if broken:
            lo, hi = sorted((float(src_t[start]), float(src_t[i - 1])))
            segs.append((float(out_t[start]), float(out_t[i - 1] + step), lo, hi + step))
            start = i
    return segs


# -- random draws (registered in `vq.synth.families`) ------------------------------------------------


def random_speed(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return Speed(float(rng.choice([0.75, 1.25, 1.5, 2.0])))


def random_frame_rate(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return FrameRate(float(rng.choice([10.0, 15.0, 30.0])))
