"""Rate-quality numerics of an encoding ladder: the convex hull, the rung choice, and the
device-cloud decision. Pure functions over (kbps, score) points; no media here.

The hull is Netflix's per-title construction: of all (resolution, CRF) encodes, only those
on the upper-left convex hull of the rate-quality plane are worth shipping (any point
under it is beaten by a mix of its neighbours). Choosing a rung is then a walk along the
hull: the cheapest point that reaches a quality target, or the best point within a
bitrate budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def monotone_in_crf(score: Sequence[float], height: Sequence[int], crf: Sequence[int]) -> np.ndarray:
    """Scores made non-increasing in CRF at each height (isotonic regression, pool adjacent
    violators). At one size, a coarser quantiser never makes a better picture, so a score
    that rises with CRF is the quality model's noise; pooling the offending neighbours is
    the least-squares fix (raw KVQ put Big Buck Bunny 480p CRF 33 above CRF 18)."""
    out = np.asarray(score, np.float64).copy()
    heights, crfs = np.asarray(height), np.asarray(crf)
    for h in np.unique(heights):
        idx = np.flatnonzero(heights == h)
        idx = idx[np.argsort(crfs[idx], kind="stable")]
        blocks: list[list[float]] = []  # [sum, count] per pooled block, CRF ascending
        for value in out[idx]:
            blocks.append([value, 1.0])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
                total, count = blocks.pop()
                blocks[-1][0] += total
                blocks[-1][1] += count
        out[idx] = np.concatenate([np.full(int(c), t / c) for t, c in blocks])
    return out


def upper_hull(kbps: Sequence[float], score: Sequence[float]) -> list[int]:
    """Indices of the points on the upper convex hull, cheapest first.

    Only Pareto-efficient points qualify (no other point is cheaper *and* at least as
    good), and of those only the ones where the quality gained per extra kbps keeps
    falling: a point under the chord between its neighbours is dropped.
    """
    rate = np.asarray(kbps, np.float64)
    quality = np.asarray(score, np.float64)
    if rate.shape != quality.shape or rate.ndim != 1:
        raise ValueError("kbps and score must be 1-D and of one length")
    # Cheapest first; at equal rate the better point first, so the worse one is dominated.
    order = np.lexsort((-quality, rate))
    hull: list[int] = []
    for i in order:
        if not np.isfinite(rate[i]) or not np.isfinite(quality[i]):
            continue
        if hull and quality[i] <= quality[hull[-1]]:
            continue  # dominated: costs at least as much for no more quality
        # Monotone chain: drop the last point while it lies on or under the new chord.
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (rate[b] - rate[a]) * (quality[i] - quality[a]) - (quality[b] - quality[a]) * (
                rate[i] - rate[a]
            )
            if cross < 0:
                break
            hull.pop()
        hull.append(int(i))
    return hull


def full_height_rung(rungs: Sequence[dict], crf: int) -> int:
    """Index of the rung a fixed ladder ships: `crf` at the tallest height of the grid."""
    top = max(r["height"] for r in rungs)
    for i, r in enumerate(rungs):
        if r["height"] == top and r["crf"] == crf:
            return i
    raise ValueError(f"no full-height rung at CRF {crf}")


def choose_rung(
    kbps: Sequence[float],
    score: Sequence[float],
    hull: Sequence[int],
    target_score: float | None = None,
    max_kbps: float | None = None,
    max_drop: float | None = None,
    anchor: int | None = None,
    kbps_per_point: float | None = None,
) -> tuple[int, str]:
    """(index, why) of the hull point to ship.

    With `target_score`: the cheapest hull point that reaches it (the best one if none
    does). With `max_kbps`: the best hull point within the budget (the cheapest if none
    fits). With `max_drop`: the cheapest hull point within `max_drop` of the best rung's
    score -- a target relative to what this upload can look like, which needs only the
    quality model's ordering of one video's encodes, not its absolute scale across
    videos. With `kbps_per_point` (a price: the kbps one score point is worth): the hull
    point that maximises price x score - kbps, where buying the next point up the hull
    would cost more than the price. This is the Lagrangian form of Netflix's dynamic
    optimizer: one price for a whole catalogue spends bits where they buy the most
    quality, which is how the least total bitrate at a mean quality is reached; it needs
    the score's differences between one video's encodes to mean the same on every video,
    not its level. Exactly one of the four must be given.

    With `anchor` (a rung index), `max_drop` counts from that rung's score instead of the
    best: the cheapest rung of all, on the hull or not, that is at least as good as, say,
    the full-height CRF 23 encode a fixed ladder ships (so never dearer than the anchor
    unless a negative drop asks for better than it). Also only an ordering of one video's
    encodes; where nothing reaches, the best hull point.
    """
    if sum(x is not None for x in (target_score, max_kbps, max_drop, kbps_per_point)) != 1:
        raise ValueError("give exactly one of target_score, max_kbps, max_drop and kbps_per_point")
    if anchor is not None and max_drop is None:
        raise ValueError("an anchor rung needs max_drop")
    if not hull:
        raise ValueError("no rung to choose from")
    if max_drop is not None:
        best = max(score[i] for i in hull)
        if anchor is None:
            index = next(i for i in hull if score[i] >= best - max_drop)
            return index, f"cheapest rung within {max_drop:g} of the best score ({best:.3f})"
        level = score[anchor] - max_drop
        candidates = sorted(range(len(kbps)), key=lambda i: (kbps[i], -score[i]))
        reaching = [i for i in candidates if score[i] >= level]
        if not reaching:
            best_i = max(hull, key=lambda i: score[i])
            return best_i, f"no rung scores {-max_drop:g} above rung {anchor} ({score[anchor]:.3f}): the best"
        why = f"cheapest rung scoring at least rung {anchor}'s {score[anchor]:.3f}"
        if max_drop:
            why += f" less {max_drop:g}" if max_drop > 0 else f" plus {-max_drop:g}"
        return reaching[0], why
    if kbps_per_point is not None:
        # On a tie the cheaper point: `max` keeps the first, and the hull runs cheapest first.
        index = max(hull, key=lambda i: kbps_per_point * score[i] - kbps[i])
        return index, f"hull rung where one more score point would cost over {kbps_per_point:g} kbps"
    if target_score is not None:
        reaching = [i for i in hull if score[i] >= target_score]
        if reaching:
            return reaching[0], f"cheapest rung with score >= {target_score:g}"
        return hull[-1], f"no rung reaches score {target_score:g}: the best one"
    assert max_kbps is not None
    within = [i for i in hull if kbps[i] <= max_kbps]
    if within:
        return within[-1], f"best rung within {max_kbps:g} kbps"
    return hull[0], f"no rung fits {max_kbps:g} kbps: the cheapest one"


def client_decision(
    kbps: Sequence[float],
    score: Sequence[float],
    hull: Sequence[int],
    chosen: int,
    post_scores: dict[str, dict[int, float]],
    margin: float,
) -> dict | None:
    """The device-cloud decision: ship the next rung down and let the phone post-process it?

    `post_scores[mode][i]` is rung i's score after the client's post-processing `mode`.
    The hull rung just below the chosen one (the next cheaper) is shipped instead when,
    post-processed, it beats the chosen rung's score by at least `margin` (of the client's
    modes, the best); None when it does not. Only the next rung, as the seed has it ("下发次
    一级码率的视频": ship the video one rate level down): a phone's sharpening or light SR
    cannot give back what several CRF steps took, and a no-reference score that likes
    sharpened edges says it can (held-out: a sharpened rung two steps down, chosen over
    the rung it replaced, lost 13.6 VMAF).
    """
    cheaper = [i for i in hull if kbps[i] < kbps[chosen]]
    best = None
    if cheaper:
        i = max(cheaper, key=lambda j: kbps[j])
        beating = {mode: s[i] for mode, s in post_scores.items() if i in s and s[i] >= score[chosen] + margin}
        if beating:
            best = (i, max(beating, key=beating.get))
    if best is None:
        return None
    i, mode = best
    return {
        "ship": i,
        "post": mode,
        "replaces": chosen,
        "post_score": float(post_scores[mode][i]),
        "replaced_score": float(score[chosen]),
        "saved_kbps": float(kbps[chosen] - kbps[i]),
        "saved_fraction": float(1.0 - kbps[i] / kbps[chosen]),
    }
