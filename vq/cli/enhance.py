"""`vq enhance`: restore or super-resolve images and videos with the shipped (or a named) model."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import console, err_console, print_jsonl
from vq.errors import UsageError
from vq.fsutil import expand_inputs
from vq.images import IMAGE_SUFFIXES
from vq.media.video import VIDEO_SUFFIXES
from vq.models import graph_for
from vq.pipelines.enhance import enhance_files
from vq.progress import track
from vq.runtimes import resolve_backend
from vq.stages.enhance import Enhancer


def enhance_cmd(
    inputs: list[str] = typer.Argument(..., help="Image or video files, folders or globs."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <name>_x<scale>.png / .mp4 outputs."),
    model: str = options.MODEL,
    backend: str = options.BACKEND,
    precision: str = options.PRECISION,
    scale: int = typer.Option(
        None, "--scale", help="Check the model's scale: 2 super-resolves, 1 restores at the same size."
    ),
    steps: int = typer.Option(
        None, "--steps", help="Sampler steps of a generative model (default: its card's; 1 when distilled)."
    ),
    temperature: float = typer.Option(
        None,
        "--temperature",
        help="Noise scale of a generative model: 1 samples detail, 0 the flow's centre (default: card's).",
    ),
    tile: int = typer.Option(128, "--tile", help="Tile size in input pixels (regression models)."),
    codec: str = typer.Option("h264", "--codec", help="Video output codec: h264 or hevc."),
    crf: int = typer.Option(18, "--crf", help="Video output quality (x264/x265 CRF; lower is better)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON record per input on stdout."),
) -> None:
    """Enhance images and videos; a bad file is reported and the batch goes on.

    A video keeps its frame timing and its audio; its record reports the flicker ratio
    (the output's frame-to-frame change over the input's)."""
    resolve_backend(backend)  # typos fail before any model loads
    graph_for(precision, "cpu")
    if codec not in ("h264", "hevc"):
        raise UsageError(f"--codec must be h264 or hevc, got {codec!r}")
    if not 0 <= crf <= 51:
        raise UsageError(f"--crf must be in 0..51, got {crf}")
    paths = expand_inputs(inputs, IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if not paths:
        raise UsageError("no images or videos found in the given inputs")
    failed = 0
    with Enhancer(
        model, backend=backend, precision=precision, tile=tile, steps=steps, temperature=temperature
    ) as enhancer:
        if scale is not None and scale != enhancer.scale:
            raise UsageError(
                f"{enhancer.name} is a x{enhancer.scale} model; --scale {scale} needs another --model"
            )
        info = enhancer.describe()
        sampler = f", {info['steps']} step(s), temperature {info['temperature']:g}" if "steps" in info else ""
        err_console.print(
            f"{info['model']} on {info['backend']}/{info['device']} ({info['precision']}{sampler})",
            style="dim",
        )
        records = enhance_files(paths, out, enhancer, codec=codec, crf=crf)
        for record in track(records, total=len(paths), description="enhance"):
            failed += record["status"] != "ok"
            if json_out:
                print_jsonl(record)
            elif record["status"] == "ok":
                secs = record["seconds"]["enhance"]
                extra = ""
                if record["kind"] == "video":
                    flicker = record["flicker_ratio"]
                    extra = f", {record['frames']} frames" + (f", flicker x{flicker:.2f}" if flicker else "")
                console.print(
                    f"{record['path']} -> {record['output']} "
                    f"({record['size_in'][0]}x{record['size_in'][1]} -> "
                    f"{record['size_out'][0]}x{record['size_out'][1]}{extra}, {secs:.2f} s)"
                )
            else:
                err_console.print(f"error: {record['error']}")
    if failed:
        err_console.print(f"{failed} of {len(paths)} input(s) failed")
        raise typer.Exit(1)
