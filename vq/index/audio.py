"""The library's audio index: landmark hashes -> (video, anchor time), and audio matching.

Each ingested video with sound stores its landmark fingerprint (`vq.audio.landmarks`)
beside its frame vectors. In memory the hashes of all videos form an inverted index of
sorted arrays searched with `np.searchsorted`, kept in three tiers so an ingest never
re-sorts the library: each new video is a small sorted run; every `MERGE_RUNS` runs are
merged into a `recent` tier; `recent` is merged into the main arrays only once it holds an
eighth of them (so each hash is re-copied a bounded number of times as the library grows).
Opening a library sorts all stored hashes once (`AudioIndex.build`).

Matching is the landmark method's offset voting, per reference video: the query's hashes
vote for (video, reference time - query time); a video whose best offset gathers at least
`min_votes` agreeing hashes, and at least `min_score` of the query's, is an audio match.
Its confidence is one minus the chance that unrelated sound agrees that well
(`vq.audio.landmarks.log10_chance`): the score its segments carry, so that a soundtrack
found beyond doubt ranks above a picture that only looks alike.
Its segments are the stretches of query time those agreeing hashes cover (split where
they leave a gap of more than `MAX_GAP` seconds), mapped to the reference by the offset.

A soundtrack sped up or slowed down (a common way to slip a song past a fingerprint) no
longer shares hashes with its source: every frequency and time gap moved. `search_speeds`
searches the query's sound as it would be with each speed of a grid undone
(`vq.audio.landmarks.speed_fingerprints`); a hit found that way has the speed, and its
segments run at that slope.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vq.audio.landmarks import HOP, RATE, Fingerprint, best_offset, log10_chance, shared_hashes
from vq.match.segments import Segment

FRAME = HOP / RATE  # seconds per landmark time step
MAX_GAP = 2.0  # seconds of query time without agreeing hashes that split a segment
MERGE_RUNS = 32  # small runs held before they are merged into the recent tier

Tier = tuple[np.ndarray, np.ndarray, np.ndarray]  # hashes (sorted), videos, anchor times


@dataclass(frozen=True)
class AudioHit:
    video: int
    votes: int
    score: float  # agreeing hashes / the query's hashes
    offset: float  # reference time - query time, seconds (at `speed`: of the query time undone)
    segments: list[Segment]
    speed: float = 1.0  # the query plays the reference this many times faster
    log10_chance: float = 0.0  # of unrelated sound agreeing this well (`log10_chance`)
    learned: float | None = None  # the learned fingerprint's match score, where it was asked

    @property
    def confidence(self) -> float:
        return 1.0 - 10.0**self.log10_chance

    def to_json(self) -> dict:
        out = {
            "votes": self.votes,
            "share": round(self.score, 4),
            "log10_chance": round(self.log10_chance, 1),
            "speed": self.speed,
        }
        if self.learned is not None:
            out["learned"] = round(self.learned, 4)
        return out


def _sorted_tier(parts: list[Tier]) -> Tier:
    parts = [p for p in parts if len(p[0])]
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty.astype(np.int32), empty.astype(np.int32)
    hashes = np.concatenate([p[0] for p in parts])
    order = np.argsort(hashes, kind="stable")
    return (
        hashes[order],
        np.concatenate([p[1] for p in parts])[order],
        np.concatenate([p[2] for p in parts])[order],
    )


class AudioIndex:
    def __init__(self) -> None:
        self._main = self._recent = _sorted_tier([])
        self._runs: list[Tier] = []
        self._frames: dict[int, int] = {}  # each video's sound, in landmark frames (its last anchor)

    @classmethod
    def build(cls, fingerprints: list[tuple[int, Fingerprint]]) -> AudioIndex:
        """An index of (video, fingerprint) pairs, sorted once."""
        index = cls()
        index._main = _sorted_tier([_tier(video, fp) for video, fp in fingerprints])
        index._frames = {video: _frames(fp) for video, fp in fingerprints if len(fp.hashes)}
        return index

    def __len__(self) -> int:
        return sum(len(t[0]) for t in self._tiers())

    def _tiers(self) -> list[Tier]:
        return [self._main, self._recent, *self._runs]

    def add(self, video: int, fp: Fingerprint) -> None:
        """`fp`'s hashes (already sorted) as one more run."""
        if len(fp.hashes) == 0:
            return
        self._runs.append(_tier(video, fp))
        self._frames[video] = _frames(fp)
        if len(self._runs) >= MERGE_RUNS:
            self._recent, self._runs = _sorted_tier([self._recent, *self._runs]), []
            if len(self._recent[0]) * 8 >= len(self._main[0]):
                self._main, self._recent = _sorted_tier([self._main, self._recent]), _sorted_tier([])

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every stored occurrence of each of `hashes`: (index into `hashes`, video,
        reference anchor time)."""
        out_q, out_v, out_t = [], [], []
        for stored, videos, times in self._tiers():
            q, at = shared_hashes(hashes, stored)
            out_q.append(q)
            out_v.append(videos[at])
            out_t.append(times[at])
        return np.concatenate(out_q), np.concatenate(out_v), np.concatenate(out_t)

    def search(
        self,
        query: Fingerprint,
        min_votes: int,
        min_score: float,
        skip: set[int] | frozenset = frozenset(),
        speed: float = 1.0,
    ) -> list[AudioHit]:
        """The videos whose sound the query carries (best first); `skip`: removed videos.
        `speed`: `query` is the query's sound with that speed undone (its times are the
        query's times `speed` times over)."""
        if len(query.hashes) == 0:
            return []
        q, videos, ref_t = self.lookup(query.hashes)
        offsets = ref_t.astype(np.int64) - query.times[q]
        hits = []
        for video in np.unique(videos):
            if int(video) in skip:
                continue
            mine = videos == video
            offset, votes = best_offset(offsets[mine])
            if votes < min_votes or votes / len(query.hashes) < min_score:
                continue
            agree = mine & (np.abs(offsets - offset) <= 1)
            seconds = np.sort(query.times[q[agree]]) * FRAME
            score = votes / len(query.hashes)
            span = _frames(query) + self._frames.get(int(video), 0)  # the offsets chance could take
            chance = log10_chance(votes, int(mine.sum()), span, len(self._frames))
            hit = AudioHit(int(video), votes, score, offset * FRAME, [], speed, chance)
            hits.append(replace(hit, segments=_segments(seconds, offset * FRAME, hit.confidence, speed)))
        return sorted(hits, key=lambda h: -h.votes)

    def search_speeds(
        self,
        variants: list[tuple[float, Fingerprint]],
        min_votes: int,
        min_score: float,
        skip: set[int] | frozenset = frozenset(),
    ) -> list[AudioHit]:
        """`search` at each (speed, fingerprint) of `variants`; per video, the speed with
        the most votes (best first)."""
        best: dict[int, AudioHit] = {}
        for speed, fp in variants:
            for hit in self.search(fp, min_votes, min_score, skip, speed):
                if hit.video not in best or hit.votes > best[hit.video].votes:
                    best[hit.video] = hit
        return sorted(best.values(), key=lambda h: -h.votes)


