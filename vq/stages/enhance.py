"""Enhancement stage: restore or super-resolve uint8 RGB frames on any backend.

Frames are cut into fixed-size tiles with `overlap` pixels of context on each side, run
as one batch, and put back together. Fixed tiles bound memory for any frame size, batch
well, and give TensorRT one shape to optimise for. Two kinds of model:

* **regression** (`vq-enhance-x2`): one pass; the context is at least the network's
  receptive radius, so the tile centres are simply stitched (`stitch_tiles`);
* **generative** (the LPM tasks' exports, see `train/lpm/`): the exported graph is one step of a
  rectified-flow sampler, ``(image, x, t) -> (endpoint, output)``, run `steps` times
  from Gaussian noise (`sample_tiles`; a distilled student runs once). The noise is a
  fixed function of the output pixel's position (`position_noise`), so every frame of a
  video gets the same noise at the same place and invented detail does not flicker, and
  overlapping tiles share their noise; their outputs still differ a little in the overlap
  (different context), so it is cross-faded (`blend_tiles`), not cut.

Tiling and stitching are reshapes and views, no Python loop over pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vq.errors import UsageError
from vq.models import Artifact
from vq.preprocess.normalize import to_model_input
from vq.stages.base import Stage


def split_tiles(image: np.ndarray, tile: int, overlap: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(H, W, C) -> (N, tile+2*overlap, tile+2*overlap, C) tiles and the (rows, cols) grid."""
    h, w, _ = image.shape
    rows, cols = -(-h // tile), -(-w // tile)
    padded = np.pad(
        image,
        ((overlap, rows * tile - h + overlap), (overlap, cols * tile - w + overlap), (0, 0)),
        mode="symmetric",
    )
    size = tile + 2 * overlap
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(0, 1))
    tiles = windows[::tile, ::tile]  # (rows, cols, C, size, size)
    tiles = np.moveaxis(tiles, 2, -1)  # (rows, cols, size, size, C)
    return np.ascontiguousarray(tiles.reshape(rows * cols, size, size, image.shape[2])), (rows, cols)


def stitch_tiles(
    tiles: np.ndarray, grid: tuple[int, int], out_hw: tuple[int, int], margin: int
) -> np.ndarray:
    """Inverse of `split_tiles` on the (scaled) outputs: drop `margin` px, tile the centres."""
    rows, cols = grid
    centre = tiles[:, margin : tiles.shape[1] - margin, margin : tiles.shape[2] - margin]
    th, tw, c = centre.shape[1:]
    full = centre.reshape(rows, cols, th, tw, c).transpose(0, 2, 1, 3, 4).reshape(rows * th, cols * tw, c)
    return full[: out_hw[0], : out_hw[1]]


def blend_tiles(tiles: np.ndarray, grid: tuple[int, int], out_hw: tuple[int, int], margin: int) -> np.ndarray:
    """Put (scaled) `split_tiles` outputs back, cross-fading the 2 * `margin` px where
    neighbours overlap: a linear ramp per axis whose weights sum to one across every
    overlap, so no seam shows even where the two tiles disagree."""
    rows, cols = grid
    n, size = tiles.shape[0], tiles.shape[1]
    stride = size - 2 * margin
    ramp = np.minimum(
        1.0, np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / max(1, 2 * margin)
    )
    weight = (ramp[:, None] * ramp[None, :])[..., None].astype(np.float32)
    acc = np.zeros((rows * stride + 2 * margin, cols * stride + 2 * margin, tiles.shape[3]), np.float32)
    norm = np.zeros((*acc.shape[:2], 1), np.float32)
    for i in range(n):  # a loop over tiles (hundreds), each a vectorised slab
        y, x = (i // cols) * stride, (i % cols) * stride
        acc[y : y + size, x : x + size] += tiles[i] * weight
        norm[y : y + size, x : x + size] += weight
    full = acc / norm
    return full[margin : margin + out_hw[0], margin : margin + out_hw[1]]


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic): a counter-based hash,
    so any pixel's random numbers are computed from its coordinates, in any order."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def position_noise(origins: np.ndarray, side: int, seed: int = 0) -> np.ndarray:
    """(N, side, side, 3) standard normal noise for square windows whose top-left corners
    are `origins` (N, 2) in output-frame pixels: a fixed function of (seed, y, x, channel),
    so overlapping tiles draw the same noise where they overlap (their samples agree there
    instead of averaging independent detail away) and every frame of a video gets the same
    noise at the same place."""
    origins = np.asarray(origins, np.int64).reshape(-1, 2)
    yy = (origins[:, 0, None] + np.arange(side))[:, :, None, None].astype(np.uint64)
    xx = (origins[:, 1, None] + np.arange(side))[:, None, :, None].astype(np.uint64)
    cc = np.arange(3, dtype=np.uint64)
    # 16 bits of seed, 22 of y, 22 of x, 4 of channel and draw: frames up to 4M px a side
    key = (np.uint64(seed & 0xFFFF) << np.uint64(48)) | (yy << np.uint64(26)) | (xx << np.uint64(4)) | cc
    with np.errstate(over="ignore"):
        a, b = _mix64(key), _mix64(key | np.uint64(8))  # two independent draws per value
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # (0, 1): log is finite
    u2 = (b >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)


