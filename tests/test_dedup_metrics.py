"""Segment metrics (VSC 2022 µAP, VCSL F1) and video-level P/R/F1 on hand-worked cases."""

from __future__ import annotations

import numpy as np
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


def test_calibration_finds_the_decision_that_separates_copies_from_look_alikes():
    """A copy of A that also resembles B (a sibling clip), and a look-alike of A: only a
    segment-score threshold between the two and a reference margin below 0.05 are right."""
    from vq.eval.dedup import Benchmark, Clip, Query, calibrate, decide

    truth = {"ref_id": "A", "query_start": 0.0, "query_end": 6.0, "ref_start": 0.0, "ref_end": 6.0}
    bench = Benchmark(
        {},
        [Clip("A", "a.mp4", "s", 0, 6, "ref"), Clip("B", "b.mp4", "s", 8, 14, "ref")],
        [
            Query("copy", "q1.mp4", "full", ["border"], [truth]),
            Query("look", "q2.mp4", "non_copy", [], [], True),
        ],
    )

    def match(ref, score):
        seg = {"query_start": 0.0, "query_end": 6.0, "ref_start": 0.0, "ref_end": 6.0, "score": score}
        return {"ref_id": ref, "score": score, "segments": [seg]}

    records = [
        {"id": "copy", "status": "ok", "matches": [match("A", 0.95), match("B", 0.90)]},
        {"id": "look", "status": "ok", "matches": [match("A", 0.85)]},
    ]
    best = calibrate(bench, records)["best"]
    assert best["f1"] == 1.0 and best["look_alikes_flagged"] == 0
    assert 0.85 < best["min_score"] <= 0.95 and best["ref_margin"] < 0.05
    kept = decide(records, min_score=0.8, ref_margin=1.0)  # no suppression: B stays
    assert [m["ref_id"] for m in kept[0]["matches"]] == ["A", "B"]

    # A look-alike scoring above the copy: only the look-alike test's cut tells them apart.
    def judged(ref, score, motion):
        m = match(ref, score)
        m["segments"][0]["motion"] = motion
        return m

    records = [
        {"id": "copy", "status": "ok", "matches": [judged("A", 0.93, 0.7)]},
        {"id": "look", "status": "ok", "matches": [judged("A", 0.97, 0.05)]},
    ]
    best = calibrate(bench, records)["best"]
    assert best["f1"] == 1.0 and 0.05 < best["min_motion"] <= 0.7
    assert (
        calibrate(bench, [dict(r, matches=[match("A", 0.9)]) for r in records])["best"]["min_motion"] == -1.0
    )
    assert decide(records, 0.9, 1.0, min_motion=0.5)[1]["matches"] == []


def test_the_audio_suite_gives_references_sound_the_learned_fingerprint_never_heard():
    """A find on music the fingerprint trained on says nothing about new music: the suite's
    references take the recordings outside vq-audiofp's training list first."""
    from vq.eval.dedup_audio import heard_by, unheard_first

    heard = heard_by("vq-audiofp")
    assert "asc-music-frontiers.mp3" in heard and "hyperrogue-music-hr3-mirror.ogg" not in heard
    assert heard_by(None) == []
    recordings = [
        (name, np.zeros(1)) for name in ("asc-music-frontiers.mp3", "new-a.ogg", "chaplin.wav", "new-b.ogg")
    ]
    assert [n for n, _ in unheard_first(recordings, heard)] == [
        "new-a.ogg",
        "new-b.ogg",
        "asc-music-frontiers.mp3",
        "chaplin.wav",
    ]
