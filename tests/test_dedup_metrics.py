"""Segment metrics (VSC 2022 µAP, VCSL F1) and video-level P/R/F1 on hand-worked cases."""

from __future__ import annotations

import pytest

from vq.eval.metrics.retrieval import Match, intersection_length, segment_ap, union_length, vcsl_f1, video_prf


def m(q, r, q0, q1, r0, r1, score=1.0):
    return Match(q, r, q0, q1, r0, r1, score)


def test_interval_lengths():
    assert union_length([(0, 2), (1, 3), (5, 6)]) == pytest.approx(4)
    assert union_length([(0, 10), (2, 3)]) == pytest.approx(10)
    assert intersection_length([(2, 5), (7, 8)], [(1, 3), (4, 7)]) == pytest.approx(2)
    assert intersection_length([], [(0, 1)]) == 0


def test_perfect_predictions_score_one():
    truth = [m("q1", "r1", 0, 10, 5, 15), m("q2", "r2", 2, 6, 0, 4)]
    assert segment_ap(truth, truth) == pytest.approx(1.0)
    assert vcsl_f1(truth, truth)["f1"] == pytest.approx(1.0)


def test_half_coverage_is_half_recall():
    truth = [m("q", "r", 0, 10, 0, 10)]
    pred = [m("q", "r", 0, 5, 0, 5)]
    assert segment_ap(truth, pred) == pytest.approx(0.5)  # P = 1, R = sqrt(0.5 * 0.5)
    assert vcsl_f1(truth, pred)["recall"] == pytest.approx(0.25)  # VCSL multiplies the axes


def test_a_confident_false_match_costs_precision():
    truth = [m("q", "r", 0, 10, 0, 10)]
    preds = [m("q", "x", 0, 10, 0, 10, score=0.9), m("q", "r", 0, 10, 0, 10, score=0.5)]
    # the false pair comes first (P=0, R=0); the true one then lifts R to 1 at P = 10 / 20
    assert segment_ap(truth, preds) == pytest.approx(0.5)
    # swapped scores: recall is complete before the false match arrives
    preds = [m("q", "x", 0, 10, 0, 10, score=0.5), m("q", "r", 0, 10, 0, 10, score=0.9)]
    assert segment_ap(truth, preds) == pytest.approx(1.0)


def test_predictions_off_the_ground_truth_do_not_count():
    truth = [m("q", "r", 0, 10, 0, 10)]
    # same pair, but on the wrong stretch of the reference: overlaps on the query axis only
    assert segment_ap(truth, [m("q", "r", 0, 10, 20, 30)]) == 0.0
    scores = vcsl_f1(truth, [m("q", "r", 0, 10, 20, 30)])
    assert scores["precision"] == 0.0 and scores["recall"] == 0.0


def test_vcsl_precision_is_the_product_of_axes():
    truth = [m("q", "r", 0, 10, 0, 10)]
    pred = [m("q", "r", 0, 20, 0, 20)]  # covers the truth, twice as long on both axes
    scores = vcsl_f1(truth, pred)
    assert scores["precision"] == pytest.approx(0.25) and scores["recall"] == pytest.approx(1.0)


def test_video_level_counts():
    r = video_prf({("a", "x"), ("b", "y")}, {("a", "x"), ("c", "z")})
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1)
    assert r["precision"] == r["recall"] == r["f1"] == pytest.approx(0.5)
