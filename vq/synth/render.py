"""Rendering edited copies: stream a source through a list of edits into a new file.

`render()` goes frame by frame (memory does not grow with duration) and returns an
`EditRecord` with the content box and the time mapping; `splice()` joins stretches of
several videos (a partial copy hosted inside other footage).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import UsageError
from vq.synth.base import Box, Edit, clip_box
from vq.synth.timeline import TEMPORAL, FrameRate, Reverse, Speed, segments_from


class BackgroundVideo:
    """Frames of another video by time (looping), for picture-in-picture backgrounds."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float = 10.0, seconds: float = 20.0):
        from vq.media.video import open_video

        with open_video(path) as video:
            duration = video.info.duration or seconds
            long_enough = duration > 1 / fps
            frames = video.sample(fps=fps, size=size) if long_enough else video.sample(times=[0.0], size=size)
        self.frames, self.times, self.period = frames.images, frames.times, max(duration, 1e-3)
        self.path = str(path)

    def __call__(self, t: float) -> np.ndarray:
        i = int(np.searchsorted(self.times, t % self.period, side="right")) - 1
        return self.frames[max(0, min(i, len(self.frames) - 1))]


# -- composing ---------------------------------------------------------------------------------------


@dataclass
class EditRecord:
    """What an edited copy is: the edits, where the source picture is, and which source
    times each stretch of the output shows."""

    edits: list[dict[str, Any]]
    size: tuple[int, int]
    box: Box
    segments: list[tuple[float, float, float, float]] = field(default_factory=list)
    duration: float = 0.0
    sources: list[str] = field(default_factory=list)  # the file each segment shows

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def apply_spatial(edits: Sequence[Edit], image: np.ndarray, t: float = 0.0) -> np.ndarray:
    for edit in edits:
        if not isinstance(edit, TEMPORAL):
            image = np.ascontiguousarray(edit(image, t))
    return image


def track_box(edits: Sequence[Edit], size: tuple[int, int]) -> tuple[Box, tuple[int, int]]:
    box: Box = (0, 0, size[0], size[1])
    for edit in edits:
        if not isinstance(edit, TEMPORAL):
            box, size = edit.map_box(box, size)
    return box, size


def render(
    source: str | Path,
    dest: str | Path,
    edits: Sequence[Edit],
    *,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    codec: str = "h264",
    crf: int = 23,
    bitrate: int | None = None,
    audio: bool = True,
    max_seconds: float | None = None,
) -> EditRecord:
    """Stream `source` through `edits` into `dest`; returns what the copy is.

    `fps` and `size` resample the source first (lower values make evaluation sets cheap);
    `max_seconds` caps the source duration read.
    """
    from vq.media.encode import EVEN_SIZE_CODECS, write_video
    from vq.media.video import open_video

    with open_video(source) as video:
        info = video.info
        src_fps = fps or info.fps or 25.0
        duration = info.duration or 0.0
        if max_seconds is not None:
            duration = min(duration, max_seconds)
        out_t = np.arange(0.0, duration - 1e-9, 1.0 / src_fps)
        if len(out_t) == 0:
            raise UsageError(f"{source}: nothing to render (duration {duration})")
        src_t = out_t.copy()
        speed, out_fps = 1.0, src_fps
        for edit in edits:
            if isinstance(edit, TEMPORAL):
                out_t, src_t = edit.retime(out_t, src_t, out_fps)
                if isinstance(edit, Speed):
                    speed *= edit.factor
                if isinstance(edit, FrameRate):
                    out_fps = edit.fps
        base_size = size or (info.width, info.height)
        box, out_size = track_box(edits, base_size)
        if codec in EVEN_SIZE_CODECS:  # the encoder drops an odd last row/column
            out_size = (out_size[0] // 2 * 2, out_size[1] // 2 * 2)
            box = clip_box(box, *out_size)
        from vq.media.sampling import iter_frames_at

        frames = iter_frames_at(video, src_t, base_size)
        if np.any(np.diff(src_t) < 0):  # played backwards: decode forwards, then reorder
            order = np.argsort(src_t, kind="stable")
            held: list = [None] * len(src_t)
            for k, image in zip(order, iter_frames_at(video, src_t[order], base_size), strict=True):
                held[k] = image
            frames = iter(held)
        spatial = [e for e in edits if not isinstance(e, TEMPORAL)]

        def produce() -> Iterator[np.ndarray]:
            for t, image in zip(out_t, frames, strict=True):
                yield apply_spatial(spatial, image, float(t))

        backwards = any(isinstance(e, Reverse) for e in edits)
        audio_from = source if audio and info.has_audio and speed > 0 and not backwards else None
        write_video(
            dest,
            produce(),
            out_fps,
            times=out_t,
            codec=codec,
            crf=crf,
            bitrate=bitrate,
            audio_from=audio_from,
            audio_start=float(src_t[0]),
            audio_speed=speed,
        )
    segments = segments_from(out_t, src_t, out_fps)
    return EditRecord(
        edits=[e.describe() for e in edits],
        size=out_size,
        box=box,
        segments=segments,
        duration=float(out_t[-1] + 1 / out_fps),
        sources=[str(source)] * len(segments),
    )


def splice(
    pieces: Sequence[tuple[str | Path, float, float]],
    dest: str | Path,
    edits: Sequence[Edit] = (),
    *,
    fps: float,
    size: tuple[int, int],
    codec: str = "h264",
    crf: int = 23,
) -> EditRecord:
    """Join `pieces` = [(source, start, end) seconds] at `fps` and `size`, then apply the
    spatial `edits` to the whole: a partial copy is a stretch of one video inserted between
    others. No audio; temporal edits belong in `render`."""
    from vq.media.encode import EVEN_SIZE_CODECS, write_video
    from vq.media.sampling import iter_frames_at
    from vq.media.video import open_video

    if any(isinstance(e, TEMPORAL) for e in edits):
        raise UsageError("splice takes spatial edits only; re-time the pieces with render() first")
    plan = []
    out_start = 0.0
    for source, start, end in pieces:
        times = np.arange(start, end - 1e-9, 1.0 / fps)
        if len(times) == 0:
            raise UsageError(f"{source}: piece [{start}, {end}) holds no frames at {fps} fps")
        plan.append((source, times, out_start))
        out_start += len(times) / fps
    box, out_size = track_box(edits, size)
    if codec in EVEN_SIZE_CODECS:
        out_size = (out_size[0] // 2 * 2, out_size[1] // 2 * 2)
        box = clip_box(box, *out_size)

    def produce() -> Iterator[np.ndarray]:
        for source, times, offset in plan:
            with open_video(source) as video:
                for k, image in enumerate(iter_frames_at(video, times, size)):
                    yield apply_spatial(edits, image, offset + k / fps)

    write_video(dest, produce(), fps, codec=codec, crf=crf)
    return EditRecord(
        edits=[e.describe() for e in edits],
        size=out_size,
        box=box,
        segments=[(o, o + len(t) / fps, float(t[0]), float(t[-1] + 1 / fps)) for _, t, o in plan],
        duration=out_start,
        sources=[str(s) for s, _, _ in plan],
    )
