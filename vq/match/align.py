"""Segment alignment by lines in the frame-similarity matrix (the copy-detection seed's method).

Given query and reference frame vectors, the similarity matrix S (cosine) holds a copied
stretch as a line of high values: a diagonal for a plain copy, a line of another slope
for a speed change. The seed's fine stage, vectorised:

1. threshold S at the frame threshold;
2. for each candidate slope (speeds 0.5x-2x), collect matched cells onto lines
   j = round(slope * i + b) and find runs along each line, bridging gaps of up to
   `max_gap` frames (morphological closing) and dropping runs shorter than `min_frames`
   (opening); lines of negative slope too, for stretches played backwards (`reverse`);
3. merge runs on the same line that lie close together;
4. non-maximum suppression: of runs sharing query or reference time, keep the best
   (the one-to-many matches the seed suppresses).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vq.match.segments import Segment, frame_span, suppress

SLOPES = (1.0, 0.5, 0.667, 0.8, 1.25, 1.5, 2.0)  # speeds: reference seconds per query second
LINE_CELLS = 1 << 20  # lines are traced in blocks of about this many cells (hour-long videos)


class DiagonalAligner:
    def __init__(
        self,
        frame_threshold: float = 0.55,
        min_frames: int = 2,
        max_gap: int = 2,
        slopes: tuple[float, ...] = SLOPES,
        reverse: bool = True,
    ):
        self.frame_threshold, self.min_frames, self.max_gap, self.slopes = (
            frame_threshold,
            min_frames,
            max_gap,
            slopes,
        )
        self.directions = (1, -1) if reverse else (1,)

    def __call__(
        self,
        sim: np.ndarray,
        q_times: np.ndarray,
        r_times: np.ndarray,
        step: float,
        ref_step: float | None = None,
    ) -> list[Segment]:
        """`step` is the query's sampling interval, `ref_step` the reference's (default the
        same). A query sampled more densely than the library (1 fps against 2s1f, say) sees
        a plain copy as a line of `step / ref_step` reference frames per query frame; gaps
        and merging are measured in reference time, so they mean what they meant before."""
        n, m = sim.shape
        ref_step = step if ref_step is None else ref_step
        if n == 0 or m == 0:
            return []
        hits = sim >= self.frame_threshold
        if not hits.any():
            return []
        rate = step / ref_step  # reference frames per query frame at speed 1
        max_gap = max(self.max_gap, round(self.max_gap / rate))  # the same seconds of reference time
        segments = []
        qi = np.arange(n)
        ii, jj = np.nonzero(hits)
        for direction in self.directions:
            for speed in self.slopes:
                slope = direction * speed * rate
                # every matched cell votes for the line through it at this slope: one row of
                # `cols` per line, the reference frame it passes at each query frame
                intercepts = np.unique(np.round(jj - slope * ii).astype(int))
                for block in np.array_split(intercepts, -(-intercepts.size * n // LINE_CELLS)):
                    cols = np.round(slope * qi[None, :] + block[:, None]).astype(int)
                    inside = (cols >= 0) & (cols < m)
                    on = np.zeros(cols.shape, bool)
                    # a cell within one column of the line counts (rounding, frame jitter)
                    for dj in (-1, 0, 1):
                        on |= inside & hits[qi[None, :], np.clip(cols + dj, 0, m - 1)]
                    segments.extend(
                        self._runs(
                            on, sim, cols, speed, max_gap, q_times, r_times, step, ref_step, direction < 0
                        )
                    )
        return suppress(_merge(segments, gap=self.max_gap * ref_step, offset_tolerance=ref_step))

    def _runs(
        self, on, sim, cols, speed, max_gap, q_times, r_times, step, ref_step, backwards=False
    ) -> list[Segment]:
        """The runs along each line (row) of `on`: stretches of matched frames bridging gaps
        of up to `max_gap` (closing), at least `min_frames` long (opening), all lines at once."""
        m = sim.shape[1]
        line, idx = np.nonzero(on)  # row-major: line by line, frames in order
        if idx.size == 0:
            return []
        # a run breaks where the line changes or the gap is too wide to bridge
        breaks = np.flatnonzero((np.diff(line) != 0) | (np.diff(idx) > max_gap + 1)) + 1
        first = np.concatenate([[0], breaks])
        last = np.concatenate([breaks - 1, [idx.size - 1]])
        a, z, rows = idx[first], idx[last], line[first]
        long_enough = z - a + 1 >= self.min_frames
        # Scored on the line itself (hits were found within one column of it), so that of
        # parallel lines one or two frames apart the true offset scores best.
        on_line = sim[idx, cols[line, idx]]  # matched cells lie inside the matrix
        score = np.add.reduceat(on_line, first) / (last - first + 1)
        ends = np.clip(np.stack([cols[rows, a], cols[rows, z]]), 0, m - 1)
        out = []
        for k in np.flatnonzero(long_enough):
            q0, q1 = frame_span(q_times, a[k], z[k], step)
            r0 = float(r_times[ends[:, k].min()])
            r1 = float(r_times[ends[:, k].max()] + max(ref_step, speed * step))
            out.append(Segment(q0, q1, r0, r1, float(score[k]), reversed=backwards))
        return out


def _line(s: Segment) -> float:
    """What stays constant along a segment's line at speed 1: the offset ref - query
    forwards, the sum ref + query backwards."""
    return s.ref_end + s.query_start if s.reversed else s.ref_start - s.query_start


def _merge(segments: list[Segment], gap: float, offset_tolerance: float) -> list[Segment]:
    """Join segments on the same line (offsets, or sums when played backwards, within
    `offset_tolerance`) separated by <= `gap` seconds of query time."""
    out: list[Segment] = []
    for s in sorted(segments, key=lambda s: (s.reversed, round(_line(s), 1), s.query_start)):
        if out:
            p = out[-1]
            same_line = p.reversed == s.reversed and abs(_line(p) - _line(s)) <= offset_tolerance + 1e-6
            # disjoint in query time: overlapping parallel runs are duplicates for suppress()
            if same_line and -1e-6 <= s.query_start - p.query_end <= gap + 1e-6:
                total = p.seconds + s.seconds
                score = (p.score * p.seconds + s.score * s.seconds) / max(total, 1e-6)
                out[-1] = type(p)(
                    p.query_start,
                    max(p.query_end, s.query_end),
                    min(p.ref_start, s.ref_start),
                    max(p.ref_end, s.ref_end),
                    score,
                    p.reversed,
                )
                continue
        out.append(s)
    return out


def offset_vote(
    sim: np.ndarray,
    q_times: np.ndarray,
    r_times: np.ndarray,
    frame_threshold: float,
    tolerance: float,
    min_frames: int = 2,
) -> list[Segment]:
    """The fallback's fine stage, for a few snapshots spread over minutes: lines cannot be
    traced through 30 frames 10 s apart, but a copy still shows as query frames whose best
    reference frames sit at one time offset. Each query frame above the threshold votes
    for its offset; the largest group agreeing within `tolerance` seconds is the match."""
    if sim.size == 0:
        return []
    best = sim.argmax(axis=1)
    score = sim[np.arange(len(sim)), best]
    ok = score >= frame_threshold
    if ok.sum() < min_frames:
        return []
    q, r, s = q_times[ok], r_times[best[ok]], score[ok]
    offsets = r - q
    agree = np.abs(offsets[:, None] - offsets[None, :]) <= tolerance
    members = agree[int(np.argmax(agree.sum(axis=1)))]
    if members.sum() < min_frames:
        return []
    q, r, s = q[members], r[members], s[members]
    return [Segment(float(q.min()), float(q.max()), float(r.min()), float(r.max()), float(s.mean()))]


def best_line(
    sim: np.ndarray,
    q_times: np.ndarray,
    r_times: np.ndarray,
    step: float,
    ref_step: float,
    segment: Segment,
    slopes: tuple[float, ...] = SLOPES,
) -> Segment:
    """The line of `segment`'s direction (forward or backwards) with the highest mean
    similarity over its query stretch, covering at least half of that stretch's frames,
    as a segment (its score kept). For a segment turned round by the look-alike test
    (`vq.match.motion`): the forward line it was found on says nothing of where the
    reversed one runs on the reference."""
    rows = np.flatnonzero((q_times >= segment.query_start - 1e-6) & (q_times < segment.query_end - 1e-6))
    m = sim.shape[1]
    if len(rows) == 0 or m == 0:
        return segment
    rate = step / ref_step
    direction = -1.0 if segment.reversed else 1.0
    best, best_cols = -np.inf, None
    for speed in slopes:
        slope = direction * speed * rate
        ends = (slope * rows[0], slope * rows[-1])  # only lines that cross the reference there
        for b in np.arange(np.floor(-max(ends)) - 1, np.ceil(m - min(ends)) + 1):
            cols = np.round(slope * rows + b).astype(int)
            ok = (cols >= 0) & (cols < m)
            if 2 * ok.sum() < len(rows):
                continue
            score = float(sim[rows[ok], cols[ok]].mean())
            if score > best:
                best, best_cols = score, cols[ok]
    if best_cols is None:
        return segment
    r0, r1 = float(r_times[best_cols.min()]), float(r_times[best_cols.max()] + ref_step)
    return replace(segment, ref_start=r0, ref_end=r1)
