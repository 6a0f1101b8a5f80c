"""Antialiased resize that matches Pillow (bilinear and bicubic), in vectorised numpy.

The copy-detection seed notes that plain interpolation (sampling the source at a few
points) looks worse than Pillow's resize when shrinking frames, because Pillow widens
the filter by the scale factor: every source pixel under an output pixel contributes.
This module does the same, as two separable passes, with the weights Pillow uses:

* the filter is centred on ``(x + 0.5) * scale`` in source pixels, its support widened
  by ``scale`` when shrinking, clipped at the borders and normalised per output pixel;
* bilinear is the triangle filter (support 1), bicubic the Keys cubic with a = -0.5
  (support 2);
* like Pillow, the first pass is rounded to 8 bits (and clipped) before the second,
  which is what keeps the output within one grey level of Pillow's.

Pass order matters once the 8-bit intermediate clips bicubic overshoot. Pillow up to 12
always ran the horizontal pass first; Pillow 13 picks the order by an internal cost
estimate. `pass_order` reproduces what Pillow 13.0 was measured to do: vertical first
when the width grows while the height shrinks (all 194 random cases tried); for pure
reductions, vertical first when the horizontal-first cost (half a unit per horizontal
tap, a unit per vertical tap) exceeds the vertical-first one, which picked Pillow's order
in 382 of 400 random reductions. Each pass is bit-exact with Pillow's; the rare wrong
order costs a few grey levels where bicubic overshoot clips. `tests/test_resize.py`
checks both and `BENCHMARKS.md` records the figures.

Filter windows are cached per (in, out, filter); each pass is one vectorised gather and
multiply-add per filter tap, over the whole batch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

FILTERS = ("bilinear", "bicubic")


def _triangle(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


_KERNELS = {"bilinear": (_triangle, 1.0), "bicubic": (_keys_cubic, 2.0)}
PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed-point precision for 8-bit images


@lru_cache(maxsize=64)
def resize_weights(in_size: int, out_size: int, method: str) -> np.ndarray:
    """(out_size, in_size) weights, in units of 2**-PRECISION_BITS, for one axis."""
    if method not in _KERNELS:
        raise ValueError(f"resize method must be one of {FILTERS}, got {method!r}")
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1 (got {in_size} -> {out_size})")
    kernel, support = _KERNELS[method]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    centres = (np.arange(out_size) + 0.5) * scale
    # Pillow's window: [int(centre - support + 0.5), int(centre + support + 0.5)) clipped.
    lo = np.clip((centres - support + 0.5).astype(np.int64), 0, in_size)
    hi = np.clip((centres + support + 0.5).astype(np.int64), 0, in_size)
    src = np.arange(in_size)
    inside = (src[None, :] >= lo[:, None]) & (src[None, :] < hi[:, None])
    w = kernel((src[None, :] - centres[:, None] + 0.5) / filterscale) * inside
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total != 0)
    # Pillow's 8-bit path quantises each weight to PRECISION_BITS of fixed point (rounding
    # half away from zero) and sums integers; doing the same reproduces its rounding of
    # near-ties exactly. Integer-valued float64 sums stay exact (< 2**53).
    fixed = np.trunc(w * (1 << PRECISION_BITS) + np.where(w < 0, -0.5, 0.5))
    fixed.flags.writeable = False
    return fixed


def resize(
    image: np.ndarray, size: tuple[int, int], method: str = "bilinear", engine: str = "pillow"
) -> np.ndarray:
    """Resize uint8 (H, W, C) or (N, H, W, C) to `size` = (width, height), as Pillow would.

    `engine="pillow"` calls Pillow's C resampler per frame (the fast path on a CPU:
    ~3 ms for 720p -> 224 against ~30 ms here); `engine="numpy"` is this module's
    vectorised implementation of the same arithmetic, the reference for batched or GPU
    ports (the seed runs its Pillow-style resize on the GPU).
    """
    if image.dtype != np.uint8 or image.ndim not in (3, 4):
        raise ValueError(f"resize expects uint8 HWC or NHWC, got {image.dtype} {image.shape}")
    if method not in _KERNELS:
        raise ValueError(f"resize method must be one of {FILTERS}, got {method!r}")
    if engine == "pillow":
        return _resize_pillow(image, (int(size[0]), int(size[1])), method)
    if engine != "numpy":
        raise ValueError(f"engine must be 'pillow' or 'numpy', got {engine!r}")
    batched = image if image.ndim == 4 else image[None]
    out_w, out_h = int(size[0]), int(size[1])
    _, in_h, in_w, _ = batched.shape
    x = batched.astype(np.float64)
    for axis in pass_order(in_w, in_h, out_w, out_h):
        if axis == "x" and out_w != in_w:
            x = _apply_taps(x, 2, *resize_taps(in_w, out_w, method))
        elif axis == "y" and out_h != in_h:
            x = _apply_taps(x, 1, *resize_taps(in_h, out_h, method))
        else:
            continue
        # each pass lands in 8 bits: (sum + half) >> PRECISION_BITS, clipped, as in Pillow
        x = np.clip(np.floor((x + (1 << (PRECISION_BITS - 1))) / (1 << PRECISION_BITS)), 0, 255)
    out = x.astype(np.uint8)
    return out if image.ndim == 4 else out[0]


def _resize_pillow(image: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    from PIL import Image

    filt = Image.BILINEAR if method == "bilinear" else Image.BICUBIC
    frames = image if image.ndim == 4 else image[None]
    out = np.empty((len(frames), size[1], size[0], frames.shape[-1]), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize(size, filt))
    return out if image.ndim == 4 else out[0]


@lru_cache(maxsize=64)
def resize_taps(in_size: int, out_size: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The filter window of each output pixel as (out, taps) source indices and weights.

    Each output reads only the `taps` source pixels under its filter (13 for a bilinear
    1280 -> 224 shrink), so a pass is `taps` vectorised gathers instead of a dense
    (out x in) product.
    """
    dense = resize_weights(in_size, out_size, method)
    nonzero = dense != 0
    first = np.argmax(nonzero, axis=1)
    taps = int(nonzero.sum(axis=1).max()) if nonzero.any() else 1
    index = np.minimum(first[:, None] + np.arange(taps)[None, :], in_size - 1)
    weight = np.take_along_axis(dense, index, axis=1)
    # Positions past the window (clamped onto the last column) must not count twice.
    beyond = first[:, None] + np.arange(taps)[None, :] >= in_size
    weight = np.where(beyond, 0.0, weight)
    index.flags.writeable = False
    weight.flags.writeable = False
    return index, weight