def tile_origins(tiles: range, cols: int, stride: int) -> np.ndarray:
    """Top-left corners (y, x) of `split_tiles` tiles in the padded output frame."""
    i = np.asarray(tiles)
    return np.stack([i // cols * stride, i % cols * stride], axis=1)


NOISE_CACHE_BYTES = 256 << 20  # the largest frame noise kept between frames


@functools.lru_cache(maxsize=1)
def _frame_noise(n: int, cols: int, stride: int, side: int, seed: int) -> np.ndarray:
    """The noise of all `n` tiles of a frame (read-only: it is shared between calls),
    hashed 64 tiles at a time (whole-frame temporaries are several times slower)."""
    noise = np.empty((n, side, side, 3), np.float32)
    for i in range(0, n, 64):
        noise[i : i + 64] = position_noise(tile_origins(range(i, min(i + 64, n)), cols, stride), side, seed)
    noise.flags.writeable = False
    return noise


def sample_tiles(
    step: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lq: np.ndarray,
    noise: np.ndarray,
    steps: int,
) -> np.ndarray:
    """Euler integration of the rectified flow from `noise` (t = 0) to the output (t = 1).

    `step(lq, x, t)` is the exported graph: the flow's endpoint estimate at ``(x, t)`` and
    the frame it implies. The velocity is ``(endpoint - x) / (1 - t)``; a one-step sample
    is the output of the first call.
    """
    if steps < 1:
        raise UsageError(f"sampler steps must be >= 1 (got {steps})")
    x = noise
    for k in range(steps):
        t = k / steps
        endpoint, image = step(lq, x, np.full((len(lq),), t, np.float32))
        if k + 1 < steps:
            x = x + (endpoint - x) / steps / (1.0 - t)
    return image


def enhance_generative(
    frame: np.ndarray,
    step: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    *,
    tile: int,
    overlap: int,
    scale: int,
    steps: int,
    batch: int,
    seed: int = 0,
    temperature: float = 1.0,
) -> np.ndarray:
    """uint8 (H, W, 3) -> float (H*scale, W*scale, 3) in [0, 1] with a sampler-step graph
    of fixed input side `tile` (= inner tile + 2 * `overlap`), `batch` tiles at a time.
    `temperature` scales the starting noise: 1 draws a sample of the learnt distribution,
    0 follows the flow from its centre (less invented detail, higher PSNR)."""
    inner = tile - 2 * overlap
    tiles, grid = split_tiles(frame, inner, overlap)
    n, side, stride = len(tiles), tile * scale, inner * scale
    # Every frame of a video has the same tiles, so the same noise: hashed once per frame
    # size (1 s of a 720p frame's work otherwise), unless it is too big to keep (4K: 0.7 GB).
    whole = (
        _frame_noise(n, grid[1], stride, side, seed) if n * side * side * 12 <= NOISE_CACHE_BYTES else None
    )

    def noise(i: int, j: int) -> np.ndarray:
        drawn = (
            whole[i:j]
            if whole is not None
            else position_noise(tile_origins(range(i, j), grid[1], stride), side, seed)
        )
        return drawn * np.float32(temperature)

    out = np.concatenate(
        [
            sample_tiles(
                step, tiles[i : i + batch].astype(np.float32) / 255.0, noise(i, min(i + batch, n)), steps
            )
            for i in range(0, n, batch)
        ]
    )
    h, w = frame.shape[:2]
    return blend_tiles(out, grid, (h * scale, w * scale), overlap * scale)


class Enhancer(Stage):
    """Load an enhancement model once; call `enhance(frame)` per uint8 RGB frame.

    A generative model (its card's preprocessing names the graph's fixed ``tile``) runs
    `steps` sampler steps (default: the card's ``sampler.steps``, 1 for a distilled
    student); `tile` and `overlap` then are the graph's and the default overlap is an
    eighth of it. `seed` picks the per-position noise (fixed across a video's frames);
    `temperature` scales it (default: the card's ``sampler.temperature``, else 1).
    """

    task = "enhance"

    def __init__(
        self,
        model: str | Path | Artifact | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        tile: int = 128,
        overlap: int | None = None,
        batch: int = 16,
        steps: int | None = None,
        seed: int = 0,
        temperature: float | None = None,
    ):
        super().__init__(model, backend, precision)
        prep = self.artifact.card.preprocessing
        self.scale = int(prep.get("upscale", 2))
        self.generative = "tile" in prep
        if self.generative:  # the graph's tile is fixed; the overlap comes out of it
            tile = int(prep["tile"])
            overlap = tile // 8 if overlap is None else overlap
            if not 0 <= 2 * overlap < tile:
                raise UsageError(
                    f"overlap must be in [0, {(tile - 1) // 2}] for this model's {tile} px tiles"
                )
        overlap = 16 if overlap is None else overlap
        if tile < 8 or overlap < 0:
            raise UsageError(f"tile must be >= 8 and overlap >= 0 (got {tile}, {overlap})")
        self.tile, self.overlap, self.batch, self.seed = tile, overlap, batch, seed
        sampler = prep.get("sampler", {})
        self.steps = int(sampler.get("steps", 1) if steps is None else steps)
        if self.steps < 1:
            raise UsageError(f"sampler steps must be >= 1 (got {self.steps})")
        self.temperature = float(sampler.get("temperature", 1.0) if temperature is None else temperature)
        if not 0.0 <= self.temperature <= 2.0:
            raise UsageError(f"sampler temperature must be in [0, 2] (got {self.temperature})")
        self._input = self.artifact.card.inputs[0].name
        self._output = self.artifact.card.outputs[-1].name

    def _step(self, lq: np.ndarray, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.run({"image": lq, "x": x, "t": t})
        return out["endpoint"], out["output"]

    def describe(self) -> dict:
        info = dict(super().describe())
        if self.generative:
            info["steps"], info["temperature"] = self.steps, self.temperature
        return info

    def enhance(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB -> uint8 (H*scale, W*scale, 3)."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise UsageError(f"enhance expects a uint8 HxWx3 RGB frame, got {frame.dtype} {frame.shape}")
        if self.generative:
            out = enhance_generative(
                frame,
                self._step,
                tile=self.tile,
                overlap=self.overlap,
                scale=self.scale,
                steps=self.steps,
                batch=self.batch,
                seed=self.seed,
                temperature=self.temperature,
            )
            return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        tiles, grid = split_tiles(frame, self.tile, self.overlap)
        x = to_model_input(tiles, self.artifact.card.preprocessing)
        out = self.run_batched({self._input: x}, self.batch)[self._output]
        out = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        h, w = frame.shape[:2]
        return stitch_tiles(out, grid, (h * self.scale, w * self.scale), self.overlap * self.scale)
