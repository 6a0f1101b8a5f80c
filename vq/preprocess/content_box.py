"""Find the main picture inside a frame: the content box.

Re-uploads hide copies behind padding: solid bars of any colour, a blurred enlarged copy
of the picture (blur fill), a decorated template page, a live-stream room, a player
window, or another video around a picture-in-picture. The copy-detection seed crops the
main picture before embedding ("find clear boundaries with edge detection, combine them
into a rectangle, crop"), because otherwise the picture is a small part of a 224 px input.

The decision is made once per video from several sampled frames (never frame by frame,
so the crop is stable), on a reduced grey copy, with vectorised numpy:

1. Solid bars (black, white, any colour): rows and columns that are flat in every frame
   are peeled from each side, exactly.
2. Soft padding: per-pixel maps over the frames give *activity* (temporal std; pages and
   player chrome do not move), *detail* (mean |Laplacian|; blur fill has little), and
   *persistent edges* (median over frames of the row/column difference; a picture's
   boundary stays put while scene edges move). Each side is peeled inward, strip by
   strip between persistent edge lines, while the strip reads as padding next to what is
   left: much blurrier, static while the inside moves, much flatter, or mostly one colour.
3. Windows (picture-in-picture, template, live-stream room, player): the best-supported
   rectangle of persistent edge lines (all candidate lines at once, vectorised), where a
   side's support is the share of its length on an edge or a faint ridge; one side may
   lie on the frame's edge; a line that runs on past a corner is not a window's side (a
   picture's own border, a horizon). It replaces the padding stage's box when the two
   are consistent and it is clearly not a detail of the picture.

With fewer than three frames there is no activity: detail and edges decide alone, and
every edge looks persistent, so a window needs near-complete sides (0.9). The
measured accuracy per edit family is in `BENCHMARKS.md` (`benchmarks/media.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

WORK_SIDE = 256  # analysis resolution (longer side), pixels
MIN_SIDE_FRACTION = 0.2  # a content box is at least this fraction of each frame side
BORDER_GAP = 2  # analysis pixels: a line this close to the searched area's border is that border
MIN_RECT_SUPPORT = 0.6  # the least-supported side of a window, share of its length
FRAMED_RECT_SUPPORT = 0.75  # the same inside solid bars with no other padding
SINGLE_FRAME_RECT_SUPPORT = 0.9  # the same from fewer than three frames
OPEN_MIN_SUPPORT = 0.9  # a window with one side on the frame's edge: its three lines
OPEN_PENALTY = 0.2  # ... and it ranks this far below a closed one
ONE_END_RUN = 0.8  # a window side whose line runs on past one corner over this share of the gap
ONE_END_WEIGHT = 0.5  # ... counts this much of its support
RIDGE_MIN = 8.0  # grey levels: a faint boundary still counts when it is a ridge this high
RIDGE_RATIO = 4.0  # ... and this many times the edge two lines either side


@dataclass(frozen=True)
class ContentBox:
    """(x0, y0, x1, y1), exclusive, in the pixels of the frames it was found in."""

    x0: int
    y0: int
    x1: int
    y1: int
    method: str = "full"  # full | bars | padding | rectangle

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def to_json(self) -> dict:
        return asdict(self)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def crop_to_box(image: np.ndarray, box: ContentBox) -> np.ndarray:
    return image[box.y0 : box.y1, box.x0 : box.x1]


# -- maps ------------------------------------------------------------------------------------


def _grey_small(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """(N, H, W, 3) uint8 -> (N, h, w) float32 grey, block-averaged by an integer factor."""
    n, h, w, _ = frames.shape
    f = max(1, int(np.ceil(max(h, w) / WORK_SIDE)))
    hh, ww = h // f, w // f
    grey = frames[:, : hh * f, : ww * f].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    return grey.reshape(n, hh, f, ww, f).mean(axis=(2, 4)), f


def _maps(grey: np.ndarray):
    lap = np.zeros_like(grey)
    lap[:, 1:-1, 1:-1] = np.abs(
        4 * grey[:, 1:-1, 1:-1]
        - grey[:, :-2, 1:-1]
        - grey[:, 2:, 1:-1]
        - grey[:, 1:-1, :-2]
        - grey[:, 1:-1, 2:]
    )
    detail = lap.mean(axis=0)
    activity = grey.std(axis=0) if len(grey) >= 3 else None
    # Edge between row y-1 and row y (stored at y), and between column x-1 and x.
    edge_h = np.zeros(grey.shape[1:], np.float32)
    edge_v = np.zeros(grey.shape[1:], np.float32)
    edge_h[1:] = np.median(np.abs(np.diff(grey, axis=1)), axis=0)
    edge_v[:, 1:] = np.median(np.abs(np.diff(grey, axis=2)), axis=0)
    return detail, activity, edge_h, edge_v


# -- stage 1: solid bars -------------------------------------------------------------------------


def _uniform(lines: np.ndarray) -> np.ndarray:
    """lines: (N, L, K) grey values of L lines of K pixels in N frames -> (L,) bool:
    flat along the line in every frame and the same level in every frame."""
    spread = lines.std(axis=2).max(axis=0)
    level = lines.mean(axis=2)
    return (spread < 4.0) & (level.max(axis=0) - level.min(axis=0) < 6.0)


def _peel_solid(grey: np.ndarray) -> tuple[int, int, int, int]:
    _, h, w = grey.shape
    x0, y0, x1, y1 = 0, 0, w, h
    for _ in range(2):  # rows, then columns within the rows left, then once more
        if y1 - y0 < 2 or x1 - x0 < 2:
            break  # all padding: nothing left to measure
        rows = _uniform(grey[:, y0:y1, x0:x1])
        while y0 < y1 and rows[0]:
            rows, y0 = rows[1:], y0 + 1
        while y1 > y0 and rows[-1]:
            rows, y1 = rows[:-1], y1 - 1
        if y1 - y0 < 2:
            break
        cols = _uniform(grey[:, y0:y1, x0:x1].transpose(0, 2, 1))
        while x0 < x1 and cols[0]:
            cols, x0 = cols[1:], x0 + 1
        while x1 > x0 and cols[-1]:
            cols, x1 = cols[:-1], x1 - 1
    return x0, y0, x1, y1


# -- stage 2: soft padding (blur fill, static pages, chrome) ---------------------------------------


def _line_candidates(strength: np.ndarray, lo: int, hi: int) -> list[int]:
    """Positions in (lo, hi) where a persistent edge line stands out."""
    seg = strength[lo:hi]
    if seg.size < 3:
        return []
    level = 3.0 * np.median(strength) + 1.0
    peak = (seg[1:-1] >= seg[:-2]) & (seg[1:-1] >= seg[2:]) & (seg[1:-1] > level)
    return [lo + 1 + int(i) for i in np.flatnonzero(peak)]


def _is_padding(d_s, a_s, f_s, m_s, d_i, a_i, f_i, m_i, moving: bool) -> bool:
    """Does a strip (s) look like padding next to the interior (i)?

    d: detail, a: activity, f: flat fraction, m: share of pixels at the strip's dominant
    level (a page or chat panel is mostly one background colour, even with text on it).
    """
    blurred = d_s < 0.35 * d_i and f_s > 0.5
    static = moving and a_s < 0.2 * a_i
    flatter = f_s > 0.75 and f_s > f_i + 0.25
    # One colour and as busy as the picture is the picture (a fixed camera's pavement).
    one_colour = m_s > 0.55 and m_s > m_i + 0.3 and (not moving or a_s < 0.6 * a_i or d_s < 0.4 * d_i)
    return bool(blurred or static or flatter or one_colour)


def _dominant_share(grey: np.ndarray, axis: int) -> np.ndarray:
    """Per line: share of pixels, over all frames, within 12 grey levels of its median."""
    med = np.median(grey, axis=(0, axis), keepdims=True)
    return (np.abs(grey - med) < 12).mean(axis=(0, axis))


def _peel_soft(box, grey, detail, activity, edge_h, edge_v) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    moving = activity is not None
    act = activity if moving else np.zeros_like(detail)
    flat = detail < 2.0

    def peel(profile_d, profile_a, profile_f, profile_m, strength, lo, hi, forward: bool, span: int) -> int:
        # Each side peels at most 45 % of the span both sides share (not of what the first
        # side left: centred padding is more than 45 % of that when the picture is short).
        keep = max(2, int(np.ceil(MIN_SIDE_FRACTION * len(profile_d))))
        limit = min(lo + int(0.45 * span), hi - keep) if forward else max(hi - int(0.45 * span), lo + keep)
        cands = [c for c in _line_candidates(strength, lo, hi) if (c <= limit if forward else c >= limit)]
        edge = lo if forward else hi
        for c in sorted(cands, reverse=not forward):
            strip = slice(edge, c) if forward else slice(c, edge)
            inner = slice(c, hi) if forward else slice(lo, c)
            if strip.stop - strip.start < 1:
                continue
            if not _is_padding(
                profile_d[strip].mean(),
                profile_a[strip].mean(),
                profile_f[strip].mean(),
                profile_m[strip].mean(),
                profile_d[inner].mean(),
                profile_a[inner].mean(),
                profile_f[inner].mean(),
                profile_m[inner].mean(),
                moving and profile_a[inner].mean() > 1.0,
            ):
                break
            edge = c
        return edge

    for _ in range(2):
        cols = slice(x0, x1)
        d, a, f = detail[:, cols].mean(1), act[:, cols].mean(1), flat[:, cols].mean(1)
        m = _dominant_share(grey[:, :, cols], axis=2)
        eh = edge_h[:, cols].mean(1)
        y0n = peel(d, a, f, m, eh, y0, y1, True, y1 - y0)
        y1n = peel(d, a, f, m, eh, y0n, y1, False, y1 - y0)
        rows = slice(y0n, y1n)
        d, a, f = detail[rows].mean(0), act[rows].mean(0), flat[rows].mean(0)
        m = _dominant_share(grey[:, rows], axis=1)
        ev = edge_v[rows].mean(0)
        x0n = peel(d, a, f, m, ev, x0, x1, True, x1 - x0)
        x1n = peel(d, a, f, m, ev, x0n, x1, False, x1 - x0)
        if (x0n, y0n, x1n, y1n) == (x0, y0, x1, y1):
            break
        x0, y0, x1, y1 = x0n, y0n, x1n, y1n
    return x0, y0, x1, y1


# -- stage 3: windows (picture-in-picture, template, live-stream room, player) ---------------------


def _edge_maps(edge: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholdings of a persistent-edge map, with lines along axis 1 (transposed when
    axis == 1): `strong` finds lines; `marked` is strong or a faint ridge, at the line's
    exact position (does a line run on past a corner?); `support` is `marked` widened a
    pixel either side across the line (how much of a line is there)."""
    if axis == 1:
        edge = edge.T
    thr = max(np.percentile(edge, 90), 4 * np.median(edge) + 1.0)
    strong = edge > thr
    # A ridge: well above the same position two lines either side. Where the picture is
    # dark against a dark page its boundary is a faint step, but a step all the same,
    # while texture and text have edges on the neighbouring lines too.
    near = np.zeros_like(edge)
    near[2:] = edge[:-2]
    near[:-2] = np.maximum(near[:-2], edge[2:])
    marked = strong | ((edge > RIDGE_MIN) & (edge > RIDGE_RATIO * near))
    support = marked.copy()
    support[1:] |= marked[:-1]
    support[:-1] |= marked[1:]
    return strong, marked, support


