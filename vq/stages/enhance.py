"""Enhancement stage: super-resolve uint8 RGB frames with an `enhance` model on any backend.

Frames are cut into fixed-size tiles with `overlap` pixels of context on each side, run
as one batch, and the tile centres are stitched back. Fixed tiles bound memory for any
frame size, batch well, and give TensorRT one shape to optimise for; the context is at
least the network's receptive radius, so seams do not show. Tiling and stitching are
reshapes and views, no Python loop over pixels.
"""

from __future__ import annotations

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


class Enhancer(Stage):
    """Load an enhancement model once; call `enhance(frame)` per uint8 RGB frame."""

    task = "enhance"

    def __init__(
        self,
        model: str | Path | Artifact | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        tile: int = 128,
        overlap: int = 16,
        batch: int = 16,
    ):
        super().__init__(model, backend, precision)
        self.scale = int(self.artifact.card.preprocessing.get("upscale", 2))
        if tile < 8 or overlap < 0:
            raise UsageError(f"tile must be >= 8 and overlap >= 0 (got {tile}, {overlap})")
        self.tile, self.overlap, self.batch = tile, overlap, batch
        self._input = self.artifact.card.inputs[0].name
        self._output = self.artifact.card.outputs[0].name

    def enhance(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB -> uint8 (H*scale, W*scale, 3)."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise UsageError(f"enhance expects a uint8 HxWx3 RGB frame, got {frame.dtype} {frame.shape}")
        tiles, grid = split_tiles(frame, self.tile, self.overlap)
        x = to_model_input(tiles, self.artifact.card.preprocessing)
        out = self.run_batched({self._input: x}, self.batch)[self._output]
        out = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        h, w = frame.shape[:2]
        return stitch_tiles(out, grid, (h * self.scale, w * self.scale), self.overlap * self.scale)
