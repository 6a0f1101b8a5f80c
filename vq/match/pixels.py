"""Do the two sides of a segment change together, pixel for pixel? The look-alike test where
an embedding cannot tell.

A copy-detection embedding is trained to say "same picture" through crops, grades and
overlays, so other moments of one fixed camera (the same room, other people walking) look
the same to it: on the held-out suite every `vtest` frame scores 0.96-0.99 against every
other, and the vector changes `vq.match.motion` correlates are noise at that level. The
pixels still differ where it matters: the people are elsewhere. So the library keeps a
32x32 luma thumbnail of every stored frame (its content box, 1 KB), and along a matched
segment's line each side's thumbnails minus their own mean over the segment are correlated.
What stays -- the room, and any constant edit over a copy (a border, a logo, a grade's
offset) -- cancels; what moves must move the same way. On the held-out suite (seed 1, lines
of true copies against other moments and wrong references of the same footage), true copies
agree at a median of 0.93 (5th percentile 0.30: heavy stacks and crops, whose geometry a
32 px thumbnail cannot undo), other moments at 0.045 (95th percentile 0.15; `BENCHMARKS.md`).

Where a reference holds still in its pixels (a still, a test card, a slow scene) there is
nothing to agree on and the test abstains (`change` under the library's `pixel_floor`), as
it does for segments of fewer than `MIN_FRAMES` frames; the embedding's test then decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from vq.match.align import SLOPES
from vq.match.segments import Segment, only_new
from vq.preprocess.normalize import LUMA
from vq.preprocess.resize import resize

THUMB_SIDE = 32  # pixels a side: people in a 640 px frame stay a few pixels big
MIN_FRAMES = 3  # fewer aligned frames than this: no judgement
# A kept line's end frames agreeing less than this on their own, or less than `TRIM_SHARE`
# of the line's median frame, are trimmed off. Other footage around a copy sits near 0
# (0.06-0.13 beside a synthetic fixed-camera copy agreeing at 0.93); a heavily edited
# copy's own frames dip to 0.1-0.2 (held-out seed 1), hence a share, not a level alone.
TRIM_AGREEMENT = 0.1
TRIM_SHARE = 0.5
# `pixel_line` searches segments of at most this many query frames (a minute at 2 fps): the
# wandering lines it is for run through a few clips of one camera, and its cost grows with
# the square of a segment's length.
SEARCH_MAX_FRAMES = 120
CLIP_MADS = 4.0  # `changes` clips each pixel's change at this many robust deviations
# Where the aligner's own line passes, a searched line must agree clearly better to replace
# it, and a line of another speed better than the best speed-1 line: where a camera moves
# smoothly (a pan, a zoom) each frame's change from the mean is nearly linear in time, so
# lines at other offsets and speeds agree in pixels too and noise picks one (seed 1: pans
# moved by one frame at +0.04-0.07; wandering lines through fixed-camera footage and
# mirrored copies re-placed at +0.15-0.38).
SEARCH_MARGIN = 0.15
# A passing line may be moved onto a line spanning this share of its frames (or
# `search_frames`, if fewer): the copy it covers, not a stretch that agrees by luck.
MOVE_SHARE = 0.6
# ... and onto a line of another speed where it spans at most this many frames (15 s at
# 2 fps): the search grows with speeds x offsets x frames (7 speeds over a minute against
# two took 15 s a segment), and over a longer stretch the picture changes enough for the
# embedding to find the speed itself.
MOVE_MAX_FRAMES = 30


def thumbnails(images: np.ndarray, box=None) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) -> uint8 luma (N, 32, 32) of each frame's content `box`
    (a `ContentBox`; None: the whole frame). Integer luma weights: the same bytes on every CPU."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3) frames, got {images.dtype} {images.shape}")
    if box is not None:
        images = images[:, box.y0 : box.y1, box.x0 : box.x1]
    if len(images) == 0:
        return np.zeros((0, THUMB_SIDE, THUMB_SIDE), np.uint8)
    small = resize(np.ascontiguousarray(images), (THUMB_SIDE, THUMB_SIDE), "bilinear")
    return ((small.astype(np.int32) @ LUMA + 500) // 1000).astype(np.uint8)


@dataclass(frozen=True)
class PixelMotion:
    agreement: float  # correlation of the two sides' mean-removed thumbnails, -1..1
    change: float  # how much the reference's pixels move along the segment (RMS, luma levels)
    frames: int  # query frames it was measured on


def _on_line(
    times: np.ndarray, ref_times: np.ndarray, segment: Segment, sim: np.ndarray | None, frame: float
) -> tuple[np.ndarray, np.ndarray]:
    """(query rows, reference columns) of the frames along `segment`'s line whose similarity
    `sim` there is at least `frame`; all of its frames where fewer than `MIN_FRAMES` are (a
    2 s find held up by two matching frames is judged on its four, not let through)."""
    rows = np.flatnonzero((times >= segment.query_start - 1e-6) & (times < segment.query_end - 1e-6))
    cols = np.abs(ref_times[None, :] - segment.ref_at(times[rows])[:, None]).argmin(axis=1)
    if sim is not None:
        on_line = sim[rows, cols] >= frame
        if on_line.sum() >= MIN_FRAMES:
            rows, cols = rows[on_line], cols[on_line]
    return rows, cols


def changes(x: np.ndarray) -> np.ndarray:
    """Frames (n, pixels) -> each pixel's change from its mean over the frames, clipped at
    `CLIP_MADS` robust deviations (1.4826 median absolute changes, over the pixels that
    change at all).

    The clip is what makes heavy overlays bearable: scrolling comments or a template's
    graphics change a few pixels a lot, and unclipped they outweigh a slow camera move's
    small changes everywhere. Clipped hard, people walking in a fixed camera (a few pixels
    changing a lot too) lose their weight as well; 4 deviations was the best of 2.5, 4, 8
    and none on the held-out suites' hardest true copies and wrong references
    (`BENCHMARKS.md`)."""
    c = x - x.mean(axis=0)
    moved = np.abs(c)[np.abs(c) > 1e-3]  # a static background's exact zeros say nothing of the spread
    limit = CLIP_MADS * 1.4826 * float(np.median(moved)) if len(moved) else 0.0
    if limit > 0:
        np.clip(c, -limit, limit, out=c)
        c -= c.mean(axis=0)
    return c


def _correlate(views: list[np.ndarray], rows: np.ndarray, ref: np.ndarray) -> tuple[float, np.ndarray]:
    """The best correlation of the query's `changes` at `rows` (over `views` and a left-right
    flip) with the reference's (`ref`: its thumbnails at the matching frames, flattened),
    and that side's correlation frame by frame."""
    r = changes(ref.astype(np.float32))
    r_energy = float((r * r).sum())
    r_norms = np.linalg.norm(r, axis=1)
    best, per_frame = -1.0, np.zeros(len(rows))
    for view in views:
        frames = view[rows]
        q = changes(frames.reshape(len(rows), -1).astype(np.float32)).reshape(frames.shape)
        for side in (q, q[:, :, ::-1]):  # the changes of the flipped frames are the flipped changes
            flat = side.reshape(len(rows), -1)
            den = np.sqrt(float((flat * flat).sum()) * r_energy)
            if den > 0 and float((flat * r).sum()) / den > best:
                best = float((flat * r).sum()) / den
                per_frame = (flat * r).sum(axis=1) / np.maximum(np.linalg.norm(flat, axis=1) * r_norms, 1e-9)
    return best, per_frame


