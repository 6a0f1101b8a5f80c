"""Log mel filterbank and MFCC, equal to `python_speech_features` at the same settings.

The copy-detection seed's audio path is: waveform -> pre-emphasis -> framing and
windowing -> power spectrum -> mel filterbank -> log (fbank) -> DCT (MFCC) -> deltas ->
per-clip standardisation. Its production rewrite in C++ (MKL FFT, GEMM) ran 10x faster
than the Python `python_speech_features` it replaced. This module computes the same
numbers in numpy with the same ideas (memory reuse, layout, tiles that fit the cache,
parallel tiles); most of the time saved is memory traffic, not arithmetic:

* the signal is processed in chunks of frames small enough to stay in cache: each chunk
  is pre-emphasised, framed (a strided view copied once into a zero-padded FFT buffer),
  transformed, squared and multiplied by the filterbank before the next one starts; no
  full-length intermediate (a 5-minute clip's spectrum is 120 MB) is ever allocated;
* chunks run on a small thread pool, one long task per thread (numpy's FFT, ufuncs and
  BLAS release the GIL), with BLAS itself held to one thread meanwhile; scratch buffers
  are per thread and reused across chunks and calls;
* the mel filterbank is a few banded matrix products (each group of neighbouring
  filters with only the FFT bins it covers);
* everything after the filterbank (log, DCT, deltas, standardisation) works with time
  along the last axis, where every slice is contiguous, a few coefficients at a time.

The filterbank is built exactly as `python_speech_features` builds it (integer FFT bins
from the mel scale), so values agree to float rounding (tests compare within 1e-4).
Speed: `benchmarks/media.py` (figures in BENCHMARKS.md).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    winlen: float = 0.025  # seconds
    winstep: float = 0.01  # seconds
    nfilt: int = 26
    nfft: int = 512
    lowfreq: float = 0.0
    highfreq: float | None = None
    preemph: float = 0.97
    numcep: int = 13
    ceplifter: int = 22
    append_energy: bool = True


def _round_half_up(x: float) -> int:
    return int(Decimal(repr(x)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _hz2mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz) / 700.0)


def _mel2hz(mel):
    return 700 * (10 ** (np.asarray(mel) / 2595.0) - 1)


@lru_cache(maxsize=16)
def mel_filterbank(
    nfilt: int, nfft: int, sample_rate: int, lowfreq: float, highfreq: float | None
) -> np.ndarray:
    """(nfilt, nfft//2 + 1) triangular filters on integer FFT bins (as python_speech_features)."""
    highfreq = highfreq or sample_rate / 2
    if highfreq > sample_rate / 2:
        raise ValueError("highfreq is greater than samplerate/2")
    mels = np.linspace(_hz2mel(lowfreq), _hz2mel(highfreq), nfilt + 2)
    bins = np.floor((nfft + 1) * _mel2hz(mels) / sample_rate)
    k = np.arange(nfft // 2 + 1)[None, :]
    lo, mid, hi = bins[:-2, None], bins[1:-1, None], bins[2:, None]
    rising = (k >= lo) & (k < mid)
    falling = (k >= mid) & (k < hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        bank = np.where(rising, (k - lo) / (mid - lo), 0.0) + np.where(falling, (hi - k) / (hi - mid), 0.0)
    bank = np.nan_to_num(bank)
    bank.flags.writeable = False
    return bank


@lru_cache(maxsize=16)
def _band_blocks(
    nfilt: int, nfft: int, sample_rate: int, lowfreq: float, highfreq: float | None
) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """The filterbank (over nfft: python_speech_features' power spectrum is |X|^2 / nfft)
    cut into groups of neighbouring filters, each with the FFT bins it covers:
    (first filter, end filter, first bin, end bin, weights). Mel filters are narrow at low
    frequencies, so a few banded products do ~40 % of one dense product's work."""
    bank = mel_filterbank(nfilt, nfft, sample_rate, lowfreq, highfreq) / nfft
    blocks = []
    for rows in np.array_split(np.arange(nfilt), min(BAND_GROUPS, nfilt)):
        bins = np.flatnonzero(bank[rows].any(axis=0))
        k0, k1 = (int(bins[0]), int(bins[-1]) + 1) if len(bins) else (0, 1)
        weights = np.ascontiguousarray(bank[rows[0] : rows[-1] + 1, k0:k1])
        weights.flags.writeable = False
        blocks.append((int(rows[0]), int(rows[-1]) + 1, k0, k1, weights))
    return tuple(blocks)


@lru_cache(maxsize=16)
def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) orthonormal DCT-II: M @ x == scipy.fft.dct(x, axis=0, norm='ortho')[:n_out]."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    m.flags.writeable = False
    return m


# Frames per chunk: 512 frames of a 512-point FFT keep a chunk's buffers (~2 MB) in cache;
# measured on 2 cores, 256 is ~10 % slower, 384-1024 within noise, 4096 clearly slower.
CHUNK_FRAMES = 512
MAX_WORKERS = 4
BAND_GROUPS = 6  # filterbank blocks; measured 1.7x faster than one dense product (40 filters)
# Coefficients per post-processing task (deltas, standardisation): 8 float32 rows of a
# 5-minute clip with their deltas are ~3 MB, cache-sized (2-16 measured within noise).
FINISH_COEFFS = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_scratch = threading.local()


def _pool_size() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _workers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_pool_size(), thread_name_prefix="vq-audio")
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child inherits the pool object but not its threads: work submitted to it
    # would wait forever. The child makes its own on first use.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _buffer(name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """A per-thread scratch array, reused across chunks and calls (zero-filled when made)."""
    buf = getattr(_scratch, name, None)
    if buf is None or buf.shape != shape:
        buf = np.zeros(shape, dtype)
        setattr(_scratch, name, buf)
    return buf


def frame_count(num_samples: int, frame_len: int, frame_step: int) -> int:
    """Frames python_speech_features makes: at least one, the last zero-padded."""
    if num_samples <= frame_len:
        return 1
    return 1 + int(np.ceil((num_samples - frame_len) / frame_step))


def _chunk_energies(x: np.ndarray, start: int, frame_len: int, step: int, cfg: FeatureConfig, dst) -> None:
    """Band and frame energies (nfilt + 1, rows) of frames start .. start+rows-1, into dst."""
    rows = dst.shape[1]
    seg_len = (CHUNK_FRAMES - 1) * step + frame_len
    seg = _buffer("seg", (seg_len,))
    width = min(frame_len, cfg.nfft)  # frames longer than nfft are truncated, as psf does
    # Keyed by the frame width too: its columns past the frame must stay zero (FFT padding).
    spectrum_in = _buffer(f"fft{cfg.nfft}x{width}", (CHUNK_FRAMES, cfg.nfft))
    power = _buffer(f"power{cfg.nfft}", (CHUNK_FRAMES, cfg.nfft // 2 + 1))[:rows]
    # Pre-emphasis over the samples these frames cover: y[t] = x[t] - a * x[t-1], y[0] = x[0].
    lo = start * step
    need = (rows - 1) * step + frame_len
    hi = min(len(x), lo + need)
    m = hi - lo
    if lo == 0:  # the first sample has no predecessor: kept as is
        seg[0] = x[0]
        lo, seg_at = 1, seg[1:m]
    else:
        seg_at = seg[:m]
    np.multiply(x[lo - 1 : hi - 1], -cfg.preemph, out=seg_at)  # (-a*x[t-1]) + x[t]: same rounding
    np.add(seg_at, x[lo:hi], out=seg_at)
    seg[m:need] = 0.0  # the last frames are zero-padded
    framed = np.lib.stride_tricks.as_strided(seg, (rows, width), (seg.strides[0] * step, seg.strides[0]))
    spectrum_in[:rows, :width] = framed
    spectrum = np.fft.rfft(
        spectrum_in[:rows],
        out=_buffer(f"spectrum{cfg.nfft}", (CHUNK_FRAMES, cfg.nfft // 2 + 1), complex)[:rows],
    )
    parts = spectrum.view(np.float64)  # re, im interleaved
    np.square(parts, out=parts)
    np.add(parts[:, 0::2], parts[:, 1::2], out=power)
    for r0, r1, k0, k1, weights in _band_blocks(
        cfg.nfilt, cfg.nfft, cfg.sample_rate, cfg.lowfreq, cfg.highfreq
    ):
        np.matmul(weights, power[:, k0:k1].T, out=dst[r0:r1])
    np.sum(power, axis=1, out=dst[-1])  # frame energy
    dst[-1] /= cfg.nfft
    dst[dst == 0] = np.finfo(float).eps  # as psf: the log comes next


@lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS, made once: making it scans every loaded
    library (0.2 ms), limiting through it is 0.01 ms."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _single_threaded_blas():
    """Our chunks already keep every core busy; BLAS threads on top of them oversubscribe
    the cores (measured 1.6x slower on 2 cores)."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _map(fn, items: list) -> None:
    """fn over items: on the thread pool when there are several, inline otherwise."""
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    pool = _workers()
    lanes = min(_pool_size(), len(items))

    def lane(i: int) -> None:  # one task per thread, not per item: fewer thread wake-ups
        for item in items[i::lanes]:
            fn(item)

    with _single_threaded_blas():
        list(pool.map(lane, range(lanes)))  # list(): re-raises a worker's exception here


def _frames_of(signal, cfg: FeatureConfig) -> tuple[np.ndarray, int, int, int]:
    """Validated signal, frame length and step in samples, and the frame count."""
    x = np.asarray(signal)
    if x.ndim != 1:
        raise ValueError(f"signal must be mono 1-D, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"signal must be real numbers, got {x.dtype}")
    if len(x) == 0:
        x = np.zeros(1)
    frame_len = _round_half_up(cfg.winlen * cfg.sample_rate)
    step = _round_half_up(cfg.winstep * cfg.sample_rate)
    return x, frame_len, step, frame_count(len(x), frame_len, step)


def band_energies(signal: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(nfilt + 1, numframes): mel band energies, then the frame energy in the last row.
    Time runs along axis 1. Zeros are replaced by machine epsilon, as psf does."""
    x, frame_len, step, total = _frames_of(signal, cfg)
    out = np.empty((cfg.nfilt + 1, total))

    def chunk(start: int) -> None:
        _chunk_energies(x, start, frame_len, step, cfg, out[:, start : start + CHUNK_FRAMES])

    _map(chunk, list(range(0, total, CHUNK_FRAMES)))
    return out


def fbank(signal: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Mel filterbank energies (numframes, nfilt) and per-frame energy (numframes,)."""
    energies = band_energies(signal, cfg)
    return energies[:-1].T, energies[-1]


def _base_features(
    signal, kind: str, cfg: FeatureConfig, rows_per_coeff: int = 1, dtype=np.float64
) -> np.ndarray:
    """(D * rows_per_coeff, numframes), time along axis 1, with log bands (D = nfilt) or
    cepstra (D = numcep) in the first D rows, computed chunk by chunk on the pool; the
    rest is left for the caller (deltas)."""
    x, frame_len, step, total = _frames_of(signal, cfg)
    d = cfg.nfilt if kind == "logfbank" else cfg.numcep
    out = np.empty((d * rows_per_coeff, total), dtype)
    dct = _dct_matrix(cfg.nfilt, cfg.numcep)
    n = np.arange(cfg.numcep)
    lifter = (
        (1 + (cfg.ceplifter / 2.0) * np.sin(np.pi * n / cfg.ceplifter))[:, None] if cfg.ceplifter > 0 else 1
    )

    def chunk(start: int) -> None:
        rows = min(CHUNK_FRAMES, total - start)
        energies = _buffer("energies", (cfg.nfilt + 1, CHUNK_FRAMES))[:, :rows]
        _chunk_energies(x, start, frame_len, step, cfg, energies)
        if kind == "logfbank":
            np.log(energies[:-1], out=out[:d, start : start + rows])
            return
        np.log(energies, out=energies)
        # MFCC: DCT-II of the log bands, liftered, c0 replaced by the log frame energy.
        cep = out[:d, start : start + rows]
        np.matmul(dct, energies[:-1], out=cep)
        cep *= lifter
        if cfg.append_energy:
            cep[0] = energies[-1]

    _map(chunk, list(range(0, total, CHUNK_FRAMES)))
    return out


def logfbank(signal: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(numframes, nfilt) log mel filterbank energies."""
    return _base_features(signal, "logfbank", cfg).T


def mfcc(signal: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(numframes, numcep) cepstra, as python_speech_features.mfcc."""
    return _base_features(signal, "mfcc", cfg).T


def _delta_along_time(src: np.ndarray, dst: np.ndarray, n: int) -> None:
    """Regression deltas over +-n steps of axis 1, edges repeated, written into dst."""
    t = src.shape[1]
    inner = dst[:, n : t - n]
    if t > 2 * n:
        np.subtract(src[:, n + 1 : t - n + 1], src[:, n - 1 : t - n - 1], out=inner)
        term = np.empty_like(inner)
        for k in range(2, n + 1):
            np.subtract(src[:, n + k : t - n + k], src[:, n - k : t - n - k], out=term)
            term *= k
            inner += term
    # The first and last n steps read past the ends: clip the indices (edge repetition).
    edge = np.unique(np.r_[0 : min(n, t), max(t - n, 0) : t])
    ks = np.arange(1, n + 1)
    ahead = np.clip(edge[:, None] + ks, 0, t - 1)
    behind = np.clip(edge[:, None] - ks, 0, t - 1)
    dst[:, edge] = ((src[:, ahead] - src[:, behind]) * ks).sum(-1)
    dst /= 2 * sum(k * k for k in range(1, n + 1))


def delta(feat: np.ndarray, n: int = 2) -> np.ndarray:
    """Regression deltas over +-n frames of a (numframes, D) array, edges repeated
    (python_speech_features.delta)."""
    if n < 1:
        raise ValueError("n must be an integer >= 1")
    src = np.asarray(feat, dtype=np.float64).T
    out = np.empty(src.shape)
    _delta_along_time(src, out, n)
    return out.T


def _standardize_along_time(feat: np.ndarray, eps: float) -> None:
    """In place: each row (a coefficient over time) to zero mean, unit variance."""
    feat -= feat.mean(axis=1, keepdims=True)
    std = np.sqrt(np.einsum("ij,ij->i", feat, feat) / feat.shape[1])
    feat /= (std + eps)[:, None]


def standardize(feat: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per-clip mean and variance normalisation of each coefficient of (numframes, D)."""
    out = np.array(feat, dtype=np.float64).T
    _standardize_along_time(out, eps)
    return out.T


def features(
    signal: np.ndarray,
    kind: str = "logfbank",
    cfg: FeatureConfig = FeatureConfig(),
    deltas: int = 2,
    normalise: bool = True,
    dtype=np.float32,
) -> np.ndarray:
    """The seed's audio feature pipeline: base features, `deltas` orders of deltas stacked
    on the feature axis, then per-clip standardisation. Returns (numframes, D * (deltas+1)),
    built with time along the last axis, so the array is a transposed (Fortran-order) view.

    float32 by default, what models take: spectra and filterbanks are still float64 (the
    log of a quiet band needs it), only the log features and what follows are stored in
    `dtype`, which halves the memory traffic of the deltas and the standardisation. Values
    stay within 1e-5 of python_speech_features' float64 pipeline (tests check 1e-4)."""
    if kind not in ("logfbank", "mfcc"):
        raise ValueError(f"kind must be 'logfbank' or 'mfcc', got {kind!r}")
    if deltas < 0:
        raise ValueError(f"deltas must be >= 0, got {deltas}")
    d = cfg.nfilt if kind == "logfbank" else cfg.numcep
    out = _base_features(signal, kind, cfg, rows_per_coeff=deltas + 1, dtype=dtype)
    total = out.shape[1]

    def finish(coeffs: range) -> None:
        # Deltas and standardisation of one coefficient never look at another, so they
        # run on a few coefficients at a time: every order of those stays in cache.
        lo, hi = coeffs.start, coeffs.stop
        for order in range(1, deltas + 1):
            src = out[(order - 1) * d + lo : (order - 1) * d + hi]
            _delta_along_time(src, out[order * d + lo : order * d + hi], 2)
        if normalise:
            for order in range(deltas + 1):
                _standardize_along_time(out[order * d + lo : order * d + hi], 1e-8)

    block = FINISH_COEFFS if total > CHUNK_FRAMES else d
    _map(finish, [range(lo, min(lo + block, d)) for lo in range(0, d, block)])
    return out.T
