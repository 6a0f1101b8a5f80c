"""vq.match: alignment on similarity matrices with known copies; coarse voting; filters."""

from __future__ import annotations

import numpy as np
import pytest

from vq.match import ALIGNERS, FILTERS
from vq.match.segments import Segment, suppress

STEP = 2.0  # 0.5 fps: one frame every 2 s


def matrix(n: int, m: int, copies: list[tuple[int, int, int, float]], seed: int = 0) -> np.ndarray:
    """Background similarities ~0.1-0.3 plus copies: (q_start, r_start, length, slope)."""
    rng = np.random.default_rng(seed)
    sim = rng.uniform(0.05, 0.3, (n, m))
    for q0, r0, length, slope in copies:
        for i in range(length):
            j = round(r0 + slope * i)
            if 0 <= q0 + i < n and 0 <= j < m:
                sim[q0 + i, j] = rng.uniform(0.75, 0.95)
    return sim


def times(n: int) -> np.ndarray:
    return np.arange(n) * STEP


@pytest.mark.parametrize("name", ["diagonal", "tn"])
def test_a_plain_copy_is_one_segment(name):
    sim = matrix(30, 40, [(5, 12, 15, 1.0)])
    segs = ALIGNERS.create(name)(sim, times(30), times(40), STEP)
    assert len(segs) == 1
    s = segs[0]
    assert s.query_start == pytest.approx(10, abs=2.1) and s.query_end == pytest.approx(40, abs=2.1)
    assert s.ref_start == pytest.approx(24, abs=2.1) and s.score > 0.7


@pytest.mark.parametrize("name", ["diagonal", "tn"])
def test_two_copies_and_no_copy(name):
    aligner = ALIGNERS.create(name)
    sim = matrix(40, 40, [(0, 20, 8, 1.0), (20, 2, 10, 1.0)])
    segs = aligner(sim, times(40), times(40), STEP)
    assert len(segs) == 2
    assert aligner(matrix(20, 20, []), times(20), times(20), STEP) == []


def test_speed_changes_are_lines_of_another_slope():
    sim = matrix(30, 60, [(2, 4, 20, 2.0)])  # the query plays the reference 2x faster
    segs = ALIGNERS.create("diagonal")(sim, times(30), times(60), STEP)
    assert len(segs) == 1
    s = segs[0]
    assert (s.ref_end - s.ref_start) / (s.query_end - s.query_start) == pytest.approx(2.0, rel=0.15)


def test_gaps_are_bridged_and_isolated_hits_dropped():
    sim = matrix(30, 30, [(2, 2, 6, 1.0), (9, 9, 6, 1.0), (25, 3, 1, 1.0)])  # gap of one frame at 8
    segs = ALIGNERS.create("diagonal")(sim, times(30), times(30), STEP)
    assert (
        len(segs) == 1 and segs[0].query_start == pytest.approx(4) and segs[0].query_end == pytest.approx(30)
    )


def test_suppression_keeps_one_match_per_stretch():
    a = Segment(0, 20, 100, 120, 0.9)
    b = Segment(2, 18, 300, 316, 0.7)  # same query stretch, weaker: suppressed
    c = Segment(40, 60, 100, 120, 0.8)  # same reference stretch again: one-to-many, suppressed
    d = Segment(70, 90, 500, 520, 0.6)  # elsewhere in both: a second, separate match
    kept = suppress([a, b, c, d])
    assert kept == [a, d]


def test_filters():
    match = {"segments": [{"query_start": 0, "query_end": 3}], "ref_metadata": {"uploader": "ann"}}
    assert not FILTERS.get("same_uploader")({"uploader": "ann"}, match)
    assert FILTERS.get("same_uploader")({"uploader": "bob"}, match)
    assert FILTERS.get("min_seconds")({}, match, seconds=2) and not FILTERS.get("min_seconds")(
        {}, match, seconds=5
    )
    assert not FILTERS.get("min_ratio")({"duration": 60}, match, ratio=0.1)


def test_blank_lead_ins_shared_by_both_videos_join_the_segment():
    from vq.match.segments import extend_over_blanks

    seg = Segment(1.0, 6.0, 1.0, 6.0, 0.99)  # both videos show black for their first second
    out = extend_over_blanks(seg, (0.0, 1.0, 6.0, 6.0), (0.0, 1.0, 6.0, 6.0), step=0.5)
    assert (out.query_start, out.ref_start, out.query_end) == (0.0, 0.0, 6.0)
    # the reference has no blank lead-in: nothing to extend over
    out = extend_over_blanks(seg, (0.0, 1.0, 6.0, 6.0), (0.0, 0.0, 6.0, 6.0), step=0.5)
    assert out.query_start == 1.0
    # a segment starting mid-video is left alone
    mid = Segment(3.0, 6.0, 3.0, 6.0, 0.99)
    assert extend_over_blanks(mid, (0.0, 1.0, 6.0, 6.0), (0.0, 1.0, 6.0, 6.0), step=0.5) == mid