def _apply_taps(x: np.ndarray, axis: int, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """sum_k x.take(index[:, k], axis) * weight[:, k], broadcast along `axis`."""
    shape = [1] * x.ndim
    shape[axis] = index.shape[0]
    out = np.zeros((*x.shape[:axis], index.shape[0], *x.shape[axis + 1 :]), np.float64)
    for k in range(index.shape[1]):
        out += np.take(x, index[:, k], axis=axis) * weight[:, k].reshape(shape)
    return out


def pass_order(in_w: int, in_h: int, out_w: int, out_h: int) -> tuple[str, str]:
    """("x", "y") for horizontal first, ("y", "x") for vertical first, as Pillow 13 does."""
    if out_w > in_w and out_h < in_h:
        return ("y", "x")
    if out_w < in_w and out_h < in_h:
        taps_x, taps_y = _taps(in_w, out_w), _taps(in_h, out_h)
        cost_xy = 0.5 * taps_x * in_h + taps_y * out_w
        cost_yx = taps_y * in_w + 0.5 * taps_x * out_h
        if cost_xy > cost_yx:
            return ("y", "x")
    return ("x", "y")


def _taps(in_size: int, out_size: int) -> int:
    """Total filter taps of one pass (the bicubic window, as Pillow sizes it)."""
    return int(np.count_nonzero(resize_weights(in_size, out_size, "bicubic")))
