"""Clean pictures of the kinds the quality model misplaces: darker, flatter and smoother
versions of training photographs.

Quality labels are VMAF against each source's own pristine clip, so every clean clip is
labelled the same (about 98) whatever it shows. A no-reference model can only learn that a
dark, hazy or featureless picture is not a degraded one from clean examples of such
pictures, and the held-out bench shows it has too few: its clean smooth and dark sources
are put 16-28 VMAF points low (BENCHMARKS, "where the held-out error is"). These functions
make such pictures from training photographs without adding anything a degradation chain
adds: tone curves and native-resolution crops only (no resampling, blur or noise), and tone
curves no steeper than 1, so no level is skipped (no banding is made).

Everything is a function of the picture and the seed; `plan_variants` draws only from the
sources it is given, which the caller restricts to training sources.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vq.synth.pixel import chroma_matrix

KINDS = ("dark", "flat", "smooth")
LUMA = np.array([0.299, 0.587, 0.114])
MIN_CROP_SIDE = 256  # a smooth crop keeps at least this many pixels on its short side


def darken(image: np.ndarray, gamma: float, gain: float) -> np.ndarray:
    """A night-like tone curve, ``255 * gain * (x / 255) ** gamma``, as a lookup table.
    Its steepest slope is ``gain * gamma`` (at white); keep it <= 1 so no level is skipped."""
    levels = np.arange(256) / 255.0
    lut = np.round(255.0 * gain * levels**gamma).astype(np.uint8)
    return lut[image]


def flatten(image: np.ndarray, contrast: float, saturation: float) -> np.ndarray:
    """A hazy, low-contrast look: colours pulled towards each pixel's grey by `saturation`,
    then every value towards the picture's mean luma by `contrast` (both in (0, 1])."""
    x = image.astype(np.float32)
    mean = float((x @ LUMA.astype(np.float32)).mean())
    x = x @ chroma_matrix(0.0, saturation).T  # chroma scaled in YIQ, luma kept
    return np.clip(np.round(mean + contrast * (x - mean)), 0, 255).astype(np.uint8)


def detail_map(image: np.ndarray) -> np.ndarray:
    """|Laplacian| of the luma (4-neighbour), same size as the picture (edges replicated)."""
    y = np.pad(image.astype(np.float32) @ LUMA.astype(np.float32), 1, mode="edge")
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]
    return np.abs(lap)


def smoothest_window(image: np.ndarray, fraction: float, steps: int = 16) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the window, `fraction` of each side, with the least mean detail among
    a `steps` x `steps` grid of positions (summed-area table: one pass over the picture)."""
    h, w = image.shape[:2]
    ww, wh = max(1, int(w * fraction)), max(1, int(h * fraction))
    table = np.pad(detail_map(image).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    xs = np.unique(np.linspace(0, w - ww, steps).round().astype(int))
    ys = np.unique(np.linspace(0, h - wh, steps).round().astype(int))
    y0, x0 = np.meshgrid(ys, xs, indexing="ij")
    sums = table[y0 + wh, x0 + ww] - table[y0, x0 + ww] - table[y0 + wh, x0] + table[y0, x0]
    i, j = np.unravel_index(np.argmin(sums), sums.shape)
    return int(xs[j]), int(ys[i]), ww, wh


def make_variant(image: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """One clean variant of `image` and the exact parameters that made it."""
    if kind == "dark":
        gamma = float(rng.uniform(1.6, 2.4))
        gain = float(rng.uniform(0.6, 1.0)) / gamma  # steepest slope 0.6-1.0: no skipped level
        return darken(image, gamma, gain), {"kind": kind, "gamma": gamma, "gain": gain}
    if kind == "flat":
        contrast, saturation = float(rng.uniform(0.45, 0.75)), float(rng.uniform(0.5, 0.9))
        return flatten(image, contrast, saturation), {
            "kind": kind,
            "contrast": contrast,
            "saturation": saturation,
        }
    if kind == "smooth":
        # Half of each side, or more where that would leave a short side under MIN_CROP_SIDE.
        fraction = min(1.0, max(0.5, MIN_CROP_SIDE / min(image.shape[:2])))
        x, y, w, h = smoothest_window(image, fraction)
        crop = np.ascontiguousarray(image[y : y + h, x : x + w])
        return crop, {"kind": kind, "window": [x, y, w, h]}
    raise ValueError(f"unknown variant kind {kind!r}; expected one of {', '.join(KINDS)}")


def plan_variants(names: list[str], per_kind: int, seed: int) -> list[tuple[str, str]]:
    """(source name, kind) pairs: `per_kind` of each kind, each from a different source,
    drawn from `names` by `seed` (fewer where there are not enough sources)."""
    order = np.random.default_rng(seed).permutation(sorted(names))
    picked = order[: per_kind * len(KINDS)]
    return [(str(name), KINDS[i % len(KINDS)]) for i, name in enumerate(picked)]
