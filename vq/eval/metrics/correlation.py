"""Correlation metrics for quality scores, as VQA papers and the NTIRE 2024 KVQ challenge
report them.

* `srocc` / `krocc`: Spearman and Kendall rank correlation (monotonic agreement);
* `plcc`: Pearson correlation *after* mapping predictions through the 4-parameter
  logistic the VQEG protocol fits (so a model is not penalised for a monotonic but
  non-linear scale); `plcc(..., fit=False)` is the raw coefficient;
* `rank_accuracy`: within groups whose true order is known (levels of one degradation
  chain), the share of pairs a model orders the right way;
* `within_group_srocc`: the mean SROCC inside groups (clips of one source), the figure
  a no-reference score would reach if it knew each source's own level;
  `between_group_share`: how much of the target's variance lies between groups;
* `mapped_spread`: how far apart a score puts chosen clips (the clean ones), in the
  target's units after the logistic: content bias where the target says "alike";
* `kvq_score`: the NTIRE 2024 KVQ challenge's 0.45 SROCC + 0.45 PLCC + 0.1 rank accuracy.

scipy does the statistics and the fit (`vq[eval]`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from vq.errors import MissingExtraError, UsageError


def _scipy():
    try:
        import scipy.optimize
        import scipy.stats
    except ImportError as e:
        raise MissingExtraError("correlation metrics", "eval", e) from e
    return scipy


def _pair(pred: Sequence[float], target: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.shape != t.shape or p.ndim != 1:
        raise UsageError(f"predictions {p.shape} and targets {t.shape} must be equal-length vectors")
    if len(p) < 3:
        raise UsageError(f"correlation needs at least 3 items, got {len(p)}")
    return p, t


def srocc(pred: Sequence[float], target: Sequence[float]) -> float:
    p, t = _pair(pred, target)
    return float(_scipy().stats.spearmanr(p, t).statistic)


def krocc(pred: Sequence[float], target: Sequence[float]) -> float:
    p, t = _pair(pred, target)
    return float(_scipy().stats.kendalltau(p, t).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG's monotonic logistic: b2 at -inf, b1 at +inf, centre b3, width |b4|."""
    with np.errstate(over="ignore"):  # exp overflowing to inf is the logistic's 0 limit
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / (abs(b4) + 1e-12))) + b2


def fit_logistic(pred: Sequence[float], target: Sequence[float]) -> np.ndarray:
    """Parameters of `logistic4` mapping `pred` onto `target` (least squares)."""
    p, t = _pair(pred, target)
    start = [t.max(), t.min(), float(np.median(p)), float(np.std(p)) or 1.0]
    scipy = _scipy()
    try:
        with warnings.catch_warnings():  # a perfect fit has no covariance estimate: fine here
            warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
            params, _ = scipy.optimize.curve_fit(logistic4, p, t, p0=start, maxfev=20000)
    except RuntimeError:  # no convergence: a linear scale is the honest fallback
        return np.asarray(start)
    return params