def test_inner_ends_sit_midway_between_the_samples_either_side():
    """A copy of query 4.4-7.6 s sampled at 2 fps matches the samples at 4.5-7.5 s: the
    samples' own span (4.5-8.0) is late at both ends; the midpoints (4.25-7.75) are not on
    average, and the reference moves with them along the line. Ends at a video's first or
    last picture stay: nothing was sampled beyond, and the reference time shown there is
    exact."""
    from vq.match.segments import centre_between_samples

    spans = (0.0, 0.0, 12.0, 12.0), (0.0, 0.0, 6.0, 6.0)  # (start, first picture, end of last, end)

    def ends(s: Segment) -> tuple[float, float, float, float]:
        return s.query_start, s.query_end, s.ref_start, s.ref_end

    inner = centre_between_samples(Segment(4.5, 8.0, 1.5, 5.0, 0.99), *spans, 0.5)
    assert ends(inner) == (4.25, 7.75, 1.25, 4.75)
    sped = centre_between_samples(Segment(4.0, 8.0, 0.0, 6.0, 0.99), spans[0], (0.0, 0.0, 8.0, 8.0), 0.5)
    assert ends(sped) == (3.75, 7.75, 0.0, 5.625)  # 1.5x: a quarter second of query is 0.375 s
    excerpt = centre_between_samples(Segment(0.0, 3.5, 2.0, 5.5, 0.99), *spans, 0.5)
    assert ends(excerpt) == (0.0, 3.25, 2.0, 5.25)  # the upload starts with the copy
    backwards = centre_between_samples(Segment(4.5, 8.0, 1.5, 5.0, 0.99, reversed=True), *spans, 0.5)
    assert ends(backwards) == (4.25, 7.75, 1.25, 4.75)
    whole = Segment(0.0, 12.0, 0.0, 6.0, 0.99)  # both videos' ends: nothing moves
    assert centre_between_samples(whole, *spans, 0.5) == whole
    heard = Segment(4.5, 8.0, 1.5, 5.0, 0.99, by_sound=True)  # the sound's own ends
    assert centre_between_samples(heard, *spans, 0.5) == heard


def test_a_slow_scene_is_matched_at_its_true_speed():
    """On a nearly static picture many slopes fit; similarity picks the line when it differs,
    and coverage of both axes when it does not."""
    n = 12
    sim = np.full((n, 2 * n), 0.1)
    for i in range(n):
        sim[i, 2 * i : 2 * i + 2] = 0.97  # a 2x copy of a scene whose frames repeat in pairs
    segs = ALIGNERS.create("diagonal", frame_threshold=0.8)(sim, times(n), times(2 * n), STEP)
    s = max(segs, key=lambda s: s.seconds)
    assert (s.ref_end - s.ref_start) / (s.query_end - s.query_start) == pytest.approx(2.0, rel=0.15)


