"""`vq index`: create a dedup library and add, remove, inspect and query its videos."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import console, print_json
from vq.cli.run import TIMEOUT, run_and_report
from vq.errors import UsageError
from vq.index.library import open_library
from vq.pipelines.library import DEFAULT_FPS, DEFAULT_QUERY_FPS

app = typer.Typer(help="Dedup libraries: faiss index + SQLite catalog.", no_args_is_help=True)
LIBRARY = typer.Option(..., "--library", "-l", help="Library directory.")


@app.command("create")
def create_cmd(
    library: Path = typer.Argument(..., help="New library directory."),
    model: str = options.MODEL,
    name: str = typer.Option("main", "--name", help="Library name in results (main, copyright, ...)."),
    fps: float = typer.Option(DEFAULT_FPS, "--fps", help="Ingest sampling rate (the seed's 2s1f is 0.5)."),
    query_fps: float = typer.Option(
        None, "--query-fps", help=f"Query sampling rate (default {DEFAULT_QUERY_FPS:g}, or --fps if denser)."
    ),
    factory: str = typer.Option("auto", "--factory", help="faiss factory string, or auto (Flat -> IVF-PQ)."),
    flat_limit: int = typer.Option(200_000, "--flat-limit", help="Exact search up to this many vectors."),
    frame_threshold: float = typer.Option(
        None, "--frame-threshold", help="Cosine for a frame match (default: the model card's)."
    ),
    min_seconds: float = typer.Option(2.0, "--min-seconds", help="Fewest matched seconds reported."),
    rules: list[str] = typer.Option(
        [],
        "--filter",
        help="More post-match rules, NAME or NAME:KEY=VALUE,... (same_uploader, min_ratio:ratio=0.2).",
    ),
) -> None:
    """Create an empty library bound to one embedding model."""
    from vq.pipelines.library import create_library

    config = create_library(
        library,
        model,
        name=name,
        fps=fps,
        query_fps=query_fps,
        factory=factory,
        flat_limit=flat_limit,
        frame_threshold=frame_threshold,
        min_seconds=min_seconds,
        filters=parse_filters(rules),
    )
    console.print(
        f"created library '{name}' at {library} ({config.model}, stores {config.fps:g} fps, "
        f"queries at {config.query_fps:g} fps)"
    )


def parse_filters(rules: list[str]) -> dict[str, dict[str, object]]:
    """["same_uploader", "min_ratio:ratio=0.2"] -> {"same_uploader": {}, "min_ratio": {"ratio": 0.2}}."""
    from vq.cli.extras import literal, parse_pairs

    out: dict[str, dict[str, object]] = {}
    for rule in rules:
        name, _, args = rule.partition(":")
        pairs = parse_pairs([a for a in args.split(",") if a], f"--filter {name}")
        out[name] = {k: literal(v) for k, v in pairs.items()}
    return out


@app.command("add")
def add_cmd(
    videos: list[str] = typer.Argument(..., help="Videos: files, folders or globs."),
    library: Path = LIBRARY,
    backend: str = options.BACKEND,
    json_out: bool = typer.Option(False, "--json"),
    timeout: float = TIMEOUT,
) -> None:
    """Ingest videos without querying (building a reference library)."""
    run_and_report(videos, [library], backend, ingest=True, query=False, json_out=json_out, timeout=timeout)


@app.command("remove")
def remove_cmd(
    name: str = typer.Argument(..., help="Video id as stored (see `stats --videos`)."),
    library: Path = LIBRARY,
) -> None:
    """Hide a video from future queries."""
    with open_library(library, write=True) as lib:
        if not lib.remove_video(name):
            raise UsageError(f"no video {name!r} in {library}")
    console.print(f"removed {name}")


@app.command("stats")
def stats_cmd(
    library: Path = LIBRARY,
    videos: bool = typer.Option(False, "--videos", help="List videos too."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Videos, vectors, index type and sizes."""
    with open_library(library) as lib:
        stats = lib.stats()
        if videos:
            stats["video_list"] = [
                {"id": v.name, "path": v.path, "duration": v.duration, "vectors": v.n_vectors}
                for v in lib.live_videos()
            ]
    if json_out:
        print_json(stats)
    else:
        for key, value in stats.items():
            if key != "video_list":
                console.print(f"{key:18s} {value}")
        for v in stats.get("video_list", []):
            console.print(f"  {v['id']}  {v['vectors']} vectors")


@app.command("query")
def query_cmd(
    video: str = typer.Argument(..., help="Video to check."),
    library: list[Path] = typer.Option(..., "--library", "-l", help="Library (repeatable)."),
    backend: str = options.BACKEND,
    json_out: bool = typer.Option(False, "--json"),
    timeout: float = TIMEOUT,
) -> None:
    """Match one video against the libraries without adding it."""
    run_and_report([video], library, backend, ingest=False, query=True, json_out=json_out, timeout=timeout)
