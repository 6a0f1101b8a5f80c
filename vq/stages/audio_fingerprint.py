"""The learned audio fingerprint: a vector for every second of sound, half a second apart.

The copy-detection seed's audio path turns the waveform into log filterbank energies
(`vq.audio.features`) and a model into vectors. Here: 64 log-mel bands every 10 ms, cut
into 1 s windows (100 frames) every 0.5 s (`mel_windows`, shared with training so both
sides see the same numbers), and a `vq train audiofp` model (`vq-audiofp`) maps each to a
unit vector; edited copies of a window (noise, a music bed, EQ, a codec, a speed change)
land near it. `match` compares two recordings' vector sequences along a common offset.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vq.stages.base import Stage

RATE = 16000
BANDS = 64
FRAMES = 100  # a 1 s window of 10 ms frames
HOP_FRAMES = 50  # windows every 0.5 s
WINDOW_HOP = HOP_FRAMES * 0.01  # seconds between windows


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(frames, BANDS) float32 log-mel energies of 16 kHz mono samples (25 ms windows, 10 ms hop)."""
    from vq.audio.features import FeatureConfig, logfbank

    samples = np.asarray(samples, np.float32)
    if len(samples) < 400:
        samples = np.pad(samples, (0, 400 - len(samples)))
    return logfbank(samples, FeatureConfig(nfilt=BANDS)).astype(np.float32)


def mel_windows(mel: np.ndarray, hop: int = HOP_FRAMES) -> np.ndarray:
    """(N, FRAMES, BANDS) windows of a log-mel array every `hop` frames (a short recording
    gives one window, padded with its quietest value)."""
    if len(mel) < FRAMES:
        mel = np.pad(mel, ((0, FRAMES - len(mel)), (0, 0)), constant_values=float(mel.min(initial=0.0)))
    starts = np.arange(0, len(mel) - FRAMES + 1, hop)
    view = np.lib.stride_tricks.sliding_window_view(mel, FRAMES, axis=0)[starts]  # (N, BANDS, FRAMES)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


def window_vectors(
    samples: np.ndarray, embed: Callable[[np.ndarray], np.ndarray], batch: int = 256
) -> np.ndarray:
    """(N, D) float32 vectors of 16 kHz mono samples, one per 1 s window every 0.5 s:
    `embed` maps a (B, FRAMES, BANDS) batch of windows to vectors (the exported model, or
    the model in training)."""
    windows = mel_windows(log_mel(samples))
    out = [np.asarray(embed(windows[k : k + batch])) for k in range(0, len(windows), batch)]
    return np.concatenate(out).astype(np.float32)


def match(query: np.ndarray, ref: np.ndarray, least: float = 0.5) -> tuple[float, float]:
    """(score, offset seconds) of the best alignment of two window-vector sequences: for
    each offset (reference window - query window) where at least `least` of the query
    overlaps, the mean over query windows of their best cosine within one window of the
    line (so a speed change of up to 10 % over an 8 s query still lines up)."""
    n, m = len(query), len(ref)
    if n == 0 or m == 0:
        return 0.0, 0.0
    sim = query @ ref.T
    padded = np.pad(sim, ((0, 0), (1, 1)), constant_values=-1.0)
    near = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])  # best within +-1
    need = max(1, int(np.ceil(least * n)))
    best, where = (-1.0, -1.0), 0
    rows = np.arange(n)
    for offset in range(-(n - need), m - need + 1):
        cols = rows + offset
        ok = (cols >= 0) & (cols < m)
        if ok.sum() < need:
            continue
        # ties within the tolerance go to the line the windows sit on exactly
        score = (float(near[rows[ok], cols[ok]].mean()), float(sim[rows[ok], cols[ok]].mean()))
        if score > best:
            best, where = score, offset
    return best[0], where * WINDOW_HOP


class AudioFingerprinter(Stage):
    task = "audiofp"

    def __init__(self, model=None, backend: str = "ort-cpu", batch: int = 256):
        super().__init__(model, backend)
        self.batch = batch

    def vectors(self, samples: np.ndarray) -> np.ndarray:
        """(N, D) unit vectors, one per 1 s window every 0.5 s, of 16 kHz mono samples."""
        name, output = self.card.inputs[0].name, self.card.outputs[0].name
        return window_vectors(samples, lambda w: self.run({name: w})[output], self.batch)
