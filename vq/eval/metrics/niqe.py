"""NIQE (Mittal, Soundararajan & Bovik, 2013): a no-reference "naturalness" distance.

The classic opinion-unaware baseline: natural pictures' locally normalised luminance
(MSCN coefficients) follows a generalised Gaussian, and its neighbour products an
asymmetric one; distortions bend those shapes. 36 features per 96x96 patch (the shape and
spread of the MSCN histogram and of its four neighbour products, at full and half size)
are fitted by a multivariate Gaussian; NIQE is the distance between a test picture's
Gaussian and a pristine model's. Lower is more natural.

The pristine model is fitted here, on frames of the quality set's *training* pristine
clips (`fit_pristine`), not taken from the paper's 125 photographs: the same content
domain as the clips scored, and nothing held out is used. Patches are kept when their
sharpness (mean local spread) is at least 75 % of the sharpest patch's, as the paper does.
Scores are reported negated where "higher is better" is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vq.errors import MissingExtraError, UsageError

PATCH = 96


def _scipy():
    try:
        import scipy.ndimage
        import scipy.special
    except ImportError as e:
        raise MissingExtraError("NIQE", "eval", e) from e
    return scipy


def _luma(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return image.astype(np.float64)


def mscn(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients and the local spread."""
    nd = _scipy().ndimage
    mu = nd.gaussian_filter(luma, 7 / 6, truncate=3.0)
    sigma = np.sqrt(np.abs(nd.gaussian_filter(luma * luma, 7 / 6, truncate=3.0) - mu * mu))
    return (luma - mu) / (sigma + 1.0), sigma


_ALPHAS = np.arange(0.2, 10.0, 0.001)


def _gamma_ratio() -> np.ndarray:
    g = _scipy().special.gamma
    return g(2 / _ALPHAS) ** 2 / (g(1 / _ALPHAS) * g(3 / _ALPHAS))


def aggd(x: np.ndarray, ratio: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit by moments: (alpha, mean, left var, right var)."""
    left, right = x[x < 0], x[x >= 0]
    sl = np.sqrt(np.mean(left**2)) if left.size else 1e-6
    sr = np.sqrt(np.mean(right**2)) if right.size else 1e-6
    gamma_hat = sl / max(sr, 1e-12)
    r_hat = np.mean(np.abs(x)) ** 2 / max(np.mean(x**2), 1e-12)
    rr = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin((ratio - rr) ** 2)])
    g = _scipy().special.gamma
    mean = (sr - sl) * g(2 / alpha) / g(1 / alpha) * np.sqrt(g(1 / alpha) / g(3 / alpha))
    return alpha, float(mean), float(sl**2), float(sr**2)


def patch_features(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(patches, 36) features and each patch's sharpness, over two scales."""
    ratio = _gamma_ratio()
    feats, sharp = [], None
    for scale in (1, 2):
        img = luma if scale == 1 else _half(luma)
        m, sigma = mscn(img)
        p = PATCH // scale
        rows, cols = img.shape[0] // p, img.shape[1] // p
        if rows == 0 or cols == 0:
            raise UsageError(
                f"NIQE needs pictures of at least {PATCH}x{PATCH} px, got {luma.shape[1]}x{luma.shape[0]}"
            )
        per_scale = []
        for i in range(rows):
            for j in range(cols):
                block = m[i * p : (i + 1) * p, j * p : (j + 1) * p]
                a, _, lv, rv = aggd(block.ravel(), ratio)
                f = [a, (lv + rv) / 2]
                for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                    shifted = np.roll(block, (-dy, -dx), axis=(0, 1))
                    f.extend(aggd((block * shifted)[: p - 1, 1 : p - 1].ravel(), ratio))
                per_scale.append(f)
        feats.append(np.asarray(per_scale))
        if scale == 1:
            sharp = sigma[: rows * p, : cols * p].reshape(rows, p, cols, p).mean(axis=(1, 3)).ravel()
    return np.concatenate(feats, axis=1), sharp


def _half(luma: np.ndarray) -> np.ndarray:
    h, w = luma.shape[0] // 2 * 2, luma.shape[1] // 2 * 2
    return luma[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


@dataclass(frozen=True)
class NiqeModel:
    mean: np.ndarray  # (36,)
    cov: np.ndarray  # (36, 36)
    patches: int


def fit_pristine(images: list[np.ndarray], sharpness: float = 0.75) -> NiqeModel:
    """The multivariate Gaussian of the sharpest patches of pristine pictures."""
    kept = []
    for image in images:
        f, sharp = patch_features(_luma(image))
        kept.append(f[sharp >= sharpness * sharp.max()])
    x = np.concatenate(kept)
    if len(x) < 40:
        raise UsageError(f"NIQE's pristine model needs more patches (got {len(x)})")
    return NiqeModel(x.mean(axis=0), np.cov(x, rowvar=False), len(x))


def niqe(image: np.ndarray, model: NiqeModel) -> float:
    """Distance of `image`'s patch statistics from the pristine model (lower: better)."""
    f, _ = patch_features(_luma(image))
    mu = f.mean(axis=0)
    cov = np.cov(f, rowvar=False) if len(f) > 1 else np.zeros_like(model.cov)
    d = model.mean - mu
    return float(np.sqrt(d @ np.linalg.pinv((model.cov + cov) / 2) @ d))
