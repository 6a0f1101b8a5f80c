"""A matched segment: a stretch of the query aligned to a stretch of a reference."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Segment:
    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    score: float
    # Played backwards: query_start shows ref_end, query_end shows ref_start.
    reversed: bool = False
    # Found by the soundtrack alone (`vq.index.audio`): its score is a confidence (one minus
    # the chance of that much agreement by luck), not a cosine.
    by_sound: bool = False
    # How well the two sides' changes agree along the line (`vq.match.motion`, -1..1); None
    # where the look-alike test did not judge (off, too few frames, a still reference).
    motion: float | None = None
    # The same for the two sides' pixels (`vq.match.pixels`, -1..1); None where that test
    # did not judge (a library without thumbnails, a reference still in its pixels).
    pixels: float | None = None

    def to_json(self) -> dict:
        flags = ("reversed", "by_sound")
        out = {k: round(v, 3) for k, v in asdict(self).items() if k not in flags and v is not None}
        for flag in flags:  # said only when true: forward, by picture is what every record has meant
            if getattr(self, flag):
                out[flag] = True
        return out

    def ref_at(self, t: np.ndarray) -> np.ndarray:
        """Reference time shown at query time(s) `t` along the segment's line."""
        slope = (self.ref_end - self.ref_start) / max(self.query_end - self.query_start, 1e-6)
        if self.reversed:
            return self.ref_end - (np.asarray(t) - self.query_start) * slope
        return self.ref_start + (np.asarray(t) - self.query_start) * slope

    @property
    def seconds(self) -> float:
        return self.query_end - self.query_start


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def only_new(segments: list[Segment], known: list[Segment], share: float = 0.5) -> list[Segment]:
    """Those of `segments` that `known` does not already cover: at most `share` of each one's
    query time overlaps any known segment (the sound's stretches beside the picture's)."""
    return [
        s
        for s in segments
        if all(
            overlap(s.query_start, s.query_end, k.query_start, k.query_end) <= share * s.seconds
            for k in known
        )
    ]


def suppress(segments: list[Segment], overlap_share: float = 0.5) -> list[Segment]:
    """Non-maximum suppression: a segment sharing more than `overlap_share` of its own
    query time (or reference time) with a better one is the same match seen again (a
    fragment on a neighbouring slope, a one-to-many repeat) and is dropped."""
    kept: list[Segment] = []
    for s in sorted(segments, key=lambda s: (-_rank(s), s.query_start)):
        duplicate = False
        for k in kept:
            q = overlap(s.query_start, s.query_end, k.query_start, k.query_end)
            r = overlap(s.ref_start, s.ref_end, k.ref_start, k.ref_end)
            q_short = min(s.query_end - s.query_start, k.query_end - k.query_start)
            r_short = min(s.ref_end - s.ref_start, k.ref_end - k.ref_start)
            if (q_short > 0 and q / q_short > overlap_share) or (r_short > 0 and r / r_short > overlap_share):
                duplicate = True
                break
        if not duplicate:
            kept.append(s)
    return sorted(kept, key=lambda s: s.query_start)


def best_references(
    matches: dict[Hashable, list[Segment]], margin: float, overlap_share: float = 0.5
) -> dict[Hashable, list[Segment]]:
    """Across references: of segments covering the same stretch of the query (more than
    `overlap_share` of the shorter one), keep those scoring within `margin` of the best.

    One query stretch that matches several references is either a copy of one of them
    that the others resemble (other moments of a fixed-camera scene, other clips of one
    set: wrong-reference reports), or a copy of a source the library holds twice (a
    re-upload ingested earlier): the first kind scores below the true source, the
    second about as high, so a margin keeps duplicates and drops resemblance. A margin
    of 0 keeps only the best reference per stretch (and exact ties).

    Where both segments were measured by their pixels (`Segment.pixels`), the pixels
    decide instead of the score, with the same margin: other clips of one fixed camera
    score alike to the embedding (a wrong `vtest` reference at 0.984 beat the right one at
    0.961 on the held-out suite), while their pixels tell them apart (0.17 against 0.31)."""
    flat = [(ref, s) for ref, segs in matches.items() for s in segs]
    kept: dict[str, list[Segment]] = {}
    for ref, s in flat:
        beaten = False
        for other_ref, t in flat:
            by_pixels = s.pixels is not None and t.pixels is not None
            if other_ref == ref or (
                t.pixels <= s.pixels + margin if by_pixels else t.score <= s.score + margin
            ):
                continue
            shared = overlap(s.query_start, s.query_end, t.query_start, t.query_end)
            if shared > overlap_share * min(s.seconds, t.seconds):
                beaten = True
                break
        if not beaten:
            kept.setdefault(ref, []).append(s)
    return kept