def mapped_onto(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`pred` in the target's units: through the logistic fitted onto it (as PLCC maps it)."""
    return logistic4(pred, *fit_logistic(pred, target))


def plcc(pred: Sequence[float], target: Sequence[float], fit: bool = True) -> float:
    p, t = _pair(pred, target)
    if fit and len(p) > 4:  # four parameters need five points; below that, the raw coefficient
        p = mapped_onto(p, t)
    if np.std(p) == 0 or np.std(t) == 0:
        return 0.0
    return float(np.corrcoef(p, t)[0, 1])


def rank_accuracy(
    scores: Sequence[float],
    truth: Sequence[float],
    groups: Sequence[str],
    apart: Sequence[float] | None = None,
    min_gap: float = 0.0,
) -> float:
    """Share of within-group pairs with different true quality that `scores` order the
    same way (ties in `scores` count half). With `apart` (a value per item, say VMAF),
    only the pairs whose values differ by at least `min_gap` count."""
    s, t = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
    a = np.zeros_like(s) if apart is None else np.asarray(apart, np.float64)
    g = np.asarray(groups)
    right = total = 0.0
    for group in np.unique(g):
        idx = np.flatnonzero(g == group)
        ds = np.sign(s[idx, None] - s[None, idx])
        dt = np.sign(t[idx, None] - t[None, idx])
        upper = np.triu(np.ones((len(idx), len(idx)), bool), 1) & (dt != 0)
        upper &= np.abs(a[idx, None] - a[None, idx]) >= min_gap
        total += upper.sum()
        right += np.sum(ds[upper] == dt[upper]) + 0.5 * np.sum(ds[upper] == 0)
    if total == 0:
        raise UsageError(
            "rank accuracy needs groups with at least two different true qualities"
            + (f" at least {min_gap:g} apart" if min_gap > 0 else "")
        )
    return float(right / total)


def within_group_srocc(pred: Sequence[float], target: Sequence[float], groups: Sequence[str]) -> float:
    """Mean SROCC over the groups of at least 3 items whose targets differ.

    A full-reference label scores every source's pristine clip alike, however good the
    source looks; a no-reference model cannot know that level. Inside one source the level
    is shared, so this separates "orders one source's versions" from "places sources"."""
    p, t = _pair(pred, target)
    g = np.asarray(groups)
    # a score that is constant over one source orders nothing there: 0, not NaN
    values = [
        srocc(p[g == group], t[g == group]) if np.ptp(p[g == group]) > 0 else 0.0
        for group in np.unique(g)
        if np.sum(g == group) >= 3 and np.ptp(t[g == group]) > 0
    ]
    if not values:
        raise UsageError("within-group SROCC needs a group of at least 3 items with different targets")
    return float(np.mean(values))


def within_group_krocc(pred: Sequence[float], target: Sequence[float], groups: Sequence[str]) -> float | None:
    """Mean Kendall tau over the groups of at least 3 items where both the prediction and
    the target vary (one video's ladder rungs against VMAF); None where no group has an
    order to compare. Unlike `within_group_srocc`, a constant score is left out rather
    than counted as 0: a ladder figure over a handful of videos says "no order" plainly."""
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    g = np.asarray(groups)
    values = [
        krocc(p[g == group], t[g == group])
        for group in np.unique(g)
        if np.sum(g == group) >= 3 and np.ptp(p[g == group]) > 0 and np.ptp(t[g == group]) > 0
    ]
    return float(np.mean(values)) if values else None


def between_group_share(target: Sequence[float], groups: Sequence[str]) -> float:
    """Share of the target's variance explained by the group means (0: all within groups)."""
    t, g = np.asarray(target, np.float64), np.asarray(groups)
    if t.shape != g.shape or t.var() == 0:
        raise UsageError("between-group share needs one group per target and targets that differ")
    _, means, member = _group_means(t, g)
    return float(means[member].var() / t.var())


def _group_means(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group names, each group's mean of `values`, each value's group index)."""
    names, member = np.unique(groups, return_inverse=True)
    return names, np.bincount(member, values) / np.bincount(member), member


def mapped_spread(pred: Sequence[float], target: Sequence[float], members: Sequence[int]) -> float:
    """Standard deviation of `pred` at `members`, in the target's units: `pred` mapped by the
    logistic fitted over all clips (the mapping PLCC uses). For the clean clip of each
    source, which VMAF rates about alike, it is how many VMAF points of content bias a
    no-reference score carries."""
    p, t = _pair(pred, target)
    picked = np.asarray(members, dtype=int)
    if len(picked) < 2 or len(p) < 5:
        raise UsageError("a mapped spread needs two members and five clips to fit the mapping on")
    return float(np.std(mapped_onto(p, t)[picked]))


def mapped_offsets(pred: Sequence[float], target: Sequence[float], groups: Sequence[str]) -> dict[str, float]:
    """Each group's mean of `pred` mapped onto the target (the logistic PLCC uses) minus the
    target, in the target's units: where a no-reference score puts a whole source too low
    (negative) or too high, the content bias `mapped_spread` sums up, named by source."""
    p, t = _pair(pred, target)
    g = np.asarray(groups)
    if g.shape != p.shape or len(p) < 5:
        raise UsageError("mapped offsets need one group per score and five clips to fit the mapping on")
    names, means, _ = _group_means(mapped_onto(p, t) - t, g)
    return {str(n): float(m) for n, m in zip(names, means, strict=True)}


def offset_free_srocc(pred: Sequence[float], target: Sequence[float], groups: Sequence[str]) -> float:
    """SROCC over all items once each group is put where the target puts it: the score
    keeps its order and one common slope inside every group, and takes the group's mean
    target as its level (a fixed-effects fit). What the score would reach if it knew where
    every source sits: the ceiling that curing content bias alone can lift SROCC to."""
    p, t = _pair(pred, target)
    g = np.asarray(groups)
    if g.shape != p.shape or len(p) < 3:
        raise UsageError("an offset-free SROCC needs one group per score and three items")
    _, p_means, member = _group_means(p, g)
    _, t_means, _ = _group_means(t, g)
    p_in, t_in = p - p_means[member], t - t_means[member]
    slope = float(p_in @ t_in / (p_in @ p_in)) if p_in.any() else 0.0
    return srocc(slope * p_in + t_means[member], t)


def kvq_score(srocc_value: float, plcc_value: float, rank_acc: float) -> float:
    """The NTIRE 2024 KVQ challenge's final score."""
    return 0.45 * srocc_value + 0.45 * plcc_value + 0.1 * rank_acc
