"""`vq embed`: frame vectors for images and videos, written to one .npz file."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import err_console, print_jsonl
from vq.errors import UsageError
from vq.fsutil import atomic_write_bytes, expand_inputs
from vq.images import IMAGE_SUFFIXES
from vq.media import VIDEO_SUFFIXES
from vq.models import graph_for
from vq.pipelines.embed import embed_files, vectors_npz
from vq.progress import track
from vq.runtimes import resolve_backend
from vq.stages.embed import Embedder


def embed_cmd(
    inputs: list[str] = typer.Argument(..., help="Images and videos: files, folders or globs."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz: vectors, paths, times."),
    model: str = options.MODEL,
    backend: str = options.BACKEND,
    precision: str = options.PRECISION,
    fps: float = typer.Option(1.0, "--fps", help="Frames per second sampled from videos."),
    crop: bool = typer.Option(True, "--crop/--no-crop", help="Crop to the content box first."),
    json_out: bool = typer.Option(False, "--json", help="One JSON record per input on stdout."),
) -> None:
    """Embed frames: one vector per image, `fps` vectors per second of video."""
    resolve_backend(backend)
    graph_for(precision, "cpu")
    if out.suffix != ".npz":
        raise UsageError(f"--out must end in .npz, got {out}")
    paths = expand_inputs(inputs, IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if not paths:
        raise UsageError("no inputs found")
    results = []
    with Embedder(model, backend=backend, precision=precision, crop=crop).open() as embedder:
        for result in track(embed_files(paths, embedder, fps), total=len(paths), description="embed"):
            results.append(result)
            if json_out:
                print_jsonl(result.record)
            elif result.record["status"] != "ok":
                err_console.print(f"error: {result.record['error']}")
        atomic_write_bytes(out, vectors_npz(results, embedder))
    failed = sum(r.record["status"] != "ok" for r in results)
    count = sum(len(r.vectors) for r in results)
    err_console.print(f"wrote {count} vector(s) from {len(paths) - failed} input(s) to {out}", style="dim")
    if failed:
        err_console.print(f"{failed} of {len(paths)} input(s) failed")
        raise typer.Exit(1)
