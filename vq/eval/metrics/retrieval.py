"""Retrieval metrics: pairs of frames (ROC, TPR at a fixed FPR) and copied segments.

**Pairs.** Positives are (original, edited copy) similarities, negatives (original,
another picture). `roc_auc` is Mann-Whitney U with ties counted half; `tpr_at_fpr` is the
share of positives above the threshold that lets at most `fpr` of negatives through (the
operating point a platform runs at: few false accusations); `best_accuracy` is the best
balanced accuracy over thresholds.

**Segments** (copy detection): video-level P/R/F1, VSC 2022 segment µAP, VCSL segment F1.
A match is (query_id, ref_id, query_start, query_end, ref_start, ref_end, score) in
seconds; ground truth has the same shape (score unused). The two segment metrics follow
their benchmarks' definitions (re-implemented here from the papers' descriptions):

* **VSC 2022 matching track** (Pizzi et al., `vsc/metrics.py::match_metric`): predictions
  sorted by score, added group by group (equal scores together). Per (query, ref) pair,
  the union of predicted intervals is intersected with the union of ground-truth intervals
  on each axis, counting only ground truths that some prediction of the pair overlaps in
  2-D. Precision and recall per axis are summed over pairs; the curve point is
  P = sqrt(Pq·Pr), R = sqrt(Rq·Rr), and µAP = Σ P·ΔR.
* **VCSL** (He et al., CVPR 2022): per pair, on each axis, the length of predicted boxes
  covered by overlapping ground truth over total predicted length (precision) and the
  converse (recall); a pair's precision is the product of its two axes. Precision is
  averaged over pairs with predictions, recall over pairs with ground truth, F1 from both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from math import sqrt
from typing import Any

import numpy as np

# -- pairs ------------------------------------------------------------------------------------


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg), ties counted half."""
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks over ties
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inverse, ranks)
    ranks = (sums / counts)[inverse]
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float = 0.01) -> float:
    """Share of positives above the threshold that lets at most `fpr` of negatives through."""
    threshold = np.quantile(neg, 1.0 - fpr, method="higher")
    return float(np.mean(pos > threshold))


def best_accuracy(pos: np.ndarray, neg: np.ndarray) -> float:
    """Best balanced accuracy over thresholds: (TPR + TNR) / 2."""
    thresholds = np.unique(np.concatenate([pos, neg]))
    tpr = (pos[None, :] >= thresholds[:, None]).mean(axis=1)
    tnr = (neg[None, :] < thresholds[:, None]).mean(axis=1)
    return float(np.max((tpr + tnr) / 2))


# -- segments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    query_id: str
    ref_id: str
    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    score: float = 1.0

    @property
    def pair(self) -> tuple[str, str]:
        return self.query_id, self.ref_id

    def span(self, axis: int) -> tuple[float, float]:
        return (self.query_start, self.query_end) if axis == 0 else (self.ref_start, self.ref_end)

    def overlaps(self, other: Match) -> bool:
        return _overlap(self.span(0), other.span(0)) > 0 and _overlap(self.span(1), other.span(1)) > 0


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def union_length(spans: Iterable[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals."""
    total, end = 0.0, float("-inf")
    for s, e in sorted(spans):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


def intersection_length(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Length of (union of a) ∩ (union of b): |A| + |B| - |A ∪ B|."""
    if not a or not b:
        return 0.0
    return union_length(a) + union_length(b) - union_length([*a, *b])


def segment_ap(truth: Sequence[Match], predictions: Sequence[Match]) -> float:
    """VSC 2022 matching-track micro average precision over time (see module doc)."""
    gts: dict[tuple[str, str], list[Match]] = defaultdict(list)
    for g in truth:
        gts[g.pair].append(g)
    gt_total = [sum(union_length(g.span(ax) for g in group) for group in gts.values()) for ax in (0, 1)]
    if min(gt_total) <= 0:
        return 0.0
    preds_by_pair: dict[tuple[str, str], list[Match]] = defaultdict(list)
    pair_inter: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    pair_total: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    inter, total = [0.0, 0.0], [0.0, 0.0]
    ap = recall = 0.0
    ordered = sorted(predictions, key=lambda m: -m.score)
    for _, group in groupby(ordered, key=lambda m: m.score):
        for p in group:
            preds = preds_by_pair[p.pair]
            preds.append(p)
            considered = [g for g in gts.get(p.pair, []) if any(g.overlaps(q) for q in preds)]
            for ax in (0, 1):
                spans = [q.span(ax) for q in preds]
                new_inter = intersection_length(spans, [g.span(ax) for g in considered])
                new_total = union_length(spans)
                inter[ax] += new_inter - pair_inter[p.pair][ax]
                total[ax] += new_total - pair_total[p.pair][ax]
                pair_inter[p.pair][ax], pair_total[p.pair][ax] = new_inter, new_total
        new_recall = sqrt(inter[0] / gt_total[0] * inter[1] / gt_total[1])
        precision = sqrt((inter[0] / total[0]) * (inter[1] / total[1])) if min(total) > 0 else 0.0
        ap += precision * (new_recall - recall)
        recall = new_recall
    return ap


def _covered(boxes: Sequence[Match], others: Sequence[Match], axis: int) -> float:
    """Σ over `boxes` of the length, on `axis`, of their intersection with the `others` they
    overlap in 2-D (VCSL's true-positive length)."""
    total = 0.0
    for b in boxes:
        hits = [o for o in others if b.overlaps(o)]
        lo, hi = b.span(axis)
        pieces = [(max(lo, o.span(axis)[0]), min(hi, o.span(axis)[1])) for o in hits]
        total += union_length([p for p in pieces if p[1] > p[0]])
    return total


def vcsl_pair(truth: Sequence[Match], predictions: Sequence[Match]) -> tuple[float | None, float | None]:
    """(precision, recall) of one pair; None where undefined (no predictions / no truth)."""
    precision = recall = None
    if predictions:
        precision = 1.0
        for ax in (0, 1):
            length = sum(p.span(ax)[1] - p.span(ax)[0] for p in predictions)
            precision *= _covered(predictions, truth, ax) / length if length > 0 else 0.0
    if truth:
        recall = 1.0
        for ax in (0, 1):
            length = sum(g.span(ax)[1] - g.span(ax)[0] for g in truth)
            recall *= _covered(truth, predictions, ax) / length if length > 0 else 0.0
    return precision, recall


def vcsl_f1(truth: Sequence[Match], predictions: Sequence[Match]) -> dict[str, float]:
    """VCSL's overall segment-level precision, recall and F1 (see module doc)."""
    pairs: dict[tuple[str, str], tuple[list[Match], list[Match]]] = defaultdict(lambda: ([], []))
    for g in truth:
        pairs[g.pair][0].append(g)
    for p in predictions:
        pairs[p.pair][1].append(p)
    ps, rs = [], []
    for gts, preds in pairs.values():
        p, r = vcsl_pair(gts, preds)
        if p is not None:
            ps.append(p)
        if r is not None:
            rs.append(r)
    precision = sum(ps) / len(ps) if ps else 0.0
    recall = sum(rs) / len(rs) if rs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def video_prf(truth_pairs: set[tuple[str, str]], predicted_pairs: set[tuple[str, str]]) -> dict[str, Any]:
    """Video-level: is (query, ref) a copy pair?"""
    tp = len(truth_pairs & predicted_pairs)
    fp = len(predicted_pairs - truth_pairs)
    fn = len(truth_pairs - predicted_pairs)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
