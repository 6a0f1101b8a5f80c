"""Audio edits: what a soundtrack goes through on its way to a re-upload.

A copier keeps a song or a voice-over under a new picture and changes it just enough:
background noise or a music bed underneath, gain, an EQ tilt, a low-bitrate AAC / Opus /
MP3 re-encode, a speed change of up to 10 % (pitch moves with it, as when a video is sped
up), a crop. Each edit is a pure function of the samples (mono float32 at `rate`), the
re-encodes excepted, which run the real encoders (PyAV's libavcodec) and decode back.
`random_audio_chain` draws a seeded chain and returns it exactly, so an evaluation knows
what every query is.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CODECS = {"aac": ".m4a", "opus": ".opus", "mp3": ".mp3"}


@dataclass(frozen=True)
class AudioEdit:
    kind: str  # gain | noise | bed | eq | speed | reencode
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return np.clip(x * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) + 1e-12


def add_noise(x: np.ndarray, snr_db: float, seed: int, pink: bool = False) -> np.ndarray:
    """White or pink (1/f power) noise at `snr_db` below the signal."""
    noise = np.random.default_rng(seed).standard_normal(len(x))
    if pink:
        spectrum = np.fft.rfft(noise)
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
        noise = np.fft.irfft(spectrum, n=len(x))
    noise *= np.sqrt(_power(x) / (_power(noise) * 10 ** (snr_db / 10)))
    return np.clip(x + noise, -1.0, 1.0).astype(np.float32)


def add_bed(x: np.ndarray, bed: np.ndarray, level_db: float) -> np.ndarray:
    """Another recording underneath, `level_db` relative to the signal's power (looped or
    cut to length)."""
    if len(bed) == 0:
        return x
    bed = np.resize(bed, len(x)).astype(np.float64)
    bed *= np.sqrt(_power(x) / _power(bed) * 10 ** (level_db / 10))
    return np.clip(x + bed, -1.0, 1.0).astype(np.float32)


def equalize(x: np.ndarray, rate: int, low_db: float, high_db: float, split_hz: float = 1000.0) -> np.ndarray:
    """A tilt: frequencies below `split_hz` changed by `low_db`, above by `high_db`, with a
    smooth (logistic in octaves) crossover."""
    spectrum = np.fft.rfft(x.astype(np.float64))
    hz = np.fft.rfftfreq(len(x), 1.0 / rate)
    octaves = np.log2(np.maximum(hz, 1.0) / split_hz)
    weight = 1.0 / (1.0 + np.exp(-3.0 * octaves))  # 0 well below the split, 1 well above
    gain_db = low_db + (high_db - low_db) * weight
    out = np.fft.irfft(spectrum * 10 ** (gain_db / 20), n=len(x))
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster by resampling (pitch rises with it, as a sped-up video's
    soundtrack does)."""
    n = max(1, round(len(x) / factor))
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)


def reencode(x: np.ndarray, rate: int, codec: str, kbps: int) -> np.ndarray:
    """Through a real encoder at `kbps` and back (length kept: codec delay trimmed or padded)."""
    from vq.media.audio import decode_audio
    from vq.media.encode import write_audio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"a{CODECS[codec]}"
        write_audio(path, x, rate, bitrate=kbps * 1000)
        y = decode_audio(path, sample_rate=rate)
    if len(y) >= len(x):
        return y[: len(x)].astype(np.float32)
    return np.pad(y, (0, len(x) - len(y))).astype(np.float32)


def apply_audio(x: np.ndarray, rate: int, edits: list[AudioEdit], beds: list[np.ndarray]) -> np.ndarray:
    """`x` through `edits` in order (`beds`: the recordings a `bed` edit may lay underneath)."""
    for e in edits:
        p = e.params
        if e.kind == "gain":
            x = gain(x, p["db"])
        elif e.kind == "noise":
            x = add_noise(x, p["snr_db"], p["seed"], p["pink"])
        elif e.kind == "bed":
            x = add_bed(x, beds[p["bed"]] if beds else np.zeros(0, np.float32), p["level_db"])
        elif e.kind == "eq":
            x = equalize(x, rate, p["low_db"], p["high_db"])
        elif e.kind == "speed":
            x = change_speed(x, p["factor"])
        elif e.kind == "reencode":
            x = reencode(x, rate, p["codec"], p["kbps"])
        else:
            raise ValueError(f"unknown audio edit {e.kind!r}")
    return x


FAMILIES = ("noise", "bed", "eq", "reencode", "speed", "stack")


def random_audio_chain(rng: np.random.Generator, family: str, n_beds: int) -> list[AudioEdit]:
    """A seeded chain for one edit family; `stack` is gain + EQ + a bed or noise + a
    re-encode, the usual re-upload."""

    def one(kind: str) -> AudioEdit:
        if kind == "gain":
            return AudioEdit("gain", {"db": float(rng.uniform(-9, 6))})
        if kind == "noise":
            return AudioEdit(
                "noise",
                {
                    "snr_db": float(rng.uniform(5, 15)),
                    "seed": int(rng.integers(1 << 30)),
                    "pink": bool(rng.random() < 0.5),
                },
            )
        if kind == "bed":
            return AudioEdit(
                "bed", {"bed": int(rng.integers(max(1, n_beds))), "level_db": float(rng.uniform(-12, -3))}
            )
        if kind == "eq":
            return AudioEdit(
                "eq", {"low_db": float(rng.uniform(-9, 9)), "high_db": float(rng.uniform(-12, 6))}
            )
        if kind == "speed":
            # Anywhere in 3-10 % slower or faster (not only on a search's grid points).
            factor = float(rng.uniform(1.03, 1.10) if rng.random() < 0.5 else rng.uniform(0.90, 0.97))
            return AudioEdit("speed", {"factor": factor})
        if kind == "reencode":
            codec = str(rng.choice(list(CODECS)))
            kbps = int(rng.choice({"aac": [32, 48, 64], "opus": [16, 24, 32], "mp3": [32, 48, 64]}[codec]))
            return AudioEdit("reencode", {"codec": codec, "kbps": kbps})
        raise ValueError(kind)

    if family == "stack":
        return [
            one("gain"),
            one("eq"),
            one("bed" if n_beds and rng.random() < 0.5 else "noise"),
            one("reencode"),
        ]
    if family not in FAMILIES:
        raise ValueError(f"unknown audio edit family {family!r}: choose from {', '.join(FAMILIES)}")
    return [one(family)]
