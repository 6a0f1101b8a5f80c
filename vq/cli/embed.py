"""`vq embed`: frame vectors for images and videos, written to one .npz file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import typer

from vq.cli import options
from vq.cli.inputs import IMAGE_SUFFIXES, expand_inputs
from vq.cli.output import err_console, print_jsonl
from vq.errors import UsageError, VqError
from vq.fsutil import atomic_write_bytes
from vq.images import read_rgb
from vq.media import VIDEO_SUFFIXES
from vq.models import graph_for
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
    vectors, names, times = [], [], []
    failed = 0
    with Embedder(model, backend=backend, precision=precision, crop=crop) as embedder:
        for path in track(paths, total=len(paths), description="embed"):
            record: dict = {"path": str(path)}
            try:
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    result = embedder.embed_video(path, fps=fps)
                    v, t = result["vectors"], result["times"]
                    record["content_box"] = result["box"].to_json() if result["box"] else None
                else:
                    v, t = embedder.embed_images([read_rgb(path)]), np.array([np.nan])
                vectors.append(v)
                times.append(t)
                names.extend([str(path)] * len(v))
                record.update(status="ok", vectors=len(v))
            except VqError as e:
                failed += 1
                record.update(status="error", error=str(e))
                if not json_out:
                    err_console.print(f"error: {e}")
            if json_out:
                print_jsonl(record)
        name = embedder.artifact.name
        sha = embedder.artifact.card.files["fp32"]["sha256"]
    buf = io.BytesIO()
    np.savez(
        buf,
        vectors=np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32),
        paths=np.array(names),
        times=np.concatenate(times) if times else np.zeros(0),
        model=np.array(name),
        model_sha256=np.array(sha),
    )
    atomic_write_bytes(out, buf.getvalue())
    err_console.print(
        f"wrote {sum(len(v) for v in vectors)} vector(s) from {len(paths) - failed} input(s) to {out}",
        style="dim",
    )
    if failed:
        err_console.print(f"{failed} of {len(paths)} input(s) failed")
        raise typer.Exit(1)