def _rank(s: Segment) -> float:
    """Evidence for a match: mean similarity x matched query seconds, plus a small bonus for
    the time explained on both axes (geometric mean of the spans). Similarity decides
    whenever the picture changes along the line; when it does not (a test card, a slow
    scene), lines of several slopes fit equally well and the one explaining more of both
    videos wins: a 1.5x copy of a slow scene is not reported as a 1x copy of part of it.
    Likewise a still or a slow scene fits a line played backwards about as well as forwards:
    forwards wins unless the reversed line's mean similarity is 0.1 higher (a true reversal
    leaves the forward lines only short, poor fragments; on the classic benchmark a slow
    scene's 0.5x reversed line scored 0.90 over 6 s against the true forward 0.99 over 5 s)."""
    q = max(s.query_end - s.query_start, 1e-6)
    r = max(s.ref_end - s.ref_start, 1e-6)
    return s.score * q + 0.05 * float(np.sqrt(q * r)) - (0.1 * q if s.reversed else 0.0)


def frame_span(times: np.ndarray, i0: int, i1: int, step: float) -> tuple[float, float]:
    """Seconds covered by frames i0..i1 (inclusive) sampled every `step` seconds."""
    return float(times[i0]), float(times[i1] + step)


def centre_between_samples(
    seg: Segment,
    query: tuple[float, float, float, float],
    ref: tuple[float, float, float, float],
    step: float,
) -> Segment:
    """`seg` with each inner query end moved back half a sample, from the sampled frames'
    own span (first matching frame to one step past the last) to the midpoints between the
    last frame outside and the first inside, and the reference end it shows moved along the
    line with it.

    A copy that starts between two samples starts anywhere between them, so the first
    matching sample is on average half a step late, and one step past the last matching
    sample half a step too far: a 3.2 s partial copy sampled at 2 fps came out 0.25 s late
    at both ends. An end at the video's first or last picture stays (nothing outside it
    was sampled, and the reference time shown there is exact; `extend_over_blanks`
    reaches past it). `query` and `ref` are (start, first picture, end of last picture,
    end), as there; `step` is the query's sampling interval. The sound's stretches keep
    their own ends."""
    if seg.by_sound:
        return seg
    slope = (seg.ref_end - seg.ref_start) / max(seg.seconds, 1e-6)
    shift = slope * step / 2  # reference seconds shown in half a query step
    q0, q1, r0, r1 = seg.query_start, seg.query_end, seg.ref_start, seg.ref_end
    start_moves, end_moves = q0 > query[1] + 1e-6, q1 < query[2] - 1e-6
    if start_moves:
        q0 -= step / 2
    if end_moves:
        q1 -= step / 2
    # Forwards the query's start shows the reference's start; played backwards, its end.
    if start_moves if not seg.reversed else end_moves:
        r0 = max(ref[0], r0 - shift)
    if end_moves if not seg.reversed else start_moves:
        r1 = max(r0, r1 - shift)
    return replace(seg, query_start=q0, query_end=q1, ref_start=r0, ref_end=r1)


def extend_over_blanks(
    seg: Segment,
    query: tuple[float, float, float, float],
    ref: tuple[float, float, float, float],
    step: float,
) -> Segment:
    """Stretch a segment over blank lead-ins and tails both videos share.

    Blank frames (black before a fade-in, after a fade-out) are never matched, so a copy of
    a clip that opens on black is found from its first picture on. When the segment starts
    at the first picture of *both* videos and both begin blank, the blank stretch is part
    of the copy too; likewise at the end. `query` and `ref` are (start, first picture, end
    of last picture, end) in seconds; `step` is the sampling interval.
    """
    if seg.reversed:  # a lead-in of one is a tail of the other: not a shared blank
        return seg
    q_start, q_first, q_last, q_end = query
    r_start, r_first, r_last, r_end = ref
    slope = (seg.ref_end - seg.ref_start) / max(seg.seconds, 1e-6)
    q0, q1, r0, r1 = seg.query_start, seg.query_end, seg.ref_start, seg.ref_end
    near = step / 2 + 1e-6
    if abs(q0 - q_first) <= near and abs(r0 - r_first) <= near and q_first > q_start and r_first > r_start:
        lead = max(0.0, min(q0 - q_start, (r0 - r_start) / max(slope, 1e-6)))
        q0, r0 = q0 - lead, r0 - lead * slope
    if abs(q1 - q_last) <= near and abs(r1 - r_last) <= near and q_last < q_end and r_last < r_end:
        tail = max(0.0, min(q_end - q1, (r_end - r1) / max(slope, 1e-6)))
        q1, r1 = q1 + tail, r1 + tail * slope
    return replace(seg, query_start=q0, query_end=q1, ref_start=r0, ref_end=r1)
