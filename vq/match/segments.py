"""A matched segment: a stretch of the query aligned to a stretch of a reference."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    score: float

    def to_json(self) -> dict:
        return {k: round(v, 3) for k, v in asdict(self).items()}

    @property
    def seconds(self) -> float:
        return self.query_end - self.query_start


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def suppress(segments: list[Segment], overlap_share: float = 0.5) -> list[Segment]:
    """Non-maximum suppression: a segment sharing more than `overlap_share` of its own
    query time (or reference time) with a better one is the same match seen again (a
    fragment on a neighbouring slope, a one-to-many repeat) and is dropped."""
    kept: list[Segment] = []
    for s in sorted(segments, key=lambda s: (-s.score * s.seconds, s.query_start)):
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


def frame_span(times: np.ndarray, i0: int, i1: int, step: float) -> tuple[float, float]:
    """Seconds covered by frames i0..i1 (inclusive) sampled every `step` seconds."""
    return float(times[i0]), float(times[i1] + step)