def _frames(fp: Fingerprint) -> int:
    return int(fp.times.max()) + 1 if len(fp.times) else 0


def _tier(video: int, fp: Fingerprint) -> Tier:
    return fp.hashes, np.full(len(fp.hashes), video, np.int32), fp.times


def _segments(seconds: np.ndarray, offset: float, score: float, speed: float = 1.0) -> list[Segment]:
    """Runs of agreeing anchor times (split at gaps over `MAX_GAP`), as segments; each
    spans its anchors plus the look-ahead a pair covers. `seconds` are in the time of the
    query's sound with `speed` undone (the reference's clock): the query's own are that
    over `speed`."""
    breaks = np.flatnonzero(np.diff(seconds) > MAX_GAP)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(seconds) - 1]])
    out = []
    for a, z in zip(starts, ends, strict=True):
        if z - a < 2:  # a few stray hashes are not a stretch of sound
            continue
        t0, t1 = float(seconds[a]), float(seconds[z]) + 0.5
        r0, r1 = t0 + offset, t1 + offset
        if r0 < 0:  # the look-ahead of a pair, or the jitter of an anchor, before the reference
            t0, r0 = t0 - r0, 0.0
        out.append(Segment(t0 / speed, t1 / speed, r0, r1, score))
    return out


def fit_to_clips(seg: Segment, query_seconds: float, ref_seconds: float | None) -> Segment:
    """An audio segment's ends as far as the sound can tell. Landmarks are sparse (a bed
    of music or noise hides some), so a stretch whose first agreeing anchor lies within
    `MAX_GAP` of where the two clips' sound can first line up is taken to start there, as
    a gap that short never splits a segment; the same at the end. Nothing runs past either
    clip's end (the anchors' look-ahead could). The segment's slope (a speed) is kept."""
    slope = (seg.ref_end - seg.ref_start) / max(seg.query_end - seg.query_start, 1e-9)
    offset = seg.ref_start - slope * seg.query_start  # reference time at query time 0
    start = max(0.0, -offset / slope)  # the first query second the reference covers
    end = query_seconds if ref_seconds is None else min(query_seconds, (ref_seconds - offset) / slope)
    q0, q1 = seg.query_start, seg.query_end
    if q0 - start <= MAX_GAP:
        q0 = start
    if end - q1 <= MAX_GAP:
        q1 = end
    q0, q1 = max(q0, start), min(q1, end)
    if q1 <= q0:
        return seg
    return Segment(q0, q1, offset + slope * q0, offset + slope * q1, seg.score)
