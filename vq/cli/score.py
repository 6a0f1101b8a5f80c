"""`vq score`: no-reference quality (1-5) of videos, per video and per segment."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import err_console, print_jsonl, print_table
from vq.errors import UsageError
from vq.fsutil import atomic_write_text, expand_inputs
from vq.media import VIDEO_SUFFIXES
from vq.models import graph_for
from vq.pipelines.score import score_files
from vq.pipelines.watchdog import DEFAULT_TIMEOUT
from vq.progress import track
from vq.runtimes import resolve_backend
from vq.stages.quality import DEFAULT_VIEWS


def score_cmd(
    inputs: list[str] = typer.Argument(..., help="Videos: files, folders or globs."),
    model: str = options.MODEL,
    backend: str = options.BACKEND,
    precision: str = options.PRECISION,
    segment: float = typer.Option(2.0, "--segment", help="Seconds per scored segment."),
    max_segments: int = typer.Option(30, "--max-segments", help="Most segments per video (spread evenly)."),
    views: int = typer.Option(
        DEFAULT_VIEWS,
        "--views",
        help="Fragment placements averaged per window, each in its own flip or quarter turn "
        "(1: the cell centres, upright).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the records to this JSONL file."),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT,
        "--timeout",
        help="Seconds per video before the watchdog stops it with an error record and goes on "
        "(videos run in a worker process); 0 runs them in this process with no watchdog.",
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON record per video on stdout."),
) -> None:
    """Score video quality on the 1-5 scale (5 excellent, 1 bad; the model card says how
    it was calibrated). One record per video: score, segment scores, key frames, timings."""
    resolve_backend(backend)
    graph_for(precision, "cpu")
    paths = expand_inputs(inputs, VIDEO_SUFFIXES)
    if not paths:
        raise UsageError("no inputs found")
    # A model or backend that cannot load fails once, with one line, when the worker
    # starts (the watchdog re-raises a worker's start-up error): no load here first.
    records = []
    jobs = score_files(paths, model, backend, precision, segment, max_segments, timeout, views)
    for record in track(jobs, total=len(paths), description="score"):
        records.append(record)
        if json_out:
            print_jsonl(record)
        elif record["status"] != "ok":
            err_console.print(f"error: {record['error']}")
    if out is not None:
        import json

        atomic_write_text(out, "".join(json.dumps(r) + "\n" for r in records))
    if not json_out:
        print_table(
            [
                {"path": r["path"], "score": r["score"], "segments": len(r["segments"])}
                for r in records
                if r["status"] == "ok"
            ],
            [("path", "video"), ("score", "score (1-5)"), ("segments", "segments")],
        )
    failed = sum(r["status"] != "ok" for r in records)
    if failed:
        err_console.print(f"{failed} of {len(paths)} video(s) failed")
        raise typer.Exit(1)
