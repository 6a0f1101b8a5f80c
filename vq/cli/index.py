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
    codes: str = typer.Option(
        "pq",
        "--codes",
        help="Index codes past --flat-limit: pq (IVF-PQ32) or binary (learned, --hash-model).",
    ),
    hash_model: str = typer.Option(
        None, "--hash-model", help="With --codes binary: the hashing model (default vq-hash)."
    ),
    rules: list[str] = typer.Option(
        [],
        "--filter",
        help="More post-match rules, NAME or NAME:KEY=VALUE,... (same_uploader, min_ratio:ratio=0.2).",
    ),
    companion: list[str] = options.COMPANION,
) -> None:
    """Create an empty library bound to one embedding model (and companions under others)."""
    from vq.pipelines.library import companions_asked, create_library, described

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
        codes=codes,
        hash_model=hash_model,
        companions=companions_asked(companion),
    )
    console.print(f"created library '{name}' at {library} ({described(library, config)})")


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
    cluster: str = options.CLUSTER,
) -> None:
    """Ingest videos without querying (building a reference library)."""
    run_and_report(
        videos,
        [library],
        backend,
        ingest=True,
        query=False,
        json_out=json_out,
        timeout=timeout,
        cluster=cluster,
    )


@app.command("backfill")
def backfill_cmd(
    videos: list[str] = typer.Argument(..., help="Videos: files, folders or globs."),
    library: Path = LIBRARY,
    backend: str = options.BACKEND,
    address: str = typer.Option(
        "auto",
        "--address",
        help="Ray cluster: auto (this machine's, else a private one), local, or an address.",
    ),
    workers: int = typer.Option(2, "--workers", help="Actors decoding and embedding at once."),
    cluster: bool = typer.Option(
        False, "--cluster", help="The library is sharded: its shards catch up as videos commit."
    ),
    meta: list[str] = typer.Option([], "--meta", help="KEY=VALUE metadata for every input."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Ingest many videos with Ray Data: decode and embed on a pool of actors, this process
    committing (resumable: videos already in the library are skipped)."""
    from vq.cli.extras import parse_pairs
    from vq.cli.output import err_console, print_jsonl
    from vq.fsutil import expand_inputs
    from vq.media import VIDEO_SUFFIXES
    from vq.pipelines.backfill import backfill
    from vq.progress import track

    if workers < 1:
        raise UsageError("--workers must be at least 1")
    paths = expand_inputs(videos, VIDEO_SUFFIXES)
    if not paths:
        raise UsageError("no videos found in the given inputs")
    records = backfill(
        paths,
        library,
        backend=backend,
        address=address,
        workers=workers,
        meta=parse_pairs(meta, "--meta"),
        cluster=cluster,
    )
    failed = done = 0
    for record in track(records, total=len(paths), description="backfill"):
        data = record.to_json()
        done += 1
        failed += data["status"] != "ok"
        if json_out:
            print_jsonl(data)
        elif data["status"] != "ok":
            err_console.print(f"error: {data['error']}")
    if not json_out:
        console.print(
            f"backfilled {done - failed} video(s) into {library} ({len(paths) - done} already there)"
        )
    if failed:
        err_console.print(f"{failed} of {done} input(s) failed")
        raise typer.Exit(1)


@app.command("remove")
def remove_cmd(
    name: str = typer.Argument(..., help="Video id as stored (see `stats --videos`)."),
    library: Path = LIBRARY,
) -> None:
    """Hide a video from future queries (in the library's companions too)."""
    from vq.index.library import companions_of

    with open_library(library, write=True) as lib:
        if not lib.remove_video(name):
            raise UsageError(f"no video {name!r} in {library}")
        for companion in companions_of(library):
            with open_library(companion, write=True) as partner:
                partner.remove_video(name)
    console.print(f"removed {name}")


@app.command("stats")
def stats_cmd(
    library: Path = LIBRARY,
    videos: bool = typer.Option(False, "--videos", help="List videos too."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Videos, vectors, index type and sizes."""
    from vq.index.library import companions_of

    with open_library(library) as lib:
        stats = lib.stats()
        if companions := companions_of(library):
            stats["companions"] = ", ".join(c.name for c in companions)
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
    cluster: str = options.CLUSTER,
) -> None:
    """Match one video against the libraries without adding it."""
    run_and_report(
        [video],
        library,
        backend,
        ingest=False,
        query=True,
        json_out=json_out,
        timeout=timeout,
        cluster=cluster,
    )


@app.command("shard")
def shard_cmd(
    library: Path = typer.Argument(..., help="Library directory."),
    shards: int = typer.Option(4, "--shards", help="Shards (each holds 1/N of the videos)."),
    replicas: int = typer.Option(1, "--replicas", help="Copies of each shard (more queries per second)."),
    address: str = typer.Option(
        None,
        "--address",
        help="Where the shards run: auto, local, or a Ray address (ray://head:10001); "
        "recorded in [cluster] (default auto). With --release: default the recorded one.",
    ),
    release: bool = typer.Option(
        False,
        "--release",
        help="End this library's shard actors on a shared cluster instead (before re-sharding "
        "with another layout: actors are named by layout).",
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Shard a library for Ray: the trained index becomes every shard's template (train once)
    and library.toml gains a [cluster] section; `vq run --cluster ADDRESS` then searches it."""
    from vq.index.sharding import release_shards, shard_library

    if release:
        ended = release_shards(library, address)
        if json_out:
            print_json({"library": str(library), "released": ended})
        else:
            console.print(f"ended {ended} shard actor(s) of {library}")
        return
    cluster = shard_library(library, shards, replicas, address or "auto")
    if json_out:
        print_json({"library": str(library), **vars(cluster)})
    else:
        console.print(
            f"sharded {library}: {cluster.shards} shard(s) x {cluster.replicas} replica(s); "
            f"search it with `vq run --cluster {cluster.address}`"
        )
