"""`vq probe` and `vq frames`: look inside a video and pull sampled frames out of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from vq.cli.output import console, err_console, print_json
from vq.errors import UsageError, VqError
from vq.images import write_png
from vq.media import open_video


def probe_cmd(
    videos: list[str] = typer.Argument(..., help="Video files or URLs."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per video (JSON lines)."),
) -> None:
    """Print a video's metadata: codec, size, rotation, frame rate, duration, keyframes, audio."""
    import json
    import sys

    failed = 0
    for path in videos:
        try:
            with open_video(path) as video:
                info = video.info.to_json()
        except VqError as e:
            failed += 1
            if json_out:
                sys.stdout.write(json.dumps({"path": path, "status": "error", "error": str(e)}) + "\n")
            else:
                err_console.print(f"error: {e}")
            continue
        if json_out:
            sys.stdout.write(json.dumps({**info, "status": "ok"}) + "\n")
        else:
            for key, value in info.items():
                console.print(f"{key:18s} {value}")
    if failed:
        raise typer.Exit(6)


def frames_cmd(
    video: str = typer.Argument(..., help="Video file or URL."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for frame PNGs."),
    fps: float = typer.Option(None, "--fps", help="Sample this many frames per second (default 1)."),
    times: str = typer.Option(None, "--times", help="Comma-separated times in seconds instead."),
    count: int = typer.Option(None, "--count", help="Sample COUNT frames evenly instead..."),
    within: float = typer.Option(None, "--within", help="...over the first WITHIN seconds."),
    max_side: int = typer.Option(None, "--max-side", help="Scale so the longer side is at most this."),
    crop: bool = typer.Option(False, "--crop", help="Crop to the content box (borders, blur fill, PiP)."),
    hw: str = typer.Option(None, "--hw", help="Hardware decoder: cuda (NVDEC)."),
    exact: bool = typer.Option(False, "--exact", help="Decode the loop filter too (no fast path)."),
    json_out: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write sampled frames as PNG, named by timestamp, optionally cropped to the content box."""
    if sum(x is not None for x in (fps, times, count)) > 1:
        raise UsageError("give one of --fps, --times or --count")
    sample_args: dict = {}
    if times is not None:
        try:
            sample_args["times"] = [float(t) for t in times.split(",") if t.strip()]
        except ValueError:
            raise UsageError(f"--times must be comma-separated seconds, got {times!r}") from None
    elif count is not None:
        sample_args.update(count=count, within=within)
    else:
        sample_args["fps"] = fps if fps is not None else 1.0
    with open_video(video, hw=hw) as v:
        frames = v.sample(**sample_args, max_side=max_side, fast=not exact)
    box = None
    if crop and len(frames):
        from vq.preprocess.content_box import crop_to_box, detect_content_box

        box = detect_content_box(frames.images)
        images = [crop_to_box(im, box) for im in frames.images]
    else:
        images = list(frames.images)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for t, image in zip(frames.times, images, strict=True):
        path = out / f"{Path(video).stem}_{t:010.3f}.png"
        written.append(str(write_png(path, np.ascontiguousarray(image))))
    result = {
        "video": video,
        "frames": written,
        "times": frames.times.tolist(),
        "stats": frames.stats,
        "content_box": None if box is None else box.to_json(),
    }
    if json_out:
        print_json(result)
    else:
        console.print(
            f"wrote {len(written)} frame(s) to {out} ({frames.stats.get('strategy')}, "
            f"decoded {frames.stats.get('decoded')})"
        )
        if box is not None:
            console.print(f"content box: {box.to_json()}")
