"""Open a video, describe it, and decode frames sampled by time.

Every failure a file can cause becomes a one-line `MediaError`: missing, empty,
unreadable or not a video, no video stream, absurd dimensions (refused before any
allocation), undecodable. Corrupt packets in the middle of a stream are skipped and
counted; the decode goes on.

Sampling is where the time goes, so `Video.sample` decodes as little as it can (see
`vq.media.sampling` for the plan): only keyframes when they are at least as dense as the
samples, only reference frames otherwise, seeking over stretches with no sample in them,
with the loop filter skipped (`fast=True`) and the scaling done inside the colour
conversion. Frames come back as one uint8 NHWC RGB array with float64 timestamps taken
from the stream's pts (correct for variable frame rate), rotation metadata applied.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import MediaError
from vq.fsutil import is_url
from vq.media.frames import Frames

VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi", ".ts", ".flv", ".m4v"})

# Refuse frames above this many pixels before decoding anything (8K is 33 MP).
MAX_PIXELS = int(os.environ.get("VQ_MAX_VIDEO_PIXELS", 8192 * 8192))
# Seconds to wait to open / read a network source before giving up.
NETWORK_TIMEOUT = (10.0, 20.0)


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, from the container and the first frame (no full decode)."""

    path: str
    container: str
    codec: str
    width: int  # display size: after rotation
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # degrees counter-clockwise applied for display (0/90/180/270)
    pix_fmt: str
    bit_depth: int
    fps: float | None  # average frame rate
    duration: float | None  # seconds; None when the container does not say
    frames: int | None  # frame count the container declares (may be absent)
    bit_rate: int | None
    keyframe_interval: float | None  # largest gap between keyframes seen, seconds
    has_audio: bool
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _av():
    import av

    return av


def _describe_av_error(e: Exception) -> str:
    text = str(e).split("\n")[0].strip()
    # FFmpeg's messages end with the file name; keep the reason only.
    if ":" in text and text.rstrip().endswith(("'", '"')):
        text = text.rsplit(":", 1)[0]
    return text or type(e).__name__


