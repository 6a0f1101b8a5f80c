"""Test media made on the fly: clips whose frame index can be read back from pixels.

Frame i carries i in binary as black/white cells, so a test can tell which source frame
a decoder returned even after lossy compression; a red marker shows orientation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vq.media.encode import write_audio, write_video

BITS = 10  # frame indices up to 1023


def clip_frames(n: int, size: tuple[int, int] = (160, 96)) -> list[np.ndarray]:
    """Frame i carries i in binary as BITS black/white cells along its bottom quarter."""
    w, h = size
    frames = []
    cell = w // BITS
    for i in range(n):
        img = np.full((h, w, 3), 110.0)
        img += np.linspace(-20, 20, w)[None, :, None]  # texture for the encoder
        img[: h // 4, : w // 4] = (255, 0, 0)  # orientation marker, top-left
        for b in range(BITS):
            img[h * 3 // 4 :, b * cell : (b + 1) * cell] = 235 if (i >> b) & 1 else 20
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def frame_index(image: np.ndarray, n: int | None = None) -> int:
    """Read back the index `clip_frames` wrote (cell centres, robust to compression)."""
    h, w = image.shape[:2]
    cell = w // BITS
    rows = image[h * 7 // 8 - 1 : h * 7 // 8 + 2].astype(np.float64).mean(axis=(0, 2))
    bits = [rows[b * cell + cell // 4 : (b + 1) * cell - cell // 4].mean() > 128 for b in range(BITS)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def tone(seconds: float, rate: int = 44100, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.05 * np.sin(2 * np.pi * 3 * hz * t)).astype(np.float32)


def make_clip(
    path: Path, n: int = 50, fps: float = 25, size: tuple[int, int] = (160, 96), audio: bool = False, **kwargs
) -> Path:
    audio_from = None
    if audio:
        audio_from = write_audio(path.with_suffix(".tone.wav"), tone(n / fps + 0.5), 44100)
    return write_video(path, clip_frames(n, size), fps, audio_from=audio_from, **kwargs)
