"""`vq serve`: the upload-time service (see `vq.serve.app`)."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import err_console
from vq.errors import MissingExtraError, UsageError


def serve_cmd(
    library: list[Path] = typer.Option(
        ..., "--library", "-l", help="Library (repeatable: main first; it is written)."
    ),
    state: Path = typer.Option(
        None, "--state", help="Folder for the job queue and kept uploads (default: <main library>/serve)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    token_file: Path = typer.Option(
        None, "--token-file", help="File holding the bearer token for writes (else $VQ_SERVE_TOKEN)."
    ),
    root: Path = typer.Option(
        None, "--root", help="Let clients name files under this folder (no .., no symlink escape)."
    ),
    url_prefix: list[str] = typer.Option(
        [], "--url-prefix", help="Let clients name http(s) URLs starting with this (repeatable)."
    ),
    backend: str = options.BACKEND,
    max_upload_mb: float = typer.Option(2048, "--max-upload-mb", help="Largest upload accepted (MB)."),
    max_pixels: int = typer.Option(
        3840 * 2160, "--max-pixels", help="Largest frame accepted (width x height)."
    ),
    deadline: float = typer.Option(
        8.0, "--deadline", help="Decoding seconds per video before the seed's fallback snapshots (0: none)."
    ),
    score: bool = typer.Option(False, "--score", help="Also score quality from the same decode."),
    read_only: bool = typer.Option(
        False, "--read-only", help="A query replica: /v1/query only, libraries opened read-only (no lock)."
    ),
    workers: int = typer.Option(
        2, "--workers", help="Videos decoded and embedded at once, ahead of the one library writer."
    ),
    keep_uploads_days: float = typer.Option(
        7.0,
        "--keep-uploads-days",
        help="Delete an upload this many days after its job finished (0: keep all).",
    ),
    cluster: str = options.CLUSTER,
) -> None:
    """Serve copy detection over HTTP: uploads matched and added in arrival order, records
    within seconds, nothing acknowledged lost (a durable queue); OpenAPI docs at /docs."""
    try:
        import uvicorn

        from vq.serve.app import ServeSettings, create_app, read_token
    except ImportError as e:
        raise MissingExtraError("vq serve", "serve", e) from e
    for lib in library:
        if not (lib / "library.toml").exists():
            raise UsageError(f"{lib}: no library here (make one with vq index create or vq run --create)")
    if cluster is not None:
        from vq.index.sharding import require_sharded

        require_sharded(library)
    if keep_uploads_days < 0:
        raise UsageError("--keep-uploads-days must be >= 0")
    if workers < 1:
        raise UsageError("--workers must be >= 1")
    if root is not None and not root.is_dir():
        raise UsageError(f"--root {root}: no such folder")
    from vq.pipelines.upload import QualityOptions

    settings = ServeSettings(
        libraries=list(library),
        state=state or library[0] / "serve",
        token=read_token(token_file),
        root=root,
        url_prefixes=tuple(url_prefix),
        backend=backend,
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        max_pixels=max_pixels,
        deadline=deadline or None,
        quality=QualityOptions() if score else None,
        workers=workers,
        read_only=read_only,
        keep_uploads_days=keep_uploads_days or None,
        cluster=cluster,
    )
    err_console.print(
        f"vq serve on http://{host}:{port} (docs at /docs); state in {settings.state}", style="dim"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
