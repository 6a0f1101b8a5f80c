"""What decoding hands back, and what the sampling plan needs from an open video.

`Frames` is the frames contract of the whole runtime (uint8 NHWC RGB with float64
timestamps from the stream's pts). `DecodableVideo` is the part of `vq.media.video.Video`
that `vq.media.sampling` plans and decodes against; keeping it here lets the two modules
depend on this one instead of on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass
class Frames:
    """Decoded samples: `images` uint8 (N, H, W, 3) RGB and `times` float64 (N,) seconds."""

    images: np.ndarray
    times: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)


class DecodableVideo(Protocol):
    """An open video as the sampling plan sees it (`vq.media.video.Video` is one)."""

    path: str
    container: Any  # av.container.InputContainer
    stream: Any  # its first video stream

    @property
    def info(self) -> Any: ...  # VideoInfo: width, height, fps, duration, rotation

    @property
    def time_base(self) -> float: ...

    @property
    def start_pts(self) -> int: ...

    def index(self) -> Any: ...  # sampling.PacketIndex, or None for network sources


def nearest(have: np.ndarray, want: Any) -> np.ndarray:
    """For each time in `want`, the index of the nearest time in `have` (decoded frames'
    pts): how a consumer maps the times it asked for onto the frames it got (a short
    video, or a sample past the end, repeats a frame)."""
    have, want = np.asarray(have, np.float64), np.asarray(want, np.float64)
    return np.abs(have[None, :] - want[:, None]).argmin(axis=1)