class Video:
    """An open video file or URL. Use as a context manager; `sample()` decodes frames."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        hw: str | None = None,
        max_pixels: int = MAX_PIXELS,
        timeout: tuple[float, float] = NETWORK_TIMEOUT,
    ):
        self.path = str(path)
        self.hw = hw
        self.max_pixels = max_pixels
        if not is_url(self.path):
            p = Path(self.path)
            if not p.is_file():
                raise MediaError(f"{self.path}: no such file")
            if p.stat().st_size == 0:
                raise MediaError(f"{self.path}: empty file")
        self._timeout = timeout
        self._open_container()
        try:
            ctx = self.stream.codec_context
            w, h = int(ctx.width or 0), int(ctx.height or 0)
            if w <= 0 or h <= 0:
                raise MediaError(f"{self.path}: video stream has no frame size")
            if w * h > max_pixels:
                raise MediaError(f"{self.path}: {w}x{h} frames exceed the {max_pixels:,}-pixel limit")
        except BaseException:
            self.container.close()
            raise
        self._decoded = False  # a decoder's threading is fixed once it opens: see `sample`
        self._info: VideoInfo | None = None
        self._index: Any = None

    def _open_container(self) -> None:
        av = _av()
        options: dict[str, Any] = {}
        if self.hw is not None:
            options["hwaccel"] = _hwaccel(self.hw)
        try:
            self.container = av.open(
                self.path, timeout=self._timeout if is_url(self.path) else None, **options
            )
        except (av.error.FFmpegError, OSError, ValueError, EOFError) as e:
            if self.hw is not None:  # the GPU decoder, not the file, is the likely cause
                raise MediaError(
                    f"{self.path}: NVDEC could not start ({_describe_av_error(e)}); is an NVIDIA GPU visible?"
                ) from None
            raise MediaError(f"{self.path}: cannot open ({_describe_av_error(e)})") from None
        try:
            if not self.container.streams.video:
                kinds = sorted({s.type for s in self.container.streams}) or ["none"]
                raise MediaError(f"{self.path}: no video stream (streams: {', '.join(kinds)})")
            self.stream = self.container.streams.video[0]
        except BaseException:
            self.container.close()
            raise

    # -- description ------------------------------------------------------------------

    @property
    def time_base(self) -> float:
        return float(self.stream.time_base)

    @property
    def start_pts(self) -> int:
        return int(self.stream.start_time or 0)

    def index(self):
        """Keyframe times and the last packet time, from one demux pass (no decoding)."""
        if self._index is None:
            from vq.media.sampling import scan_packets

            self._index = scan_packets(self)
        return self._index

    @property
    def info(self) -> VideoInfo:
        if self._info is None:
            self._info = self._describe()
        return self._info

    def _describe(self) -> VideoInfo:
        c, s = self.container, self.stream
        ctx = s.codec_context
        duration = None
        if s.duration is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / 1_000_000
        index = self.index() if not is_url(self.path) else None
        if duration is None and index is not None and index.last_time is not None:
            duration = index.last_time + (1 / float(s.average_rate) if s.average_rate else 0.0)
        rotation = self._first_frame_rotation()
        w, h = int(ctx.width), int(ctx.height)
        dw, dh = (h, w) if rotation in (90, 270) else (w, h)
        fmt = ctx.format
        bit_depth = max((c.bits for c in fmt.components), default=8) if fmt is not None else 8
        audio = c.streams.audio[0] if c.streams.audio else None
        return VideoInfo(
            path=self.path,
            container=c.format.name,
            codec=ctx.name,
            width=dw,
            height=dh,
            coded_width=w,
            coded_height=h,
            rotation=rotation,
            pix_fmt=ctx.pix_fmt or "unknown",
            bit_depth=int(bit_depth),
            fps=float(s.average_rate) if s.average_rate else None,
            duration=duration,
            frames=int(s.frames) or None,
            bit_rate=int(c.bit_rate) if c.bit_rate else None,
            keyframe_interval=index.keyframe_interval if index is not None else None,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            sample_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
            channels=int(audio.codec_context.channels) if audio is not None else None,
        )

    def _first_frame_rotation(self) -> int:
        """Display rotation from the first frame's display matrix (0 if it cannot decode)."""
        from vq.media.sampling import first_frame

        frame = first_frame(self)
        if frame is None:
            raise MediaError(f"{self.path}: no decodable video frame")
        return normalise_rotation(getattr(frame, "rotation", 0) or 0)

    # -- decoding ----------------------------------------------------------------------

    def sample(
        self,
        *,
        fps: float | None = None,
        times: list[float] | np.ndarray | None = None,
        count: int | None = None,
        within: float | None = None,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        fast: bool = True,
        max_frames: int = 100_000,
        deadline: float | None = None,
    ) -> Frames:
        """Decode frames at `fps`, at `times`, or `count` evenly over the first `within` s.

        With `fps` or `count` each sample may take any frame within half a sample interval
        (which lets the decoder skip most of the work); with `times` each gets the frame
        nearest it.

        `size=(w, h)` scales every frame to exactly that size; `max_side` keeps the aspect
        ratio and bounds the longer side. Either way the scaling happens inside the colour
        conversion. `fast` skips the loop filter (cheaper, slightly softer frames).
        `deadline` (a `time.monotonic()` value) raises `DeadlineExceeded` once passed.
        """
        from vq.media.sampling import decode_samples, sample_times

        targets = sample_times(self, fps=fps, times=times, count=count, within=within)
        if len(targets) > max_frames:
            raise MediaError(f"{self.path}: {len(targets)} samples exceed max_frames={max_frames}")
        if self._decoded:  # a second pass (the timeout fallback, say) needs a fresh decoder
            self.container.close()
            self._open_container()
        self._decoded = True
        return decode_samples(
            self,
            targets,
            fps=fps,
            size=size,
            max_side=max_side,
            fast=fast,
            exact=times is not None,
            deadline=deadline,
        )

    def sample_many(
        self, requests: list[Any], deadline: float | None = None, max_frames: int = 100_000
    ) -> list[Frames]:
        """Serve several consumers' `vq.media.sampling.Request`s from one decoding pass
        (one `Frames` each): what `vq run --score` uses to feed copy detection and the
        quality model from a single decode."""
        from vq.media.sampling import decode_requests

        asked = sum(len(r.targets) for r in requests)
        if asked > max_frames:
            raise MediaError(f"{self.path}: {asked} samples exceed max_frames={max_frames}")
        if self._decoded:
            self.container.close()
            self._open_container()
        self._decoded = True
        return decode_requests(self, requests, deadline=deadline)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def normalise_rotation(angle: float) -> int:
    """Snap a display-matrix angle to 0/90/180/270 (counter-clockwise)."""
    return round(float(angle) / 90.0) % 4 * 90


def _hwaccel(hw: str):
    av = _av()
    from av.codec.hwaccel import HWAccel, hwdevices_available

    if hw != "cuda":
        raise MediaError(f"unknown hardware decoder {hw!r} (supported: cuda)")
    if "cuda" not in hwdevices_available():
        raise MediaError("NVDEC unavailable: this FFmpeg build has no CUDA hwaccel")
    del av
    # No software fallback: asking for NVDEC and silently decoding on the CPU would hide
    # a misconfigured GPU host.
    return HWAccel(device_type="cuda", allow_software_fallback=False)


def open_video(path: str | os.PathLike[str], **kwargs: Any) -> Video:
    """Open `path` (file or URL) for probing and sampling; raises `MediaError` on bad input."""
    return Video(path, **kwargs)


def probe(path: str | os.PathLike[str], **kwargs: Any) -> VideoInfo:
    with open_video(path, **kwargs) as video:
        return video.info
