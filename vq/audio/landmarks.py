"""Landmark audio fingerprints (spectral peak pairs), and matching by offset voting.

The classic method (Wang, "An industrial-strength audio search algorithm", 2003), in
numpy: the strongest local maxima of the log spectrogram are the landmarks -- they
survive noise, a music bed underneath, EQ and lossy codecs, which move the rest of the
spectrum -- and each landmark paired with a few that follow it is one hash (both
frequencies and the time between them). A copy shares many hashes with its source, all
at one time offset; a different recording shares few, at scattered offsets. So matching
is: look up the query's hashes, vote for (reference time - query time), and count the
best offset's votes.

What it cannot take on its own: a speed change moves every frequency by the same factor
and every time gap with it, so the hashes no longer agree (1 % off already loses nine
votes in ten). `match_speeds` searches for it: the query is resampled to each speed of a
grid fine enough for that (1 % steps over +-10 %) and the best match wins, with the speed
it was found at (measured in `vq eval audio`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16000
N_FFT = 1024  # 64 ms windows
HOP = 256  # 16 ms between spectrogram frames
MAX_HZ = 4000  # landmarks from the band speech and music share; above it codecs cut first
PEAK_TIME, PEAK_FREQ = 15, 21  # a landmark is the maximum of this neighbourhood (frames, bins)
PEAKS_PER_SECOND = 25
FAN_OUT = 6  # pairs per anchor
MAX_DT = 48  # frames (0.77 s) to look ahead for partners
MAX_DF = 96  # bins either side
# Silence and quiet noise have no landmarks: a peak must stand out absolutely, not only
# locally. At -1.5, white noise up to about -50 dBFS gives none. Lower gates let codec
# noise in: two unrelated files of quiet room noise, both through AAC, shared 36 hashes
# at offset 0 (the encoders' frame grid) at -2.5, and 2 at -1.5. The price is some quiet
# music: `vq eval audio` 0.942 -> 0.929 (BENCHMARKS.md).
MIN_LOG_MAGNITUDE = -1.5
# A hash repeated this often in one recording is a stationary sound (a hum, a test tone,
# a held note): it would match every other recording with that sound at every offset.
MAX_REPEATS = 8


@dataclass(frozen=True)
class Fingerprint:
    hashes: np.ndarray  # int64, sorted
    times: np.ndarray  # int32: the anchor's spectrogram frame, in the hashes' order
    seconds: float

    @property
    def frame_seconds(self) -> float:
        return HOP / RATE


def spectrogram(x: np.ndarray) -> np.ndarray:
    """(frames, bins) log magnitude up to `MAX_HZ` of 16 kHz mono samples."""
    x = np.asarray(x, np.float32)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]
    spec = np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1))
    return np.log(spec[:, : int(MAX_HZ * N_FFT / RATE)] + 1e-6)


def peaks(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frame, bin) of the landmarks: neighbourhood maxima, strongest first per second."""
    is_max = spec == _max_filter(spec, PEAK_TIME, PEAK_FREQ)
    is_max &= spec > max(np.percentile(spec, 60), MIN_LOG_MAGNITUDE)  # not a maximum of silence
    t, f = np.nonzero(is_max)
    if len(t) == 0:
        return t, f
    # Keep the strongest PEAKS_PER_SECOND per second, so loud passages do not crowd out quiet ones.
    per_block = max(1, int(PEAKS_PER_SECOND * HOP * 64 / RATE))
    block = t // 64
    order = np.lexsort((-spec[t, f], block))
    t, f, block = t[order], f[order], block[order]
    first = np.searchsorted(block, block, side="left")
    keep = np.arange(len(t)) - first < per_block
    t, f = t[keep], f[keep]
    order = np.argsort(t, kind="stable")
    return t[order], f[order]


