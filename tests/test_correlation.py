"""vq.eval.metrics.correlation: hand-checked values and the properties the metrics promise."""

from __future__ import annotations

import numpy as np
import pytest

from vq.errors import UsageError
from vq.eval.metrics.correlation import (
    between_group_share,
    fit_logistic,
    krocc,
    kvq_score,
    logistic4,
    mapped_offsets,
    mapped_spread,
    offset_free_srocc,
    plcc,
    rank_accuracy,
    srocc,
    within_group_srocc,
)


def test_rank_correlations_on_known_orders():
    truth = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert srocc([10, 20, 30, 40, 50], truth) == pytest.approx(1.0)
    assert srocc([50, 40, 30, 20, 10], truth) == pytest.approx(-1.0)
    # one adjacent swap: Spearman 1 - 6*2/(5*24) = 0.9; Kendall (9 - 1) / 10 = 0.8
    assert srocc([1, 3, 2, 4, 5], truth) == pytest.approx(0.9)
    assert krocc([1, 3, 2, 4, 5], truth) == pytest.approx(0.8)


def test_plcc_after_the_logistic_forgives_a_monotonic_scale():
    x = np.linspace(-3, 3, 40)
    truth = 1 + 4 / (1 + np.exp(-2 * x))  # a sigmoid in [1, 5]
    assert plcc(x, truth, fit=False) < 0.97  # a straight line does not fit it
    assert plcc(x, truth) > 0.999  # the fitted logistic does
    params = fit_logistic(x, truth)
    np.testing.assert_allclose(logistic4(x, *params), truth, atol=1e-3)


def test_rank_accuracy_counts_pairs_within_groups_only():
    scores = [3.0, 2.0, 1.0, 1.0, 2.0]
    truth = [3.0, 2.0, 1.0, 1.0, 2.0]
    groups = ["a", "a", "a", "b", "b"]
    assert rank_accuracy(scores, truth, groups) == 1.0
    # reverse group b: 3 pairs in a right, 1 pair in b wrong -> 3/4
    assert rank_accuracy([3, 2, 1, 2, 1], truth, groups) == 0.75
    # a tie in the scores counts half
    assert rank_accuracy([3, 2, 1, 1, 1], truth, groups) == pytest.approx(3.5 / 4)
    with pytest.raises(UsageError):
        rank_accuracy([1, 2], [1, 1], ["a", "a"])
    # Pairs closer than min_gap in `apart` do not count: a's two pairs with its last item, b's pair.
    apart = [10.0, 8.0, 0.0, 0.0, 9.0]
    assert rank_accuracy([3, 2, 1, 2, 1], truth, groups, apart, min_gap=5.0) == pytest.approx(2 / 3)
    with pytest.raises(UsageError, match="apart"):
        rank_accuracy(scores, truth, groups, apart, min_gap=100.0)


