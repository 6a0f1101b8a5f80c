"""Fragments (FAST-VQA): mini-patches at native resolution, spliced into one small frame.

Resizing a 1080p frame to a network's input size erases exactly what quality assessment
looks for: compression blocks, noise and ringing live at the pixel scale. A fragment keeps
them: the frame is cut into a ``grid x grid`` lattice of cells, one ``patch x patch``
mini-patch is taken from each cell at native resolution, and the mini-patches are spliced
into a ``grid*patch`` square. Every frame of a clip uses the same positions (temporally
aligned, so motion, freezes and flicker between frames stay visible). Training draws the
position inside each cell at random (a different view of the clip every epoch); scoring
takes cell centres, so a score is deterministic.

Frames smaller than the lattice are edge-padded to ``patch`` and cells overlap; nothing is
ever upscaled. One block copy per cell, no loop over pixels.

``align``: mini-patch origins on multiples of `align` pixels. Codecs code a frame in
blocks on a fixed grid from its top-left corner (H.264 macroblocks and 4x4/8x8 transforms,
HEVC and AV1 transform blocks of 4-32 px), so blocking is a step at fixed phase. With
origins on multiples of 16 every mini-patch holds the grid at the same phase, and a
model's fixed-position filters can tell a codec seam from an edge of the picture, as
block-based blockiness measures do; with free origins the seams fall anywhere.

``context``: the last cell (bottom right) holds the whole frame shrunk to one mini-patch
(`thumbnail`) instead of a cut. Cuts of 32 px say how the pixels are damaged, not what the
scene is, and a no-reference score needs both: still water, a night sky or a flat cartoon
are smooth when clean, and from cuts alone they look like a blurred picture (DOVER's
answer is a second, downscaled "aesthetic" view; this is that view in one cell, so the
model's input and every backend stay as they are). Every other cell is cut as without it.
"""

from __future__ import annotations

import numpy as np

GRID = 6
PATCH = 32


def fragment_origins(
    size: int,
    grid: int = GRID,
    patch: int = PATCH,
    rng: np.random.Generator | None = None,
    align: int = 1,
) -> np.ndarray:
    """Top-left offsets of the `grid` mini-patches along one axis of length `size`, on
    multiples of `align` (rounded down, so they stay inside the frame)."""
    cell = size / grid
    lo = np.floor(np.arange(grid) * cell)
    room = np.maximum(0.0, cell - patch)  # free play inside each cell
    offset = rng.uniform(0.0, 1.0, grid) * room if rng is not None else room / 2
    origin = np.clip(np.round(lo + offset), 0, max(0, size - patch)).astype(np.int64)
    return origin // align * align


def cut_settings(preprocessing: dict) -> dict[str, int]:
    """`fragments`' keyword arguments as a model card's preprocessing gives them (cards
    from before aligned fragments or the context cell leave those out: off)."""
    cut = preprocessing["fragments"]
    return {
        "grid": int(cut["grid"]),
        "patch": int(cut["patch"]),
        "align": int(cut.get("align", 1)),
        "context": int(cut.get("context", 0)),
    }


def pad_to(clip: np.ndarray, size: int) -> np.ndarray:
    """A (T, H, W, C) clip with each side under `size` padded by edge to `size`."""
    h, w = clip.shape[1:3]
    if h >= size and w >= size:
        return clip
    return np.pad(clip, ((0, 0), (0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="edge")


def thumbnail(clip: np.ndarray, size: int = PATCH) -> np.ndarray:
    """uint8 (T, H, W, C) -> (T, size, size, C): each frame squeezed whole into `size`
    pixels a side by area averages. Large frames first keep every k-th row and column
    (at most 8 `size` remain per side), so the cost does not grow with the frame; smaller
    frames are padded by edge to `size`, never enlarged."""
    clip = pad_to(clip, size)
    h, w = clip.shape[1:3]
    clip = clip[:, :: max(1, h // (4 * size)), :: max(1, w // (4 * size))]
    out = clip.astype(np.uint32)
    for axis in (1, 2):  # area bins along each axis: reduceat sums runs of rows, then columns
        n = out.shape[axis]
        edges = np.floor(np.arange(size + 1) * n / size).astype(np.int64)
        out = np.add.reduceat(out, edges[:-1], axis=axis)
        shape = [1, 1, 1, 1]
        shape[axis] = size
        out = out / np.diff(edges).reshape(shape)
    return np.round(out).astype(np.uint8)


def fragments(
    clip: np.ndarray,
    grid: int = GRID,
    patch: int = PATCH,
    rng: np.random.Generator | None = None,
    align: int = 1,
    context: int = 0,
    thumb: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (T, grid*patch, grid*patch, 3) fragment clip (with `context`
    1, the last cell is the frame's `thumbnail`: `thumb` where the caller has it already,
    as a scorer cutting several views of one window does)."""
    if clip.ndim != 4:
        raise ValueError(f"fragments need a (T, H, W, C) clip, got shape {clip.shape}")
    clip = pad_to(clip, patch)
    h, w = clip.shape[1:3]
    ys = fragment_origins(h, grid, patch, rng, align)
    xs = fragment_origins(w, grid, patch, rng, align)
    # One block copy per cell (grid^2 of them): ten times faster than a fancy-index gather.
    out = np.empty((clip.shape[0], grid * patch, grid * patch, clip.shape[3]), clip.dtype)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            out[:, i * patch : (i + 1) * patch, j * patch : (j + 1) * patch] = clip[
                :, y : y + patch, x : x + patch
            ]
    if context:
        out[:, -patch:, -patch:] = thumbnail(clip, patch) if thumb is None else thumb
    return out


def dihedral(clip: np.ndarray, turn: int) -> np.ndarray:
    """One of the 8 flips and quarter turns of a (T, S, S, C) fragment clip (`turn` 0-7;
    0 is the clip itself). Quality does not depend on which way a picture faces: training
    shows every group in a random turn (the labels of a chain do not change under it, and
    a few hundred sources look like 8 times as many layouts), and the runtime turns its
    test-time views (`vq.stages.quality`). A flip of a 32 px mini-patch keeps codec seams
    on multiples of 8 (its grid phase), so aligned fragments stay aligned."""
    t, _, _, c = clip.shape
    # Whole pixels move: the channels viewed as one element, so the strided copy moves a
    # pixel at a time, not a byte (40 views of 16 frames at 128 px: 61 -> 31 ms).
    px = np.ascontiguousarray(clip).view(np.dtype((np.void, c * clip.itemsize)))[..., 0]
    if turn & 1:
        px = px[:, :, ::-1]
    if turn & 2:
        px = px[:, ::-1]
    if turn & 4:
        px = px.transpose(0, 2, 1)
    return np.ascontiguousarray(px).view(clip.dtype).reshape(t, px.shape[1], px.shape[2], c)
