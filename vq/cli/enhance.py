"""`vq enhance`: super-resolve images with the shipped (or a named) enhancement model."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import console, err_console, print_jsonl
from vq.errors import UsageError
from vq.fsutil import expand_inputs
from vq.images import IMAGE_SUFFIXES
from vq.models import graph_for
from vq.pipelines.enhance import enhance_files
from vq.progress import track
from vq.runtimes import resolve_backend
from vq.stages.enhance import Enhancer


def enhance_cmd(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or globs."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <name>_x2.png outputs."),
    model: str = options.MODEL,
    backend: str = options.BACKEND,
    precision: str = options.PRECISION,
    tile: int = typer.Option(128, "--tile", help="Tile size in input pixels."),
    json_out: bool = typer.Option(False, "--json", help="One JSON record per image on stdout."),
) -> None:
    """Enhance (x2 super-resolve) images; a bad file is reported and the batch goes on."""
    resolve_backend(backend)  # typos fail before any model loads
    graph_for(precision, "cpu")
    paths = expand_inputs(inputs, IMAGE_SUFFIXES)
    if not paths:
        raise UsageError("no images found in the given inputs")
    failed = 0
    with Enhancer(model, backend=backend, precision=precision, tile=tile) as enhancer:
        info = enhancer.describe()
        err_console.print(
            f"{info['model']} on {info['backend']}/{info['device']} ({info['precision']})", style="dim"
        )
        for record in track(enhance_files(paths, out, enhancer), total=len(paths), description="enhance"):
            failed += record["status"] != "ok"
            if json_out:
                print_jsonl(record)
            elif record["status"] == "ok":
                secs = record["seconds"]["enhance"]
                console.print(
                    f"{record['path']} -> {record['output']} "
                    f"({record['size_in'][0]}x{record['size_in'][1]} -> "
                    f"{record['size_out'][0]}x{record['size_out'][1]}, {secs:.2f} s)"
                )
            else:
                err_console.print(f"error: {record['error']}")
    if failed:
        err_console.print(f"{failed} of {len(paths)} input(s) failed")
        raise typer.Exit(1)
