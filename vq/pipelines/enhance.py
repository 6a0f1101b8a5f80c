"""Batch enhancement of images and videos: one JSON-able record per input, errors included.

An image becomes ``<stem>_x<scale>.png``. A video is decoded once, every frame enhanced
(tiles batched, overlaps blended, the same noise at the same place in every frame) and
re-encoded (H.264 or HEVC at a CRF) with each frame's own timestamp and the source's
audio passed through, so the output plays in sync and lasts as long. Its record carries
the flicker ratio (`vq.eval.metrics.temporal`). Outputs appear atomically: a failure
leaves nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vq.errors import VqError
from vq.eval.metrics.temporal import FlickerMeter
from vq.images import read_rgb, write_png
from vq.media.video import VIDEO_SUFFIXES
from vq.stages.enhance import Enhancer


def output_path(
    src: Path, out_dir: Path, scale: int, taken: set[Path], suffix: str = ".png", fresh: bool = False
) -> Path:
    """`<stem>_x<scale><suffix>` in `out_dir`, numbered if two inputs share a stem (and, with
    `fresh`, if a file of that name is already there: an upload never replaces another's)."""
    path = out_dir / f"{src.stem}_x{scale}{suffix}"
    n = 1
    while path in taken or (fresh and path.exists()):
        path = out_dir / f"{src.stem}_x{scale}-{n}{suffix}"
        n += 1
    taken.add(path)
    return path


def enhance_image(src: Path, dst: Path, enhancer: Enhancer) -> dict[str, Any]:
    start = time.perf_counter()
    image = read_rgb(src)
    t_read = time.perf_counter()
    result = enhancer.enhance(image)
    t_model = time.perf_counter()
    write_png(dst, result)
    return {
        "output": str(dst),
        "size_in": list(image.shape[1::-1]),
        "size_out": list(result.shape[1::-1]),
        "seconds": {
            "read": t_read - start,
            "enhance": t_model - t_read,
            "write": time.perf_counter() - t_model,
        },
    }


def enhance_video(
    src: Path, dst: Path, enhancer: Enhancer, codec: str = "h264", crf: int = 18
) -> dict[str, Any]:
    """Enhance every frame of `src` into `dst` (timestamps and audio kept)."""
    from vq.media import open_video

    with open_video(src) as video:
        return enhance_open(video, src, dst, enhancer, codec, crf)


def enhance_open(
    video: Any,
    src: Path | str,
    dst: Path,
    enhancer: Enhancer,
    codec: str = "h264",
    crf: int = 18,
    picker: Any = None,
) -> dict[str, Any]:
    """`enhance_video` on an open video. A `picker` (`vq.media.sampling.Picker`) is offered
    every decoded frame on the way: other jobs' samples come from this one decode."""
    from vq.media.encode import write_video
    from vq.media.sampling import iter_frames

    meter = FlickerMeter()
    clock = {"enhance": 0.0}
    facts: dict[str, Any] = {}
    start = time.perf_counter()
    info = video.info

    def enhanced():
        for t, frame in iter_frames(video, picker=picker):
            t0 = time.perf_counter()
            out = enhancer.enhance(frame)
            clock["enhance"] += time.perf_counter() - t0
            meter.add(frame, out)
            facts.setdefault("size_in", list(frame.shape[1::-1]))
            facts["size_out"] = list(out.shape[1::-1])
            facts["frames"] = facts.get("frames", 0) + 1
            yield t, out

    write_video(dst, enhanced(), fps=info.fps or 25.0, codec=codec, crf=crf, timed=True, audio_from=src)
    total = time.perf_counter() - start
    return {
        "output": str(dst),
        **facts,
        "duration_in": info.duration,
        "flicker_ratio": meter.ratio,
        "seconds": {"enhance": clock["enhance"], "decode_encode": total - clock["enhance"]},
    }


def enhance_files(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    enhancer: Enhancer,
    codec: str = "h264",
    crf: int = 18,
) -> Iterator[dict[str, Any]]:
    """Enhance each image or video into `out_dir`; yields a record per input, never raises per item."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    taken: set[Path] = set()
    for src in map(Path, paths):
        record: dict[str, Any] = {"path": str(src)}
        try:
            if src.suffix.lower() in VIDEO_SUFFIXES:
                dst = output_path(src, out_dir, enhancer.scale, taken, ".mp4")
                record.update(status="ok", kind="video", **enhance_video(src, dst, enhancer, codec, crf))
            else:
                dst = output_path(src, out_dir, enhancer.scale, taken)
                record.update(status="ok", kind="image", **enhance_image(src, dst, enhancer))
        except VqError as e:
            record.update(status="error", error=str(e))
        yield record
