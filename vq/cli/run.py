"""`vq run`: the main job. Every input is matched against the libraries, then ingested."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vq.cli import options
from vq.cli.output import console, err_console, print_jsonl
from vq.errors import UsageError
from vq.fsutil import atomic_write_text, expand_inputs
from vq.media import VIDEO_SUFFIXES
from vq.pipelines.library import DEFAULT_FPS
from vq.pipelines.upload import EnhanceOptions, QualityOptions
from vq.pipelines.watchdog import DEFAULT_TIMEOUT
from vq.progress import track
from vq.runtimes import resolve_backend

TIMEOUT = typer.Option(
    DEFAULT_TIMEOUT,
    "--timeout",
    help="Seconds per video before the watchdog stops it with an error record and goes on "
    "(videos run in a worker process); 0 runs them in this process with no watchdog.",
)


def run_cmd(
    inputs: list[str] = typer.Argument(..., help="Videos: files, folders or globs."),
    library: list[Path] = typer.Option(..., "--library", "-l", help="Library (repeatable: main first)."),
    backend: str = options.BACKEND,
    no_ingest: bool = typer.Option(False, "--no-ingest", help="Query only; add nothing."),
    out: Path = typer.Option(None, "--out", "-o", help="Write all records as JSONL here."),
    aligner: str = typer.Option(
        "diagonal", "--aligner", help="diagonal (the seed's) or tn (Temporal Network)."
    ),
    coarse: str = typer.Option("vote", "--coarse", help="vote (top-k voting) or mean (mean-vector recall)."),
    meta: list[str] = typer.Option(
        [], "--meta", help="KEY=VALUE metadata for every input (e.g. uploader=ann)."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON record per video on stdout."),
    lock_timeout: float = typer.Option(
        120.0, "--lock-timeout", help="Seconds to wait while another process writes the library."
    ),
    deadline: float = typer.Option(
        None,
        "--deadline",
        help="Seconds of decoding per video before falling back to 30 snapshots of the first 5 min "
        "(matched, not ingested).",
    ),
    create: bool = typer.Option(
        False,
        "--create",
        help="Create a missing library (as `vq index create`), with --model or the default model.",
    ),
    fps: float = typer.Option(
        None,
        "--fps",
        help="With --create: the new library's sampling rate (default 2; the seed's 2s1f is 0.5).",
    ),
    query_fps: float = typer.Option(
        None,
        "--query-fps",
        help="With --create: the rate queries are matched at (default 2, or --fps if denser).",
    ),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="With --create: the new library's embedding model (default vq-embed; vq-embed-luma is blind "
        "to colour grades).",
    ),
    companion: list[str] = options.COMPANION,
    timeout: float = TIMEOUT,
    score: bool = typer.Option(
        False, "--score", help="Also score quality (1-5, as `vq score`) from the same decode."
    ),
    quality_model: str = typer.Option(
        None, "--quality-model", help="With --score: the quality model (default: the shipped one)."
    ),
    enhance: Path = typer.Option(
        None,
        "--enhance",
        help="Also enhance every video into this folder (as `vq enhance`), from the same decode.",
    ),
    enhance_model: str = typer.Option(
        None, "--enhance-model", help="With --enhance: the enhancement model (default: the shipped one)."
    ),
    report: Path = typer.Option(
        None, "--report", help="Also write the review page (as `vq report`) to this HTML file."
    ),
    cluster: str = options.CLUSTER,
) -> None:
    """Find copies of each video in the libraries (segments and scores), then add it.

    With --score and --enhance the same decode also feeds the quality model and the
    enhancer: the record gains `quality` (the `vq score` record) and `enhanced` (a path)."""
    if quality_model is not None and not score:
        raise UsageError("--quality-model applies with --score")
    if enhance_model is not None and enhance is None:
        raise UsageError("--enhance-model applies with --enhance DIR")
    if enhance is not None and deadline is not None:
        raise UsageError("--deadline does not go with --enhance: enhancement decodes every frame")
    if (fps is not None or query_fps is not None or model is not None or companion) and not create:
        raise UsageError(
            "--fps, --query-fps, --model and --companion apply with --create only: a library's models and "
            "rates are set when it is made"
        )
    if create:
        from vq.models import load_model
        from vq.pipelines.library import companions_asked, create_library, described

        companions = companions_asked(companion)
        for m in [model, *(companions or ())]:  # a misspelt model fails before any library is made
            load_model(m, task="embed")
        for lib in library:
            if not (lib / "library.toml").exists():
                name = "main" if lib == library[0] else lib.name
                config = create_library(
                    lib,
                    model,
                    name=name,
                    fps=fps if fps is not None else DEFAULT_FPS,
                    query_fps=query_fps,
                    companions=companions,
                )
                err_console.print(
                    f"created library '{name}' at {lib} ({described(lib, config)})", style="dim"
                )
    run_and_report(
        inputs,
        library,
        backend,
        ingest=not no_ingest,
        query=True,
        json_out=json_out,
        out=out,
        aligner=aligner,
        coarse=coarse,
        meta=meta,
        lock_timeout=lock_timeout,
        deadline=deadline,
        timeout=timeout,
        quality=QualityOptions(model=quality_model) if score else None,
        enhance=EnhanceOptions(enhance, model=enhance_model) if enhance is not None else None,
        report=report,
        cluster=cluster,
    )


def run_and_report(
    inputs: list[str],
    libraries: list[Path],
    backend: str,
    *,
    ingest: bool,
    query: bool,
    json_out: bool,
    out: Path | None = None,
    aligner: str = "diagonal",
    coarse: str = "vote",
    meta: list[str] | None = None,
    lock_timeout: float = 120.0,
    deadline: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    quality: QualityOptions | None = None,
    enhance: EnhanceOptions | None = None,
    report: Path | None = None,
    cluster: str | None = None,
) -> None:
    """Run the dedup job over `inputs` and print (or write) its records; exit 1 if any failed."""
    from vq.cli.extras import parse_pairs
    from vq.pipelines.batch import run_job
    from vq.pipelines.dedup import DedupConfig

    resolve_backend(backend)
    if report is not None:  # fail before the batch, not after it
        from vq.report.page import require_report_extras

        require_report_extras()
    if coarse not in ("vote", "mean"):
        raise UsageError(f"--coarse must be vote or mean, got {coarse!r}")
    if cluster is not None:
        from vq.index.sharding import require_sharded

        require_sharded(libraries)
    extra_meta = parse_pairs(meta or [], "--meta")
    paths = expand_inputs(inputs, VIDEO_SUFFIXES)
    if not paths:
        raise UsageError("no videos found in the given inputs")
    config = DedupConfig(aligner=aligner, coarse=coarse, deadline=deadline)
    job = run_job(
        paths,
        libraries,
        backend=backend,
        ingest=ingest,
        query=query,
        config=config,
        meta=extra_meta,
        lock_timeout=lock_timeout,
        timeout=timeout or None,
        quality=quality,
        enhance=enhance,
        cluster=cluster,
    )
    records: list[dict[str, Any]] = []
    for record in track(job, total=len(paths), description="run"):
        data = record.to_json()
        records.append(data)
        if json_out:
            print_jsonl(data)
        else:
            _print_summary(data)
    if out is not None:
        atomic_write_text(out, "".join(json.dumps(r) + "\n" for r in records))
    if report is not None:
        from vq.report import write_report

        write_report(records, report)
        err_console.print(f"review page: {report}", style="dim")
    failed = sum(r["status"] != "ok" for r in records)
    if failed:
        err_console.print(f"{failed} of {len(paths)} input(s) failed")
        raise typer.Exit(1)


def _print_summary(record: dict[str, Any]) -> None:
    if record["status"] != "ok":
        err_console.print(f"error: {record['error']}")
        return
    t = record["timings"]
    head = f"{record['path']}: {len(record['matches'])} match(es), {t['total']:.2f} s"
    if record.get("mode") == "fallback":
        head += " (fallback: decoding passed --deadline; snapshots matched, not ingested)"
    quality = record.get("quality")
    if quality is not None:
        head += (
            f", quality {quality['score']:.2f}"
            if quality.get("status") == "ok"
            else f", quality {quality['status']}"
        )
    if record.get("enhanced"):
        head += f", enhanced -> {record['enhanced']}"
    console.print(head)
    for m in record["matches"]:
        segs = ", ".join(
            f"{s['query_start']:.0f}-{s['query_end']:.0f}s <- {s['ref_start']:.0f}-{s['ref_end']:.0f}s"
            + (" backwards" if s.get("reversed") else "")
            for s in m["segments"][:3]
        )
        found_by = " by sound" if m.get("evidence") == ["audio"] else ""
        if m.get("audio") and m["audio"]["speed"] != 1.0:
            found_by += f" at {m['audio']['speed']:.2f}x speed"
        if m.get("models"):  # a library with companions: which models' pictures found it
            found_by += f" ({', '.join(m['models'])})"
        console.print(f"  [{m['library']}] {m['ref_id']}  score {m['score']:.2f}{found_by}  {segs}")