def test_within_group_srocc_ignores_where_the_groups_sit():
    # each source's versions are ordered right, but source b's level is far off: overall
    # SROCC suffers, the within-source figure does not
    truth = [5.0, 4.0, 3.0, 5.0, 4.0, 3.0]
    pred = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    groups = ["a", "a", "a", "b", "b", "b"]
    assert srocc(pred, truth) < 0.6
    assert within_group_srocc(pred, truth, groups) == pytest.approx(1.0)
    # one group reversed: the mean of +1 and -1; groups too small or flat do not count
    assert within_group_srocc([1, 2, 3, 5, 4, 3, 9, 9], [*truth, 1, 2], [*groups, "c", "c"]) == pytest.approx(
        0.0
    )
    with pytest.raises(UsageError):
        within_group_srocc([1, 2, 3], [1, 1, 1], ["a", "a", "a"])
    # a score constant over one source orders nothing there (0), and the mean stays finite
    assert within_group_srocc([1, 2, 3, 7, 7, 7], truth, groups) == pytest.approx(-0.5)
    # between-group share: all of it when groups are constant, none when group means agree
    assert between_group_share([1, 1, 3, 3], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert between_group_share([1, 3, 1, 3], ["a", "a", "b", "b"]) == pytest.approx(0.0)


def test_kvq_score_weights():
    assert kvq_score(0.9, 0.8, 1.0) == pytest.approx(0.45 * 0.9 + 0.45 * 0.8 + 0.1)


def test_bad_shapes_are_usage_errors():
    with pytest.raises(UsageError):
        srocc([1, 2, 3], [1, 2])
    with pytest.raises(UsageError):
        plcc([1, 2], [1, 2])


def test_within_group_krocc_averages_groups_with_an_order_and_skips_the_rest():
    from vq.eval.metrics.correlation import within_group_krocc

    target = [1, 2, 3, 1, 2, 3, 5, 5, 5, 1, 2]
    groups = ["a"] * 3 + ["b"] * 3 + ["flat"] * 3 + ["short"] * 2
    pred = [1, 2, 3, 3, 2, 1, 1, 2, 3, 2, 1]  # a: tau 1, b: tau -1; flat and short left out
    assert within_group_krocc(pred, target, groups) == pytest.approx(0.0)
    pred_b_right = [1, 2, 3, 1, 3, 2, 0, 0, 0, 2, 1]  # b: one swapped pair of 3, tau 1/3
    assert within_group_krocc(pred_b_right, target, groups) == pytest.approx((1 + 1 / 3) / 2)
    assert within_group_krocc([4.0] * 11, target, groups) is None  # constant scores order nothing


def test_mapped_spread_measures_how_far_apart_a_score_puts_alike_clips():
    rng = np.random.default_rng(0)
    target = np.concatenate([np.full(4, 98.0), rng.uniform(20, 90, 40)])
    clean = [0, 1, 2, 3]
    # A score that is the target (up to a monotone rescaling) keeps the clean clips together...
    assert mapped_spread(target / 20 + 1, target, clean) < 0.5
    # ... one that moves them apart by content is measured in the target's units.
    biased = target.copy()
    biased[clean] += [-12.0, -4.0, 4.0, 12.0]
    assert 5.0 < mapped_spread(biased, target, clean) < 10.0
    with pytest.raises(UsageError):
        mapped_spread(target, target, [0])


def test_mapped_offsets_name_the_source_a_score_puts_too_low():
    rng = np.random.default_rng(1)
    target = rng.uniform(20, 98, 60)
    groups = np.repeat(["a", "b", "c"], 20)
    # Up to a monotone rescaling the score is the target: no source is off...
    fair = mapped_offsets(target / 20 + 1, target, groups)
    assert set(fair) == {"a", "b", "c"} and max(abs(v) for v in fair.values()) < 0.5
    # ... and a score that puts every clip of "b" 15 points low names it, in the target's units.
    biased = target.copy()
    biased[groups == "b"] -= 15.0
    off = mapped_offsets(biased, target, groups)
    assert off["b"] < -8.0 and off["b"] < min(off["a"], off["c"]) - 8.0
    # the offsets of an ordinary least-squares fit balance out over the clips
    assert abs(sum(off.values())) < 3.0
    with pytest.raises(UsageError):
        mapped_offsets(target[:4], target[:4], groups[:4])


def test_offset_free_srocc_removes_where_sources_sit_and_keeps_their_order():
    rng = np.random.default_rng(2)
    target = rng.uniform(20, 98, 60)
    groups = np.repeat(["a", "b", "c"], 20)
    # A score that puts whole sources far off ranks poorly overall and perfectly once the
    # offsets are out ...
    biased = target + np.repeat([-40.0, 0.0, 40.0], 20)
    assert srocc(biased, target) < 0.8
    assert offset_free_srocc(biased, target, groups) == pytest.approx(1.0, abs=1e-3)
    assert offset_free_srocc(biased / 20 + 1, target, groups) == pytest.approx(1.0, abs=1e-3)
    # ... while an order wrong inside a source stays wrong: no offset can fix it.
    shuffled = biased.copy()
    shuffled[:20] = rng.permutation(shuffled[:20])
    assert offset_free_srocc(shuffled, target, groups) < 0.9
    with pytest.raises(UsageError):
        offset_free_srocc(target[:2], target[:2], groups[:2])
