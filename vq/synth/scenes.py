"""Look-alike scenes: one fixed background, different things happening in front of it.

A fixed camera filming a room, a street or a stage shows the same picture all day; what
tells one moment from another is the few objects that move. Copy detection must call two
such moments different (they are not copies), which a frame embedding only learns if it
sees them: `moment` pastes `objects` (patches cut from other pictures, soft-edged
ellipses) onto a background at positions drawn from the rng, so two draws over one
background are look-alikes and one draw edited twice is a copy. Deterministic in the rng.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def cut_object(source: np.ndarray, rng: np.random.Generator, height: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB patch of about `height` pixels from `source` and its soft elliptical alpha."""
    sh, sw = source.shape[:2]
    h = max(4, int(height))
    w = max(4, int(h * rng.uniform(0.4, 1.0)))  # upright, like people and things
    ph, pw = min(sh, max(4, int(h * rng.uniform(0.6, 1.5)))), min(sw, max(4, int(w * rng.uniform(0.6, 1.5))))
    y, x = int(rng.integers(0, sh - ph + 1)), int(rng.integers(0, sw - pw + 1))
    patch = np.asarray(Image.fromarray(np.ascontiguousarray(source[y : y + ph, x : x + pw])).resize((w, h)))
    yy, xx = np.mgrid[0:h, 0:w]
    r = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2
    alpha = np.clip((1.0 - r) * 4.0, 0.0, 1.0).astype(np.float32)  # soft edge, opaque core
    return patch, alpha


def moment(
    background: np.ndarray, objects: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator
) -> np.ndarray:
    """`background` with every object pasted at a random place (one moment of the scene)."""
    out = background.astype(np.float32).copy()
    bh, bw = out.shape[:2]
    for patch, alpha in objects:
        h, w = patch.shape[:2]
        if h >= bh or w >= bw:
            continue
        y, x = int(rng.integers(0, bh - h)), int(rng.integers(0, bw - w))
        a = alpha[..., None]
        out[y : y + h, x : x + w] = out[y : y + h, x : x + w] * (1 - a) + patch.astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def scene_objects(
    sources: list[np.ndarray],
    size: tuple[int, int],
    rng: np.random.Generator,
    count: tuple[int, int] = (2, 6),
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Objects for a scene of `size` = (w, h): 10-35 % of its height each, cut from `sources`."""
    n = int(rng.integers(count[0], count[1] + 1))
    h = size[1]
    return [
        cut_object(sources[int(rng.integers(len(sources)))], rng, h * float(rng.uniform(0.1, 0.35)))
        for _ in range(n)
    ]
