"""What the viewer's phone does to a decoded rung before showing it.

The seed's device-cloud decision scores a lower rung *as the client will show it*: a
phone that sharpens, or runs a light super-resolution model, turns a cheaper rung into a
picture that may beat the next rung up. Two clients are simulated:

* ``sharpen``: an unsharp mask on the displayed (already upscaled) frame, as display
  pipelines apply it (Pillow's UnsharpMask: radius 1.5 px, 60 %, no threshold);
* ``sr``: the phone-sized x2 restorer (`vq-enhance-x2` by default) on the decoded rung
  at its own size, then the usual bicubic scaling to the display size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vq.errors import UsageError
from vq.preprocess.resize import resize

CLIENT_MODES = ("sharpen", "sr")
UNSHARP = {"radius": 1.5, "percent": 60}  # no threshold: every edge is sharpened


def sharpen_stage():
    """The client's unsharp mask as a degradation stage (`vq.synth.degrade`): one filter
    for the phone here and for the sharpened ladder rungs KVQ is trained and measured on."""
    from vq.synth.degrade import Degradation

    return Degradation("sharpen", {"amount": UNSHARP["percent"] / 100, "radius": UNSHARP["radius"]})


def to_display(frames: np.ndarray, display: tuple[int, int]) -> np.ndarray:
    """uint8 (T, H, W, 3) frames scaled to the display size (w, h), bicubic as players do."""
    if (frames.shape[2], frames.shape[1]) == tuple(display):
        return frames
    return resize(frames, display, "bicubic")


def sharpen(frames: np.ndarray) -> np.ndarray:
    return sharpen_stage().apply(frames, 25.0)  # a per-frame filter: the rate does not matter


class ClientPost:
    """The client post-processing modes, the SR model opened once (a context manager)."""

    def __init__(self, modes: list[str], model: str | Path | None = None, backend: str = "auto"):
        bad = [m for m in modes if m not in CLIENT_MODES]
        if bad:
            raise UsageError(f"unknown client post-processing {bad} (choose from {', '.join(CLIENT_MODES)})")
        self.modes = list(dict.fromkeys(modes))
        self.enhancer = None
        if "sr" in self.modes:
            from vq.stages.enhance import Enhancer

            self.enhancer = Enhancer(model or "vq-enhance-x2", backend=backend)
            if self.enhancer.generative:
                raise UsageError("the client SR model must be a one-pass restorer, not a generative sampler")

    def __enter__(self) -> ClientPost:
        if self.enhancer is not None:
            self.enhancer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enhancer is not None:
            self.enhancer.close()

    def apply(self, mode: str, decoded: np.ndarray, display: tuple[int, int]) -> np.ndarray:
        """The frames the viewer sees: decoded rung frames (T, h, w, 3) -> display size."""
        if mode == "sharpen":
            return sharpen(to_display(decoded, display))
        if mode == "sr":
            assert self.enhancer is not None
            return to_display(np.stack([self.enhancer.enhance(f) for f in decoded]), display)
        raise UsageError(f"unknown client post-processing {mode!r}")
