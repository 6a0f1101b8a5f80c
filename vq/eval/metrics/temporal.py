"""Temporal stability of a video filter's output: does it flicker more than its input?

A generative restorer that invents detail independently per frame makes static texture
shimmer. `FlickerMeter` compares the frame-to-frame change of the output with that of
the input brought to the output's size (bicubic): a ratio of 1 means the output changes
exactly as much as the input does; above 1, the filter adds flicker.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


class FlickerMeter:
    """Feed (input frame, output frame) pairs in order; `ratio` is mean |d out| / mean |d in|."""

    def __init__(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._out = self._in = 0.0
        self.pairs = 0

    def add(self, source: np.ndarray, output: np.ndarray) -> None:
        h, w = output.shape[:2]
        ref = np.asarray(Image.fromarray(source).resize((w, h), Image.BICUBIC), np.float32)
        out = output.astype(np.float32)
        if self._prev is not None:
            self._out += float(np.mean(np.abs(out - self._prev[1])))
            self._in += float(np.mean(np.abs(ref - self._prev[0])))
            self.pairs += 1
        self._prev = (ref, out)

    @property
    def ratio(self) -> float | None:
        """None until two frames have been seen (or the input never changes)."""
        return None if self.pairs == 0 or self._in == 0 else self._out / self._in