@pytest.mark.parametrize("name", ["diagonal", "tn"])
def test_a_query_sampled_denser_than_the_library(name):
    """Query at 1 fps against a 0.5 fps library: a plain copy is a line of half a reference
    frame per query frame, found with the right times on both axes."""
    rng = np.random.default_rng(1)
    n, m = 30, 40
    sim = rng.uniform(0.05, 0.3, (n, m))
    for i in range(4, 24):  # query seconds 4..23 copy reference seconds 30..49
        sim[i, (30 + i - 4) // 2] = rng.uniform(0.8, 0.95)
    segs = ALIGNERS.create(name)(sim, np.arange(n) * 1.0, np.arange(m) * 2.0, 1.0, 2.0)
    assert len(segs) == 1
    s = segs[0]
    assert s.query_start == pytest.approx(4, abs=1.1) and s.query_end == pytest.approx(24, abs=1.1)
    assert s.ref_start == pytest.approx(30, abs=2.1) and s.ref_end == pytest.approx(50, abs=2.1)


def test_best_references_drop_resemblance_and_keep_duplicates():
    from vq.match.segments import best_references

    copy = Segment(10, 30, 0, 20, 0.95)
    sibling = Segment(12, 30, 40, 58, 0.90)  # another moment of the same scene: lower
    duplicate = Segment(10, 30, 0, 20, 0.945)  # the same source ingested twice: as high
    elsewhere = Segment(40, 50, 0, 10, 0.85)  # another stretch of the query: untouched
    kept = best_references({"a": [copy], "b": [sibling, elsewhere], "c": [duplicate]}, margin=0.02)
    assert kept == {"a": [copy], "b": [elsewhere], "c": [duplicate]}
    assert best_references({"a": [copy], "b": [sibling]}, margin=0.1) == {"a": [copy], "b": [sibling]}
    # Where both were measured in pixels, the pixels decide: another clip of a fixed camera
    # outscores the source in the embedding, not in what moves.
    right = Segment(10, 30, 0, 20, 0.961, pixels=0.31)
    wrong = Segment(10, 30, 0, 20, 0.984, pixels=0.17)
    assert best_references({"right": [right], "wrong": [wrong]}, margin=0.0) == {"right": [right]}
    unmeasured = Segment(10, 30, 0, 20, 0.984)  # no thumbnails: the score decides
    assert best_references({"right": [right], "wrong": [unmeasured]}, margin=0.0) == {"wrong": [unmeasured]}


def test_motion_agreement_tells_a_copy_from_another_moment_of_the_same_scene():
    """A fixed camera's other moment shares the scene (a large common vector) but not how
    it changes; a copy shares the changes, under a constant edit (an offset) and noise."""
    from vq.match.motion import keep_moving_together, segment_motion
    from vq.match.segments import Segment

    rng = np.random.default_rng(0)
    dim, n = 64, 20
    scene = 3.0 * rng.standard_normal(dim)

    def moment(seed: int) -> np.ndarray:
        walk = np.cumsum(np.random.default_rng(seed).standard_normal((n, dim)), axis=0) * 0.1
        return scene + walk

    ref, ref_times = moment(1), np.arange(n, dtype=float)
    times = np.arange(n, dtype=float)
    copy = ref + 0.5 * rng.standard_normal(dim) + 0.05 * rng.standard_normal((n, dim))  # edit + noise
    other = moment(2)
    line = Segment(0.0, n - 1.0, 0.0, n - 1.0, 0.95)
    assert segment_motion([copy], times, ref, ref_times, line).agreement > 0.8
    assert abs(segment_motion([other], times, ref, ref_times, line).agreement) < 0.5
    # The better view counts; a segment too short to judge gives no verdict and is kept.
    assert segment_motion([other, copy], times, ref, ref_times, line).agreement > 0.8
    short = Segment(0.0, 1.0, 0.0, 1.0, 0.95)
    assert segment_motion([other], times, ref, ref_times, short) is None
    assert keep_moving_together([line, short], [other], times, ref, ref_times, 0.1) == [short]
    (kept,) = keep_moving_together([line], [copy], times, ref, ref_times, 0.3)
    assert kept.motion > 0.8 and kept.score == line.score  # the agreement travels with it
    assert kept.to_json()["motion"] == round(kept.motion, 3) and "motion" not in line.to_json()
    # Stretching over blanks and refitting keep what a segment carries.
    from dataclasses import replace

    from vq.match.segments import extend_over_blanks

    stretched = extend_over_blanks(
        replace(kept, query_start=1.0, ref_start=1.0), (0, 1, 19, 19), (0, 1, 19, 19), 1
    )
    assert stretched.query_start == 0.0 and stretched.motion == kept.motion
    # Turning a segment round needs agreement FLIP_AGREEMENT (0.5), or min_motion if higher.
    from vq.match.motion import FLIP_AGREEMENT

    backwards = copy[::-1]
    (turned,) = keep_moving_together([line], [backwards], times, ref, ref_times, 0.3)
    assert turned.reversed and turned.motion >= FLIP_AGREEMENT
    assert (
        keep_moving_together([line], [backwards], times, ref, ref_times, min(turned.motion + 0.01, 1.0)) == []
    )
    # A copy at half speed: query time 2i shows reference time i.
    slow = Segment(0.0, 2 * (n - 1.0), 0.0, n - 1.0, 0.95)
    assert segment_motion([copy], 2 * times, ref, ref_times, slow).agreement > 0.8
    # Only frames matching on the line count: a partial copy's other footage is left out.
    mixed = copy.copy()
    mixed[:6] = 5.0 * rng.standard_normal((6, dim))  # not the reference at all
    sim = np.where(np.arange(n) < 6, 0.1, 0.9)[:, None] * np.ones((n, n))
    assert segment_motion([mixed], times, ref, ref_times, line, sim, 0.5).agreement > 0.8
    assert segment_motion([mixed], times, ref, ref_times, line).agreement < 0.5
    # A reference that does not change has nothing to agree on: the test abstains.
    still = np.repeat(ref[:1], n, axis=0) + 1e-3 * rng.standard_normal((n, dim))
    assert segment_motion([other], times, still, ref_times, line).change < 0.06
    assert keep_moving_together([line], [other], times, still, ref_times, 0.3, floor=0.06) == [line]
    # ... but a still is copied by a picture that holds still too: a query moving along the
    # segment (another moment of the fixed camera, someone passing) is not its copy.
    still_copy = still + 0.5 * rng.standard_normal(dim) + 1e-3 * rng.standard_normal((n, dim))
    moving = segment_motion([other], times, still, ref_times, line)
    assert (
        moving.query_change > 0.2 > segment_motion([still_copy], times, still, ref_times, line).query_change
    )
    assert keep_moving_together([line], [other], times, still, ref_times, 0.3, 0.06, moving_query=0.2) == []
    assert keep_moving_together(
        [line], [still_copy], times, still, ref_times, 0.3, 0.06, moving_query=0.2
    ) == [line]
    # The query's stillest view counts (a moving overlay in one view, the still in another).
    assert keep_moving_together(
        [line], [other, still_copy], times, still, ref_times, 0.3, 0.06, moving_query=0.2
    ) == [line]


def test_a_stretch_played_backwards_is_a_reversed_segment():
    from vq.match.align import DiagonalAligner

    aligner = ALIGNERS.create("diagonal")
    sim = matrix(30, 40, [(5, 30, 15, -1.0)])  # query 5..19 shows reference 30 down to 16
    segs = aligner(sim, times(30), times(40), STEP)
    assert len(segs) == 1 and segs[0].reversed
    s = segs[0]
    assert s.query_start == pytest.approx(10, abs=2.1) and s.query_end == pytest.approx(40, abs=2.1)
    assert s.ref_start == pytest.approx(32, abs=2.1) and s.ref_end == pytest.approx(62, abs=2.1)
    assert float(s.ref_at(s.query_start)) == pytest.approx(s.ref_end)  # starts at the end
    assert s.to_json()["reversed"] is True
    # Twice as fast, backwards.
    fast = aligner(matrix(30, 60, [(2, 50, 20, -2.0)]), times(30), times(60), STEP)
    assert len(fast) == 1 and fast[0].reversed
    assert (fast[0].ref_end - fast[0].ref_start) / fast[0].seconds == pytest.approx(2.0, rel=0.15)
    # Forwards says nothing; a still (every frame alike) is forwards; reversal can be off.
    forward = aligner(matrix(30, 40, [(5, 12, 15, 1.0)]), times(30), times(40), STEP)
    assert not forward[0].reversed and "reversed" not in forward[0].to_json()
    still = np.full((10, 10), 0.9)
    assert [s.reversed for s in aligner(still, times(10), times(10), STEP)] == [False]
    assert not any(s.reversed for s in DiagonalAligner(reverse=False)(sim, times(30), times(40), STEP))


def test_a_segment_turned_round_is_placed_on_its_reversed_line():
    """A slow pan played backwards: everything is alike, the aligner's forward line runs
    through the wrong part of the reference; turned round, the segment is refitted on the
    best reversed line through its query stretch (the whole reference)."""
    from vq.match.align import best_line

    q, r = np.arange(12) * 0.5, np.arange(6) * 1.0  # query 2 fps, library 1 fps
    shown = 5.75 - q  # the reference second each query frame shows
    sim = 0.99 - 0.03 * np.abs(shown[:, None] - r[None, :])  # alike everywhere, best on the line
    found_forward = Segment(0.0, 6.0, 2.0, 6.0, 0.95)
    turned = best_line(sim, q, r, 0.5, 1.0, Segment(0.0, 6.0, 2.0, 6.0, 0.95, reversed=True))
    assert turned.reversed and (turned.ref_start, turned.ref_end) == (0.0, 6.0)
    assert turned.query_start == 0.0 and turned.query_end == 6.0 and turned.score == 0.95
    # kept forward, the best forward line through the same stretch is a different one
    forward = best_line(sim, q, r, 0.5, 1.0, found_forward)
    assert not forward.reversed and (forward.ref_start, forward.ref_end) != (0.0, 6.0)


def test_the_aligner_traces_lines_in_blocks_alike(monkeypatch):
    """Lines are traced a block of intercepts at a time (an hour against an hour would be
    hundreds of millions of cells at once); the blocks' runs are the whole matrix's."""
    import vq.match.align as align

    rng = np.random.default_rng(0)
    sim = rng.uniform(0.0, 0.5, (40, 60)).astype(np.float32)
    sim[rng.integers(0, 40, 30), rng.integers(0, 60, 30)] = 0.7  # stray hits
    sim[np.arange(5, 25), np.arange(3, 23)] = 0.95  # a copy
    sim[np.arange(27, 39), np.arange(30, 54, 2)] = 0.9  # a stretch played at half speed
    times, ref_times = np.arange(40) / 2.0, np.arange(60) / 2.0
    whole = align.DiagonalAligner()(sim, times, ref_times, 0.5)
    monkeypatch.setattr(align, "LINE_CELLS", 50)
    assert align.DiagonalAligner()(sim, times, ref_times, 0.5) == whole
    assert {(2.5, 1.5), (13.5, 15.0)} <= {(s.query_start, s.ref_start) for s in whole}
