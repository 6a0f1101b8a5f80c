"""Decode a media file's audio to mono float32 PCM at a fixed rate (16 kHz by default).

Audio is the second fingerprint of the copy-detection seed (its fallback system uses the
audio track with 30 snapshots). A broken or missing audio stream is reported as a
`MediaError` for the audio alone: callers treat it as "no audio", never as a bad video.
"""

from __future__ import annotations

import os

import numpy as np

from vq.errors import MediaError


def decode_audio(
    path: str | os.PathLike[str],
    sample_rate: int = 16000,
    max_seconds: float | None = None,
    start: float = 0.0,
) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at `sample_rate`, from `start` for up to `max_seconds`."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot open ({str(e).splitlines()[0]})") from None
    with container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        if start > 0:
            container.seek(int(start / float(stream.time_base)), stream=stream)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        limit = None if max_seconds is None else int(max_seconds * sample_rate)
        got = 0
        bad = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    bad += 1  # a corrupt audio packet: skip it, keep the rest
                    if bad > 50:
                        raise MediaError(f"{path}: audio stream is undecodable") from None
                    continue
                for frame in frames:
                    if frame.time is not None and frame.time < start:
                        continue
                    for res in resampler.resample(frame):
                        arr = res.to_ndarray().reshape(-1)
                        chunks.append(arr)
                        got += arr.size
                if limit is not None and got >= limit:
                    break
            for res in resampler.resample(None):
                chunks.append(res.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            if not chunks:
                raise MediaError(f"{path}: audio stream is undecodable ({str(e).splitlines()[0]})") from None
    if not chunks:
        raise MediaError(f"{path}: no decodable audio")
    samples = np.concatenate(chunks).astype(np.float32)
    return samples[:limit] if limit is not None else samples
