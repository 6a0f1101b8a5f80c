"""Do the two sides of a matched segment change together? The look-alike test.

A frame embedding answers "is this the same picture". Other moments of one fixed camera,
or of one set, answer yes to that all along, so their similarity matrix is high
everywhere and the aligner finds a line through it. What only a copy shares with its
source is how the picture *changes*: the same people walking the same way at the same
moments, the same cuts, the same camera move. So, along the segment's line, each side's
vectors minus their own mean over the segment (what stays -- the scene, and any constant
edit such as a crop, a border, a colour grade -- cancels) are correlated. A copy's changes
line up (held-out seed 0, whole segments: median 0.59 for full copies, 0.72 speed, 0.52
colour-graded); another moment's do not (look-alikes: median 0.06; `BENCHMARKS.md`).

Only the frames that match on the line count (similarity at least the frame threshold):
a segment's ends and bridged gaps may hold frames that are not the copy (a partial copy
between other footage), and their changes would drown the copy's. And a reference that
barely changes along the segment (a test card, a still) has nothing to agree on: its
"changes" are noise, a true copy's agreement with them is low, so the test abstains there
(`Motion.change` under the library's `motion_floor`). It abstains on the agreement only: a
still is copied by a picture that holds still too, so a query that moves along such a
segment (`Motion.query_change` at least the library's `moving_query`) is not its copy. It is
another moment of the fixed camera with someone passing, or other footage that happens to
look like the still. Edits over a copy (scrolling comments, grades, crops) moved true
copies of stills by at most 0.08 on the held-out suites; other moments of a fixed camera
and other footage matched to a still, by 0.27-0.40 (`BENCHMARKS.md`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from vq.match.segments import Segment

MIN_FRAMES = 3  # fewer query frames in a segment than this: no judgement (kept)
# Turning a segment round needs at least this agreement (and `min_motion`): two directions
# tried give a look-alike two chances to pass by luck. 0.5 was validated as 0.2 over a 0.3
# cut (at +0, held-out seeds 0 and 1 each flagged one more look-alike); kept as a level,
# not a margin, since the cut moved with the library's rate (0.4 at 2 fps: +0.2 lost 2 of
# 16 reversed fixed-camera copies, at 0.52 and 0.598; 0.3 + 0.1 let 2 more look-alikes in).
FLIP_AGREEMENT = 0.5


# `moving_query` at this value turns the moving-query test off: no change reaches it (unit
# vectors lie within 2 of their mean).
NO_MOVING_QUERY = 2.0


@dataclass(frozen=True)
class Motion:
    agreement: float  # correlation of the two sides' changes, -1..1
    change: float  # how far the reference's vectors move from their mean (mean distance)
    query_change: float  # the same for the query (its stillest view)


def segment_motion(
    views: list[np.ndarray],
    times: np.ndarray,
    ref: np.ndarray,
    ref_times: np.ndarray,
    segment: Segment,
    sim: np.ndarray | None = None,
    frame: float = -1.0,
) -> Motion | None:
    """Along `segment`'s line, over the query frames whose similarity `sim` (query x
    reference) on the line is at least `frame`: the correlation of the query's and the
    reference's mean-removed vectors (the better of the query's views: crop, whole frame)
    and how much each side changes. None when fewer than `MIN_FRAMES` frames are left."""
    if len(ref_times) == 0:
        return None
    inside = np.flatnonzero((times >= segment.query_start - 1e-6) & (times <= segment.query_end + 1e-6))
    mapped = segment.ref_at(times[inside])
    nearest = np.abs(ref_times[None, :] - mapped[:, None]).argmin(axis=1)
    if sim is not None:
        on_line = sim[inside, nearest] >= frame
        inside, nearest = inside[on_line], nearest[on_line]
    if len(inside) < MIN_FRAMES:
        return None
    r = ref[nearest] - ref[nearest].mean(axis=0)
    change = float(np.linalg.norm(r, axis=1).mean())
    best, query_change = -1.0, np.inf
    for view in views:
        q = view[inside] - view[inside].mean(axis=0)
        query_change = min(query_change, float(np.linalg.norm(q, axis=1).mean()))
        den = np.sqrt(float((q * q).sum()) * float((r * r).sum()))
        if den > 0:
            best = max(best, float((q * r).sum()) / den)
    return Motion(best, change, query_change)


def keep_moving_together(
    segments: list[Segment],
    views: list[np.ndarray],
    times: np.ndarray,
    ref: np.ndarray,
    ref_times: np.ndarray,
    min_motion: float,
    floor: float = 0.0,
    sim: np.ndarray | None = None,
    frame: float = -1.0,
    refit: Callable[[Segment], Segment] | None = None,
    moving_query: float = NO_MOVING_QUERY,
) -> list[Segment]:
    """The segments whose two sides change together (agreement >= `min_motion`, recorded
    as `Segment.motion`); kept without judgement: too short, or a reference changing less
    than `floor` while the query changes less than `moving_query`. A segment whose changes
    agree only when one side is played the other way (at least `FLIP_AGREEMENT`) is that:
    a slow scene played backwards fits a forward line about as well as the reversed one,
    and its changes tell the direction. `refit` places a turned segment on the reference
    (`vq.match.align.best_line`); without it the turned segment keeps the forward line's
    reference span."""
    kept = []
    for s in segments:
        motion = segment_motion(views, times, ref, ref_times, s, sim, frame)
        if motion is None:
            kept.append(s)  # too short to judge: `motion` stays None
            continue
        if motion.change < floor:  # a still reference: nothing to agree on
            if motion.query_change < moving_query:
                kept.append(s)  # not judged: `motion` stays None
            continue
        if motion.agreement >= min_motion:
            kept.append(replace(s, motion=motion.agreement))
            continue
        flipped = replace(s, reversed=not s.reversed, pixels=None)  # measured on the forward line
        if refit is not None:
            flipped = refit(flipped)
        other_way = segment_motion(views, times, ref, ref_times, flipped, sim, frame)
        if other_way is not None and other_way.agreement >= max(min_motion, FLIP_AGREEMENT):
            kept.append(replace(flipped, motion=other_way.agreement))
    return kept
