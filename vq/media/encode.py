"""Write frames to H.264 / HEVC / AV1 / VP9 at a CRF or a bitrate, audio passed through.

Used for enhancement output, rate-distortion ladders and for building edited copies in
the evaluation sets. The file appears atomically: it is written beside the destination
under a temporary name and renamed when complete, so a crash leaves no half-written video.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import MediaError, UsageError
from vq.fsutil import atomic_path

ENCODERS = {
    "h264": "libx264",
    "hevc": "libx265",
    "av1": "libsvtav1",
    "vp9": "libvpx-vp9",
    "h264_nvenc": "h264_nvenc",
}
# x264/x265/SVT-AV1/NVENC need even sizes for 4:2:0; libvpx takes odd ones.
EVEN_SIZE_CODECS = {"h264", "hevc", "av1", "h264_nvenc"}
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
# Audio codecs each container takes as-is; anything else is re-encoded (AAC, or Opus in WebM).
AUDIO_COPY_OK = {
    "mp4": {"aac", "mp3", "alac", "opus", "ac3"},
    "mov": {"aac", "mp3", "alac", "ac3"},
    "matroska": None,
    "webm": {"opus", "vorbis"},
}  # None: anything


def _container_format(path: Path) -> str:
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise UsageError(f"{path}: unsupported output container (use {', '.join(CONTAINERS)})") from None


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray] | np.ndarray,
    fps: float | Fraction = 25,
    *,
    codec: str = "h264",
    crf: int | None = 23,
    bitrate: int | None = None,
    preset: str | None = None,
    gop: int | None = None,
    scenecut: bool = True,
    bframes: int | None = None,
    pix_fmt: str = "yuv420p",
    codec_params: dict[str, str] | None = None,
    threads: int | None = None,
    times: Iterable[float] | None = None,
    timed: bool = False,
    rotation: int = 0,
    audio_from: str | os.PathLike[str] | None = None,
    audio_start: float = 0.0,
    audio_speed: float = 1.0,
) -> Path:
    """Encode uint8 RGB frames (H, W, 3) to `path`; returns the path.

    `crf` or `bitrate` (bits/s; takes precedence) sets quality. `gop` is the keyframe
    interval in frames; `scenecut=False` forbids extra keyframes at cuts (a fixed GOP, as
    in live-stream recordings). `bframes=0` writes no B-frames (baseline-profile encoders,
    live-stream recorders: decode order is presentation order). `times` gives per-frame
    timestamps in seconds for variable frame rate; with `timed=True` each item of `frames`
    is a ``(seconds, image)`` pair instead (a stream whose times are known only as it is
    decoded: a video re-encoded frame by frame keeps its own timing). `rotation` writes display-matrix
    metadata (degrees counter-clockwise). `codec_params` go into x264-params / x265-params
    (``{"pass": "1", "stats": path}`` for two-pass rate control). `threads=1` makes x264's
    output bit-exact from run to run (its threaded lookahead is not, at some presets).
    `audio_from` copies the audio of another media file, starting at `audio_start` s;
    with `audio_speed != 1` the audio is re-timed by resampling (speed-change edits).
    Odd frame sizes are cropped by one pixel to the even size 4:2:0 needs, except on VP9.
    """
    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr otherwise
    path = Path(path)
    fmt = _container_format(path)
    if codec not in ENCODERS:
        raise UsageError(f"unknown codec {codec!r} (choose from {', '.join(ENCODERS)})")
    rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
    if timed and times is not None:
        raise UsageError("give frame times either in `times` or inline (timed=True), not both")
    times_list = None if times is None else [float(t) for t in times]
    if timed:
        times_list = []
        frames = _split_times(frames, times_list)
    time_base = Fraction(1, 90_000) if times_list is not None else 1 / rate
    if codec == "hevc" and bframes is None:
        frames, short = _peek_short(frames, X265_LOOKAHEAD)
        # x265 dates the first packets from its B-frame delay, which it has not measured
        # when the clip ends before its lookahead fills: decode times of -8e18 or above the
        # presentation time, which the muxer rejects (2-frame .mp4: 57 of 60 encodes
        # failed; 1-frame .mkv about 1 in 100). Such a clip is written without B-frames.
        bframes = 0 if short else None

    with atomic_path(path) as tmp:
        try:
            out = av.open(str(tmp), mode="w", format=fmt)
        except av.error.FFmpegError as e:
            raise MediaError(f"{path}: cannot create ({e})") from None
        with out:
            stream = None
            audio = _AudioCopy(out, fmt, audio_from, audio_start, audio_speed) if audio_from else None
            n = 0
            for n, image in enumerate(frames, start=1):
                image = _check_frame(image)
                h, w = image.shape[:2]
                if codec in EVEN_SIZE_CODECS:
                    h, w = h // 2 * 2, w // 2 * 2
                if stream is None:
                    stream = _video_stream(
                        out,
                        codec,
                        rate,
                        w,
                        h,
                        pix_fmt,
                        crf,
                        bitrate,
                        preset,
                        gop,
                        scenecut,
                        bframes,
                        time_base,
                        codec_params,
                    )
                    if threads:
                        stream.codec_context.thread_count = threads
                        stream.codec_context.thread_type = "NONE"
                    if rotation:
                        stream.set_display_rotation(rotation)
                if (h, w) != (stream.height, stream.width):
                    raise UsageError(
                        f"frame {n} is {image.shape[1]}x{image.shape[0]}, "
                        f"the video is {stream.width}x{stream.height}"
                    )
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
                if times_list is not None:
                    frame.pts = round(times_list[n - 1] / float(time_base))
                    frame.time_base = time_base
                else:
                    frame.pts = n - 1
                for packet in stream.encode(frame):
                    out.mux(packet)
            if stream is None:
                raise UsageError(f"{path}: no frames to write")
            for packet in stream.encode(None):
                out.mux(packet)
            if audio is not None:
                audio.copy(duration=_duration(times_list, n, rate))
    return path


X265_LOOKAHEAD = 8  # frames; any clip at least this long gets x265's usual B-frames


def _peek_short(frames: Iterable, n: int) -> tuple[Iterable, bool]:
    """(the same frames, whether there are fewer than `n`), reading at most `n` ahead."""
    it = iter(frames)
    head = list(itertools.islice(it, n))
    return itertools.chain(head, it), len(head) < n


def _split_times(pairs: Iterable[tuple[float, np.ndarray]], times: list[float]):
    """Yield the images of (seconds, image) pairs, appending each time to `times` first."""
    for t, image in pairs:
        times.append(float(t))
        yield image


def _check_frame(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 2:
        raise UsageError(f"frames must be uint8 HxWx3 RGB (at least 2x2), got {arr.dtype} {arr.shape}")
    return arr


def _video_stream(
    out, codec, rate, w, h, pix_fmt, crf, bitrate, preset, gop, scenecut, bframes, time_base, codec_params
):
    stream = out.add_stream(ENCODERS[codec], rate=rate)
    stream.width, stream.height = w, h
    stream.pix_fmt = pix_fmt
    stream.time_base = time_base
    ctx = stream.codec_context
    ctx.time_base = time_base
    options: dict[str, str] = {}
    if bitrate:
        stream.bit_rate = int(bitrate)
    elif crf is not None:
        options["crf"] = str(crf)
        if codec == "vp9":
            stream.bit_rate = 0  # constant-quality mode in libvpx
    if preset is not None:
        options["preset"] = str(preset)
    elif codec == "av1":
        options["preset"] = "10"  # SVT-AV1's default (a slow 8) is far too slow for tests
    params: list[str] = []  # x264-params / x265-params
    if gop is not None:
        ctx.gop_size = int(gop)
        if not scenecut:
            params.append(f"keyint={gop}:min-keyint={gop}:scenecut=0")
    if bframes is not None:
        params.append(f"bframes={int(bframes)}")
    if codec == "hevc":
        params.append("log-level=error")
    params.extend(f"{k}={v}" for k, v in (codec_params or {}).items())
    if params and codec in ("h264", "hevc"):
        options["x264-params" if codec == "h264" else "x265-params"] = ":".join(params)
    ctx.options = options
    return stream


def _duration(times: list[float] | None, n: int, rate: Fraction) -> float:
    if times:
        return times[-1] + 1 / float(rate)
    return n / float(rate)


class _AudioCopy:
    """Audio from another file: stream copy when the container takes the codec, else AAC/Opus."""

    def __init__(self, out, fmt: str, source, start: float, speed: float):
        import av

        self.out, self.start, self.speed = out, start, speed
        try:
            self.src = av.open(str(source))
        except av.error.FFmpegError as e:
            raise MediaError(f"{source}: cannot open audio source ({e})") from None
        if not self.src.streams.audio:
            self.src.close()
            self.src = None
            return
        self.in_stream = self.src.streams.audio[0]
        allowed = AUDIO_COPY_OK[fmt]
        self.copy_packets = speed == 1.0 and (allowed is None or self.in_stream.codec_context.name in allowed)
        if self.copy_packets:
            self.out_stream = out.add_stream_from_template(self.in_stream)
        else:
            self.out_stream = out.add_stream("libopus" if fmt == "webm" else "aac", rate=48000)

    def copy(self, duration: float) -> None:
        import av

        if self.src is None:
            return
        with self.src:
            if self.start > 0:
                self.src.seek(int(self.start / float(self.in_stream.time_base)), stream=self.in_stream)
            try:
                if self.copy_packets:
                    self._remux(duration)
                else:
                    self._transcode(duration)
            except av.error.FFmpegError:
                pass  # a broken audio stream must not cost the video: keep what was written

    def _remux(self, duration: float) -> None:
        tb = self.in_stream.time_base
        offset = None
        for packet in self.src.demux(self.in_stream):
            if packet.pts is None or packet.dts is None:
                continue
            t = float(packet.pts * tb)
            if t < self.start:
                continue
            if t - self.start >= duration:
                break
            offset = packet.pts if offset is None else offset
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = self.out_stream
            self.out.mux(packet)

    def _transcode(self, duration: float) -> None:
        import av

        rate = 48000
        # Resampling to rate*speed and stamping at `rate` plays the audio `speed` x faster.
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=round(rate / self.speed))
        pts = 0
        for frame in self.src.decode(self.in_stream):
            t = float(frame.time or 0.0)
            if t < self.start:
                continue
            if (t - self.start) / self.speed >= duration:
                break
            for res in resampler.resample(frame):
                res.sample_rate = rate
                res.pts = pts
                res.time_base = Fraction(1, rate)
                pts += res.samples
                for packet in self.out_stream.encode(res):
                    self.out.mux(packet)
        for packet in self.out_stream.encode(None):
            self.out.mux(packet)


def write_audio(
    path: str | os.PathLike[str], samples: np.ndarray, rate: int, bitrate: int | None = None
) -> Path:
    """Write mono or (n, channels) float samples in [-1, 1] as WAV (PCM) / M4A (AAC) / Opus /
    MP3 (`bitrate` in bits per second for the lossy ones; the encoder's default if None)."""
    import av

    path = Path(path)
    codecs = {
        ".wav": ("wav", "pcm_s16le", "s16"),
        ".m4a": ("mp4", "aac", "fltp"),
        ".opus": ("ogg", "libopus", "flt"),
        ".mp3": ("mp3", "libmp3lame", "fltp"),
    }
    if path.suffix.lower() not in codecs:
        raise UsageError(f"{path}: audio output must be one of {', '.join(codecs)}")
    fmt, codec, sample_fmt = codecs[path.suffix.lower()]
    data = np.asarray(samples, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data
    layout = {1: "mono", 2: "stereo"}.get(data.shape[1])
    if layout is None:
        raise UsageError("audio must be mono or stereo")
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=fmt) as out:
        # Opus encodes only at 48 kHz (and the family of its divisors): resample for it.
        enc_rate = 48000 if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000) else rate
        stream = out.add_stream(codec, rate=enc_rate, layout=layout)
        if bitrate is not None and codec != "pcm_s16le":
            stream.bit_rate = int(bitrate)
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=enc_rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T), format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for res in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(res):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def encode_roundtrip(
    frames: np.ndarray,
    fps: float,
    *,
    codec: str = "h264",
    crf: int | None = None,
    bitrate: int | None = None,
    preset: str | None = None,
    two_pass: bool = False,
) -> tuple[np.ndarray, int]:
    """Encode a uint8 (T, H, W, 3) clip and decode it back: (decoded frames, bytes written).

    What an encoder does to a picture, for degradation chains and rate-distortion ladders.
    `two_pass` (x264 / x265 at a `bitrate`) runs the analysis pass first, as VOD
    transcoders do. Odd sizes are padded by edge replication to the even size 4:2:0 needs
    and cropped back, so the clip keeps its shape (the width to a multiple of 64: see
    below). Runs in a private temporary folder.
    """
    import tempfile

    import av

    t, h, w, _ = frames.shape
    # Even height for 4:2:0; width padded to a multiple of 64: x264's faster presets read
    # the row padding of narrower frames, which is uninitialised memory, so their output
    # changed from run to run (measured: 3 different encodes in 15 of a 96 px wide clip).
    even = np.pad(frames, ((0, 0), (0, h % 2), (0, -w % 64), (0, 0)), mode="edge")
    if two_pass and (codec not in ("h264", "hevc") or not bitrate):
        raise UsageError("two-pass encoding needs codec h264 or hevc and a bitrate")
    with tempfile.TemporaryDirectory(prefix="vq-encode-") as tmp:
        path = Path(tmp) / "clip.mkv"
        # One thread: a degradation must be a pure function of its parameters.
        kwargs: dict[str, Any] = dict(codec=codec, crf=crf, bitrate=bitrate, preset=preset, threads=1)
        single = {
            "h264": {"threads": "1", "lookahead-threads": "1"},
            "hevc": {"pools": "none", "frame-threads": "1"},
        }
        kwargs["codec_params"] = single.get(codec, {})
        if two_pass:
            stats = str(Path(tmp) / "pass.log")
            write_video(
                path,
                even,
                fps,
                **{**kwargs, "codec_params": {**kwargs["codec_params"], "pass": "1", "stats": stats}},
            )
            kwargs["codec_params"] = {**kwargs["codec_params"], "pass": "2", "stats": stats}
        write_video(path, even, fps, **kwargs)
        size = path.stat().st_size
        with av.open(str(path)) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != t:
        raise MediaError(f"{codec} round trip returned {len(decoded)} of {t} frames")
    return np.stack(decoded)[:, :h, :w], size