def _max_filter(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The maximum over a `rows` x `cols` neighbourhood (edges repeated), separably."""
    from numpy.lib.stride_tricks import sliding_window_view

    a = np.pad(a, ((rows // 2, rows // 2), (0, 0)), mode="edge")
    a = sliding_window_view(a, rows, axis=0).max(axis=-1)
    a = np.pad(a, ((0, 0), (cols // 2, cols // 2)), mode="edge")
    return sliding_window_view(a, cols, axis=1).max(axis=-1)


def fingerprint(x: np.ndarray) -> Fingerprint:
    """The landmark hashes of 16 kHz mono samples."""
    t, f = peaks(spectrogram(x))
    anchors, partners = [], []
    for k in range(1, FAN_OUT * 4 + 1):  # the next peaks in time order, up to FAN_OUT in range
        j = np.arange(len(t)) + k
        ok = j < len(t)
        i, j = np.flatnonzero(ok), j[ok]
        dt = t[j] - t[i]
        good = (dt > 0) & (dt <= MAX_DT) & (np.abs(f[j] - f[i]) <= MAX_DF)
        anchors.append(i[good])
        partners.append(j[good])
    if not anchors or not sum(len(a) for a in anchors):
        return Fingerprint(np.zeros(0, np.int64), np.zeros(0, np.int32), len(x) / RATE)
    i, j = np.concatenate(anchors), np.concatenate(partners)
    # At most FAN_OUT partners per anchor: the nearest in time.
    order = np.lexsort((t[j] - t[i], i))
    i, j = i[order], j[order]
    rank = np.arange(len(i)) - np.searchsorted(i, i, side="left")
    i, j = i[rank < FAN_OUT], j[rank < FAN_OUT]
    hashes = (f[i].astype(np.int64) << 20) | (f[j].astype(np.int64) << 8) | (t[j] - t[i]).astype(np.int64)
    order = np.argsort(hashes, kind="stable")
    hashes, times = hashes[order], t[i][order].astype(np.int32)
    # Stop-hashes: the stationary sounds' (allowance grows with length: a song repeats itself).
    counts = np.unique(hashes, return_counts=True)[1]
    limit = MAX_REPEATS + len(x) / RATE / 15
    keep = np.repeat(counts <= limit, counts)
    return Fingerprint(hashes[keep], times[keep], len(x) / RATE)


@dataclass(frozen=True)
class AudioMatch:
    score: float  # share of the query's hashes that agree on the best offset
    votes: int
    offset: float  # reference time - query time, seconds


def match(query: Fingerprint, ref: Fingerprint) -> AudioMatch:
    """Offset voting over the hashes `query` and `ref` share."""
    q, at = shared_hashes(query.hashes, ref.hashes)
    if len(q) == 0:
        return AudioMatch(0.0, 0, 0.0)
    offset, votes = best_offset(ref.times[at].astype(np.int64) - query.times[q])
    return AudioMatch(votes / len(query.hashes), votes, offset * HOP / RATE)


def shared_hashes(query: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (query position, stored position) pair with equal hashes; `stored` sorted."""
    lo = np.searchsorted(stored, query, side="left")
    counts = np.searchsorted(stored, query, side="right") - lo
    q = np.repeat(np.arange(len(query)), counts)
    within = np.arange(len(q)) - np.repeat(np.cumsum(counts) - counts, counts)
    return q, np.repeat(lo, counts) + within


def best_offset(offsets: np.ndarray) -> tuple[int, int]:
    """The offset (in landmark frames) most votes agree on, counting its two neighbours as
    the same alignment seen through frame jitter; and those votes."""
    values, votes = np.unique(offsets, return_counts=True)
    smoothed = votes + _votes_at(values - 1, values, votes) + _votes_at(values + 1, values, votes)
    best = int(np.argmax(smoothed))
    return int(values[best]), int(smoothed[best])


def _votes_at(wanted: np.ndarray, values: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """The votes of offsets `wanted` (0 where no vote fell); `values` sorted."""
    i = np.minimum(np.searchsorted(values, wanted), len(values) - 1)
    return np.where(values[i] == wanted, votes[i], 0)


def log10_chance(votes: int, collisions: int, offsets: int, tries: int = 1) -> float:
    """log10 of the chance that `votes` of `collisions` hashes shared by chance agree on one
    offset (with its two neighbours, as `best_offset` counts) when chance spreads them
    evenly over `offsets` possible offsets, over `tries` such comparisons (the library's
    videos): a Poisson tail, times the offsets and tries (Bonferroni). Sound with shared
    material (one composer's motifs, one stock jingle) agrees more often than this; the
    decision's vote count is what guards against that, this only ranks."""
    if votes <= 0 or collisions <= 0:
        return 0.0
    rate = 3.0 * collisions / max(offsets, 1)
    k = np.arange(votes, votes + 200, dtype=np.float64)
    log_fact = np.log(np.arange(1, votes + 1, dtype=np.float64)).sum() + np.concatenate(
        [[0.0], np.cumsum(np.log(k[1:]))]
    )
    terms = -rate + k * np.log(rate) - log_fact
    top = terms.max()
    tail = (top + np.log(np.exp(terms - top).sum())) / np.log(10)
    return float(min(0.0, tail + np.log10(max(offsets, 1) * max(tries, 1))))


SPEED_GRID = tuple(round(0.90 + 0.01 * k, 2) for k in range(21))  # a copy played 0.9x .. 1.1x


@dataclass(frozen=True)
class SpeedMatch:
    score: float
    offset: float  # reference time of the query's start, seconds
    speed: float  # the copy plays the reference this many times faster


def speed_fingerprints(
    x: np.ndarray, speeds: tuple[float, ...] = SPEED_GRID
) -> list[tuple[float, Fingerprint]]:
    """The query's fingerprint as it would sound at each speed undone: a copy sped up by
    `s` is slowed by `s` again before it is fingerprinted."""
    from vq.synth.audio import change_speed

    return [(s, fingerprint(x if s == 1.0 else change_speed(x, 1.0 / s))) for s in speeds]


def match_speeds(query: list[tuple[float, Fingerprint]], ref: Fingerprint) -> SpeedMatch:
    """The best of `match` over the speeds of `speed_fingerprints`."""
    best = SpeedMatch(0.0, 0.0, 1.0)
    for s, fp in query:
        m = match(fp, ref)
        if m.score > best.score:
            best = SpeedMatch(m.score, m.offset, s)
    return best