def segment_pixels(
    views: list[np.ndarray],
    times: np.ndarray,
    ref: np.ndarray,
    ref_times: np.ndarray,
    segment: Segment,
    sim: np.ndarray | None = None,
    frame: float = -1.0,
) -> PixelMotion | None:
    """Along `segment`'s line: the correlation of the query's and the reference's thumbnails,
    each minus its mean over the segment, the best over the query's `views` (crop, whole
    frame) and over a left-right flip of the query (a mirrored copy moves mirrored). Only
    query frames whose similarity `sim` on the line is at least `frame` count (a partial
    copy's bridged gaps are other footage). None when fewer than `MIN_FRAMES` are left."""
    if len(ref_times) == 0 or len(ref) != len(ref_times):
        return None
    return _pixels_at(views, ref, *_on_line(times, ref_times, segment, sim, frame))


def _pixels_at(
    views: list[np.ndarray], ref: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> PixelMotion | None:
    """`segment_pixels` of the query frames `rows` paired with the reference frames `cols`."""
    if len(rows) < MIN_FRAMES:
        return None
    r = ref[cols].reshape(len(rows), -1).astype(np.float32)
    agreement, _ = _correlate(views, rows, r)
    change = float(np.sqrt(np.mean((r - r.mean(axis=0)) ** 2)))
    return PixelMotion(float(agreement), change, len(rows))


def pixel_line(
    views: list[np.ndarray],
    times: np.ndarray,
    ref: np.ndarray,
    ref_times: np.ndarray,
    segment: Segment,
    sim: np.ndarray,
    frame: float,
    step: float,
    min_frames: int,
    speeds: tuple[float, ...] = (1.0,),
) -> tuple[Segment, PixelMotion] | None:
    """Of the forward lines through `segment`'s query stretch at `speeds` (reference seconds
    per query second), the one whose pixels agree best, measured on at least `min_frames`
    frames, as (segment, its `segment_pixels`). A speed other than 1 must agree
    `SEARCH_MARGIN` better than the best plain line: a smooth camera move agrees with
    itself at many speeds as at many offsets, and most copies are played at speed 1.

    Where every frame of a fixed camera looks alike to the embedding, the aligner's line
    through a partial copy wanders: a copied stretch of `vtest` between two other stretches
    of it comes out as one line of speed 0.67 over all three. The copy is still a speed-1
    line whose people move as the reference's do. Many lines are tried, so a short one
    agrees by luck now and then (seed 1: other moments of the footage reach 0.43 on 3-4
    frames, 0.28 on 8 or more); hence `min_frames`, and the decision is made on the whole
    line over the reference, before its ends are trimmed (`trim_to_agreement`)."""
    rows = np.flatnonzero((times >= segment.query_start - 1e-6) & (times < segment.query_end - 1e-6))
    if not min_frames <= len(rows) <= SEARCH_MAX_FRAMES or len(ref_times) == 0 or len(ref) != len(ref_times):
        return None
    half = 0.5 * float(np.min(np.diff(ref_times))) if len(ref_times) > 1 else 0.5 * step
    best: dict[float, tuple[PixelMotion, Segment]] = {}
    seen: set[bytes] = set()
    for speed in speeds:
        # Lines through the segment's box in the similarity matrix (its query stretch against
        # its reference stretch), one through each (query frame, reference frame) pair there.
        offsets = np.unique(np.round(ref_times[None, :] - speed * times[rows][:, None], 2))
        low = segment.ref_start - speed * segment.query_end
        high = segment.ref_end - speed * segment.query_start
        for offset in offsets[(offsets >= low - half) & (offsets <= high + half)]:
            mapped = speed * times[rows] + offset
            on = rows[(mapped >= ref_times[0] - 1e-6) & (mapped <= ref_times[-1] + half)]
            if len(on) < min_frames:
                continue
            q0, q1 = float(times[on[0]]), float(times[on[-1]] + step)
            cols = np.clip(
                np.searchsorted(ref_times, speed * times[on] + offset - half), 0, len(ref_times) - 1
            )
            line = Segment(
                q0, q1, speed * q0 + float(offset), speed * q1 + float(offset), float(sim[on, cols].mean())
            )
            paired = _on_line(times, ref_times, line, sim, frame)
            key = np.concatenate(paired).tobytes()
            if key in seen:  # the frames another line already paired
                continue
            seen.add(key)
            px = _pixels_at(views, ref, *paired)
            if px is None or px.frames < min_frames:
                continue
            if speed not in best or px.agreement > best[speed][0].agreement:
                best[speed] = (px, line)
    if not best:
        return None
    speed = max(best, key=lambda v: best[v][0].agreement + (SEARCH_MARGIN if v == 1.0 else 0.0))
    px, line = best[speed]
    return line, px


def trim_to_agreement(
    views: list[np.ndarray],
    times: np.ndarray,
    ref: np.ndarray,
    ref_times: np.ndarray,
    segment: Segment,
    sim: np.ndarray,
    frame: float,
    step: float,
) -> Segment:
    """`segment` with the end frames that do not agree on their own (correlation under
    `TRIM_AGREEMENT` or `TRIM_SHARE` of the median frame's, each side's thumbnails minus
    their mean over the frames still in) peeled off one by one:
    the other footage a line through look-alike frames runs over either side of a partial
    copy. Its score stays (what the decision and the ranking were made on); at least
    `MIN_FRAMES` frames stay."""
    rows, cols = _on_line(times, ref_times, segment, sim, frame)
    if len(rows) <= MIN_FRAMES:
        return segment
    r = ref[cols].reshape(len(rows), -1).astype(np.float32)
    lo, hi = 0, len(rows) - 1
    while hi - lo + 1 > MIN_FRAMES:
        # Means over the frames still in: a peeled frame's ghost must not tie the rest together.
        _, per_frame = _correlate(views, rows[lo : hi + 1], r[lo : hi + 1])
        if min(per_frame[0], per_frame[-1]) >= max(TRIM_AGREEMENT, TRIM_SHARE * float(np.median(per_frame))):
            break
        if per_frame[0] <= per_frame[-1]:
            lo += 1
        else:
            hi -= 1
    if lo == 0 and hi == len(rows) - 1:
        return segment
    q0, q1 = float(times[rows[lo]]), float(times[rows[hi]] + step)
    r0, r1 = sorted((float(segment.ref_at(q0)), float(segment.ref_at(q1))))
    return replace(segment, query_start=q0, query_end=q1, ref_start=r0, ref_end=r1)


@dataclass(frozen=True)
class PixelRules:
    """The levels `judge_by_pixels` decides by (a library's `Thresholds`: `min_pixels`,
    `pixel_confirm`, `pixel_floor`, `pixel_search`, and `pixel_search_seconds` in frames)."""

    low: float  # under this a segment is not a copy
    high: float  # at least this, it is
    floor: float  # a reference whose pixels move less (RMS, luma levels) is not judged
    search_high: float = 1.0  # a searched line must agree at least this over its whole length
    search_frames: int = 8  # ... over at least this many frames (a passing line: see `MOVE_SHARE`)


def judge_by_pixels(
    segments: list[Segment],
    measure: Callable[[Segment], PixelMotion | None],
    rules: PixelRules,
    refit: Callable[[Segment], Segment] | None = None,
    search: Callable[[Segment, tuple[float, ...], int], tuple[Segment, PixelMotion] | None] | None = None,
    trim: Callable[[Segment], Segment] | None = None,
) -> tuple[list[Segment], list[Segment]]:
    """(kept, undecided): a segment whose pixels agree at least `rules.high` is a copy (kept,
    its agreement recorded as `Segment.pixels`); one agreeing less than `rules.low` is not,
    unless the line turned round (`refit` places it) agrees at least `high` (a slow scene
    played backwards fits a forward line too; `vq.match.motion`); the rest -- between the
    two, a reference whose pixels move less than `rules.floor`, too few frames -- are left
    `undecided` for the embedding's test (`vq.match.motion.keep_moving_together`).
    `measure` gives a segment's `segment_pixels`.

    `search` (`pixel_line`, given the speeds to try and the fewest frames a line may
    span) looks for the line over each segment's stretch whose pixels agree best, at least
    `rules.search_high` over the whole reference, and `trim` cuts a line to the frames that
    agree (`trim_to_agreement`). Where the segment's own line fails, a speed-1 line of at
    least `rules.search_frames` frames is kept instead (the aligner's line through
    look-alike footage wanders). Where it passes, the search tries every speed and lines
    down to `MOVE_SHARE` of the segment's frames, and the searched line replaces it only
    if, trimmed, it still spans that many and agrees `SEARCH_MARGIN` better there: where
    the picture changes slowly the embedding cannot tell the aligner which line is the
    copy's (held-out seed 0: a 3.5 s partial copy came out stretched over the whole 6 s
    reference, agreeing 0.73 in pixels against its own line's 0.98; a 1.5x copy at speed 1,
    0.57 against 0.97), while a pan or a zoom agrees with itself at many offsets and speeds
    alike. Every kept line is trimmed; of lines kept over one stretch, the best stays."""
    kept, undecided = [], []
    cut = trim if trim is not None else (lambda line: line)
    for s in segments:
        px = measure(s)
        if px is None or px.change < rules.floor:
            undecided.append(s)
            continue
        line, agreement = None, px.agreement  # the segment's own line, turned round, or searched
        if px.agreement >= rules.high:
            line = s
        elif px.agreement < rules.low:
            turned = replace(s, reversed=not s.reversed)
            turned = refit(turned) if refit is not None else turned
            other_way = measure(turned)
            if other_way is not None and other_way.agreement >= rules.high:
                line, agreement = turned, other_way.agreement
        line = cut(line) if line is not None else None
        # Where the segment's line fails, a plain copy is searched for, on lines long enough
        # not to agree by luck. Where it passes, the search only moves it: at any speed (the
        # aligner's speed is a guess where the picture changes slowly), and a short copy
        # (seven frames at 2 fps) too, onto most of its own frames.
        speeds, frames = (1.0,), rules.search_frames
        if line is not None and not line.reversed:  # (a reversed line is searched as before)
            frames = max(MIN_FRAMES, min(frames, math.ceil(MOVE_SHARE * px.frames)))
            if px.frames <= MOVE_MAX_FRAMES:
                speeds = SLOPES
        found = search(s, speeds, frames) if search is not None else None
        if found is not None and found[1].agreement >= rules.search_high and found[1].change >= rules.floor:
            if line is None:
                line, agreement = cut(found[0]), found[1].agreement
            else:
                trimmed = cut(found[0])
                there = measure(trimmed)
                if (
                    there is not None
                    and there.frames >= frames
                    and there.agreement >= agreement + SEARCH_MARGIN
                ):
                    line, agreement = trimmed, there.agreement
        if line is not None:
            kept.append(replace(line, pixels=agreement))
        elif px.agreement >= rules.low:
            undecided.append(replace(s, pixels=px.agreement))
    # Two segments re-placed onto one line (or onto a line already kept): the better stays.
    distinct: list[Segment] = []
    for k in sorted(kept, key=lambda k: -(k.pixels or 0.0)):
        distinct += only_new([k], distinct)
    return distinct, undecided
