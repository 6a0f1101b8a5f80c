"""The library's audio index: landmark hashes -> (video, anchor time), and audio matching.

Each ingested video with sound stores its landmark fingerprint (`vq.audio.landmarks`)
beside its frame vectors. In memory the hashes of all videos form an inverted index:
sorted arrays searched with `np.searchsorted`. New videos join as small sorted runs that
are merged into the main arrays once enough accumulate, so an ingest never re-sorts the
whole library.

Matching is the landmark method's offset voting, per reference video: the query's hashes
vote for (video, reference time - query time); a video whose best offset gathers at least
`min_votes` agreeing hashes, and at least `min_score` of the query's, is an audio match.
Its segments are the stretches of query time those agreeing hashes cover (split where
they leave a gap of more than `MAX_GAP` seconds), mapped to the reference by the offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vq.audio.landmarks import HOP, RATE, Fingerprint, votes_at
from vq.match.segments import Segment

FRAME = HOP / RATE  # seconds per landmark time step
MAX_GAP = 2.0  # seconds of query time without agreeing hashes that split a segment
MERGE_RUNS = 32  # small runs held before they are merged into the main arrays


@dataclass(frozen=True)
class AudioHit:
    video: int
    votes: int
    score: float  # agreeing hashes / the query's hashes
    offset: float  # reference time - query time, seconds
    segments: list[Segment]


class AudioIndex:
    def __init__(self) -> None:
        empty = np.zeros(0, np.int64)
        self._main = (empty, empty.astype(np.int32), empty.astype(np.int32))  # hashes, videos, times
        self._runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._main[0]) + sum(len(r[0]) for r in self._runs)

    def add(self, video: int, fp: Fingerprint) -> None:
        """`fp`'s hashes (already sorted) as one more run."""
        if len(fp.hashes) == 0:
            return
        self._runs.append((fp.hashes, np.full(len(fp.hashes), video, np.int32), fp.times))
        if len(self._runs) >= MERGE_RUNS:
            self._merge()

    def _merge(self) -> None:
        parts = [self._main, *self._runs]
        hashes = np.concatenate([p[0] for p in parts])
        order = np.argsort(hashes, kind="stable")
        self._main = (
            hashes[order],
            np.concatenate([p[1] for p in parts])[order],
            np.concatenate([p[2] for p in parts])[order],
        )
        self._runs = []

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every stored occurrence of each of `hashes`: (index into `hashes`, video,
        reference anchor time)."""
        out_q, out_v, out_t = [], [], []
        for stored, videos, times in [self._main, *self._runs]:
            lo = np.searchsorted(stored, hashes, side="left")
            hi = np.searchsorted(stored, hashes, side="right")
            counts = hi - lo
            if not counts.any():
                continue
            q = np.repeat(np.arange(len(hashes)), counts)
            at = np.repeat(lo, counts) + (np.arange(len(q)) - np.repeat(np.cumsum(counts) - counts, counts))
            out_q.append(q)
            out_v.append(videos[at])
            out_t.append(times[at])
        if not out_q:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        return np.concatenate(out_q), np.concatenate(out_v), np.concatenate(out_t)

    def search(
        self, query: Fingerprint, min_votes: int, min_score: float, skip: set[int] | frozenset = frozenset()
    ) -> list[AudioHit]:
        """The videos whose sound the query carries (best first); `skip`: removed videos."""
        if len(query.hashes) == 0:
            return []
        q, videos, ref_t = self.lookup(query.hashes)
        if len(q) == 0:
            return []
        offsets = ref_t.astype(np.int64) - query.times[q]
        # Votes per (video, offset): a copy's hashes agree on one offset (+-1 frame of jitter).
        keys = videos.astype(np.int64) * (1 << 32) + (offsets + (1 << 31))
        uniq, votes = np.unique(keys, return_counts=True)
        hits = []
        for video in np.unique(videos):
            if int(video) in skip:
                continue
            mine = (uniq >> 32) == video
            k, v = uniq[mine], votes[mine]
            near = v + votes_at(k - 1, k, v) + votes_at(k + 1, k, v)
            best = int(np.argmax(near))
            if near[best] < min_votes or near[best] / len(query.hashes) < min_score:
                continue
            offset = int((k[best] & ((1 << 32) - 1)) - (1 << 31))
            agree = (videos == video) & (np.abs(offsets - offset) <= 1)
            seconds = np.sort(query.times[q[agree]]) * FRAME
            hits.append(
                AudioHit(
                    int(video),
                    int(near[best]),
                    float(near[best]) / len(query.hashes),
                    offset * FRAME,
                    _segments(seconds, offset * FRAME, float(near[best]) / len(query.hashes)),
                )
            )
        return sorted(hits, key=lambda h: -h.votes)


def _segments(seconds: np.ndarray, offset: float, score: float) -> list[Segment]:
    """Runs of agreeing anchor times (split at gaps over `MAX_GAP`), as segments; each
    spans its anchors plus the look-ahead a pair covers."""
    breaks = np.flatnonzero(np.diff(seconds) > MAX_GAP)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(seconds) - 1]])
    out = []
    for a, z in zip(starts, ends, strict=True):
        if z - a < 2:  # a few stray hashes are not a stretch of sound
            continue
        q0, q1 = float(seconds[a]), float(seconds[z]) + 0.5
        out.append(Segment(q0, q1, max(0.0, q0 + offset), max(0.0, q1 + offset), score))
    return out