def _line_positions(strong: np.ndarray, min_len: int, keep: int = 24) -> np.ndarray:
    """Rows of `strong` (lines along axis 1) with at least `min_len` strong pixels, the
    `keep` strongest. Not only local maxima: a window's edge can run a pixel from a
    stronger line (a header bar's edge just above a live-stream picture)."""
    count = strong.sum(axis=1)
    rows = np.flatnonzero(count >= min_len)
    return np.sort(rows[np.argsort(-count[rows], kind="stable")[:keep]])


def _run_share(strong: np.ndarray, lines: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Share of strong pixels on line lines[i] between lo[j] and hi[j], as (len(lines), len(lo))."""
    cum = np.concatenate([np.zeros((len(lines), 1)), np.cumsum(strong[lines], axis=1)], axis=1)
    length = np.maximum(hi - lo, 1)
    return (cum[:, hi] - cum[:, lo]) / length


def _rectangle(edge_h, edge_v) -> tuple[tuple[int, int, int, int], float] | None:
    """The best-supported rectangle of persistent edge lines, with its support (0-1): the
    least-supported of its sides. One side may lie on the border of the area searched (a
    window touching the frame's edge has no line there); the other three must be lines."""
    h, w = edge_h.shape
    strong_h, overhang_h, support_h = _edge_maps(edge_h, 0)
    strong_v, overhang_v, support_v = _edge_maps(edge_v, 1)  # transposed: lines along axis 1
    # Candidate lines, plus the area's own borders, which carry no edge ("open" sides).
    # Lines hugging the border are the border (JPEG ringing keeps a bar's last row out of
    # the solid stage): they would otherwise close a rectangle on any picture detail.
    ys = _line_positions(strong_h, int(MIN_SIDE_FRACTION * w))
    xs = _line_positions(strong_v, int(MIN_SIDE_FRACTION * h))
    ys = ys[(ys > BORDER_GAP) & (ys < h - BORDER_GAP)]
    xs = xs[(xs > BORDER_GAP) & (xs < w - BORDER_GAP)]
    ys_all, xs_all = np.unique(np.r_[0, ys, h]), np.unique(np.r_[0, xs, w])
    ya, yb = np.meshgrid(ys_all, ys_all, indexing="ij")
    xa, xb = np.meshgrid(xs_all, xs_all, indexing="ij")
    ok_y = yb - ya >= MIN_SIDE_FRACTION * h
    ok_x = xb - xa >= MIN_SIDE_FRACTION * w
    if not ok_y.any() or not ok_x.any():
        return None
    ya, yb = ya[ok_y], yb[ok_y]  # (P,) row pairs
    xa, xb = xa[ok_x], xb[ok_x]  # (Q,) column pairs

    def side(support, overhang, lines, lo, hi, border):
        """(P or Q, Q or P) support of each side; sides on the area's border are NaN (open),
        sides whose line runs on past both corners are 0: a window's edge stops at its
        corners, an edge inside a picture (a horizon, the picture's own border) need not."""
        inside = np.clip(lines, 0, support.shape[0] - 1)
        share = _run_share(support, inside, lo, hi)
        n = support.shape[1]
        gap = max(2, int(0.05 * n))
        before = _run_share(overhang, inside, np.maximum(lo - gap, 0), lo)
        after = _run_share(overhang, inside, hi, np.minimum(hi + gap, n))
        through = (before > 0.5) & (after > 0.5) & (lo >= gap) & (hi + gap <= n)
        # With one end at the area's border (uncheckable), the other must run on a long
        # way: text beside a window (a chat panel) has edges near the corner, a picture's
        # own border runs on to the far side.
        far = max(2 * gap, int(0.25 * n))
        long_before = _run_share(overhang, inside, np.maximum(lo - far, 0), lo)
        long_after = _run_share(overhang, inside, hi, np.minimum(hi + far, n))
        through |= (lo < gap) & (hi + far <= n) & (long_after > 0.6)
        through |= (hi + gap > n) & (lo >= far) & (long_before > 0.6)
        share[through] = 0.0
        # Past one corner only: weaker evidence (an edge inside the picture meeting the
        # window's real side), but not none (a header bar can run on past a corner).
        one_end = ((before > ONE_END_RUN) & (lo >= gap)) | ((after > ONE_END_RUN) & (hi + gap <= n))
        share[one_end & ~through] *= ONE_END_WEIGHT
        share[np.isin(lines, border)] = np.nan
        return share

    top = side(support_h, overhang_h, ya, xa, xb, (0, h))  # (P, Q)
    bottom = side(support_h, overhang_h, yb, xa, xb, (0, h))
    left = side(support_v, overhang_v, xa, ya, yb, (0, w)).T  # (P, Q)
    right = side(support_v, overhang_v, xb, ya, yb, (0, w)).T
    sides = np.stack([top, bottom, left, right])
    open_sides = np.isnan(sides).sum(axis=0)
    support = np.min(np.where(np.isnan(sides), np.inf, sides), axis=0)
    # A side on the border is a weaker claim: the three lines must then be near complete,
    # and a closed rectangle nearly as well supported is preferred.
    score = np.select(
        [open_sides == 0, open_sides == 1],
        [support, np.where(support >= OPEN_MIN_SUPPORT, support - OPEN_PENALTY, 0.0)],
        0.0,
    )
    area = (yb - ya)[:, None] * (xb - xa)[None, :]
    score = np.where(area < 0.85 * h * w, score, 0.0)  # the whole area is not a window
    # Rank by the weakest side, then by all four (two rectangles sharing their weakest
    # side differ in the others), then by size.
    mean = np.nanmean(np.where(np.isnan(sides), 1.0, sides), axis=0)
    best = np.lexsort((area.ravel(), mean.ravel(), (np.round(score * 10) / 10).ravel()))[-1]
    p, q = np.unravel_index(best, score.shape)
    if score[p, q] < MIN_RECT_SUPPORT:
        return None
    return (int(xa[q]), int(ya[p]), int(xb[q]), int(yb[p])), float(score[p, q])


def _area(box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _is_window(rect, support: float, box, solid, method: str, moving: bool, size) -> bool:
    """Is the best rectangle the picture's window rather than a detail inside the picture
    (a shelf, a doorway)? `box` is what the padding stage left inside the `solid` bars."""
    w, h = size
    # Where the padding stage peeled two sides or more, the window agrees with two of them
    # or covers most of what it left: a small rectangle inside a picture that padding
    # surrounds (blur fill) is a detail of that picture.
    peeled = [i for i in range(4) if box[i] != solid[i]]
    agree = sum(abs(rect[i] - box[i]) <= 2 for i in peeled)
    consistent = len(peeled) <= 1 or agree >= 2 or _area(rect) >= 0.5 * _area(box)
    # Bars around a picture and nothing else: a window inside is unlikely, a straight
    # scene detail is not, so the window must be clear. From one or two frames every edge
    # is "persistent", a doorway as much as a window.
    clear = (support >= FRAMED_RECT_SUPPORT or method != "bars") and (
        moving or support >= SINGLE_FRAME_RECT_SUPPORT
    )
    big_enough = (
        _area(rect) > 0.1 * _area(solid)
        and rect[2] - rect[0] >= MIN_SIDE_FRACTION * w
        and rect[3] - rect[1] >= MIN_SIDE_FRACTION * h
    )
    return consistent and clear and big_enough


# -- entry point ---------------------------------------------------------------------------------


def detect_content_box(frames: np.ndarray, max_frames: int = 16) -> ContentBox:
    """The main picture's box in `frames` (N, H, W, 3) uint8 sampled from one video."""
    if frames.ndim == 3:
        frames = frames[None]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"detect_content_box expects uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    n, H, W, _ = frames.shape
    if n > max_frames:
        frames = frames[np.linspace(0, n - 1, max_frames).round().astype(int)]
    grey, f = _grey_small(frames)
    _, h, w = grey.shape
    full = ContentBox(0, 0, W, H, "full")
    if h < 8 or w < 8:
        return full
    detail, activity, edge_h, edge_v = _maps(grey)

    box = solid = _peel_solid(grey)
    bx0, by0, bx1, by1 = solid
    method = "bars" if box != (0, 0, w, h) else "full"
    if box[2] - box[0] < MIN_SIDE_FRACTION * w or box[3] - box[1] < MIN_SIDE_FRACTION * h:
        return full  # an almost uniform video: nothing to crop to
    soft = _peel_soft(box, grey, detail, activity, edge_h, edge_v)
    if soft != box:
        box, method = soft, "padding"

    # A window: a rectangle of persistent edge lines inside what the bars left. The
    # padding stage peels page and chrome but cannot see a boundary between two pictures,
    # nor always stop exactly at one.
    found = _rectangle(edge_h[by0:by1, bx0:bx1], edge_v[by0:by1, bx0:bx1])
    if found is not None:
        (rx0, ry0, rx1, ry1), support = found
        rect = (rx0 + bx0, ry0 + by0, rx1 + bx0, ry1 + by0)
        if _is_window(rect, support, box, solid, method, activity is not None, (w, h)):
            box, method = rect, "rectangle"

    x0, y0, x1, y1 = box
    if x1 - x0 < MIN_SIDE_FRACTION * w or y1 - y0 < MIN_SIDE_FRACTION * h:
        return full
    # Back to input pixels; the last block may hold up to f-1 pixels not analysed.
    X0, Y0 = x0 * f, y0 * f
    X1 = W if x1 >= w else x1 * f
    Y1 = H if y1 >= h else y1 * f
    if (X0, Y0, X1, Y1) == (0, 0, W, H):
        method = "full"
    return ContentBox(X0, Y0, X1, Y1, method)


def solid_bars(frames: np.ndarray) -> tuple[int, int, int, int]:
    """Only the solid-bar stage, in input pixels: what is left after uniform borders."""
    grey, f = _grey_small(frames)
    x0, y0, x1, y1 = _peel_solid(grey)
    _, h, w = grey.shape
    H, W = frames.shape[1:3]
    return (x0 * f, y0 * f, W if x1 >= w else x1 * f, H if y1 >= h else y1 * f)


MIN_FRAME_STD = 6.0  # grey levels: below this a frame is one colour (black, fade, title card)


def informative_frames(
    frames: np.ndarray, box: ContentBox | None = None, min_std: float = MIN_FRAME_STD
) -> np.ndarray:
    """Boolean mask of frames with a picture in them. Solid and nearly solid frames (black
    at a cut, a fade, an empty card) look alike in every video, so a copy detector that
    indexes them matches unrelated uploads; the pipeline neither stores nor queries them."""
    if len(frames) == 0:
        return np.zeros(0, bool)
    if box is not None:
        frames = frames[:, box.y0 : box.y1, box.x0 : box.x1]
    step = max(1, max(frames.shape[1:3]) // 128)  # a strided view is plenty for a spread
    small = frames[:, ::step, ::step].astype(np.float32)
    grey = small @ np.array([0.299, 0.587, 0.114], np.float32)
    return grey.reshape(len(frames), -1).std(axis=1) >= min_std


def is_informative(image: np.ndarray, min_std: float = MIN_FRAME_STD) -> bool:
    """The same rule for one image of any size (training sources, evaluation pairs): what
    the runtime would neither store nor query is not trained on either."""
    return bool(informative_frames(image[None], None, min_std)[0])
