"""`vq ladder`: per-title encoding ladder from the no-reference quality score."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import console, err_console, print_json, print_table
from vq.errors import UsageError
from vq.ladder.client import CLIENT_MODES
from vq.models import graph_for
from vq.pipelines.ladder import CODECS, LadderOptions, run_ladder
from vq.progress import track
from vq.runtimes import resolve_backend
from vq.stages.quality import DEFAULT_VIEWS

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def ladder_cmd(
    video: Path = typer.Argument(..., help="The upload to encode."),
    codec: str = typer.Option("h264", "--codec", help=f"One of {', '.join(CODECS)}."),
    heights: list[int] = typer.Option(
        [], "--heights", help="Rung heights (repeatable; default: the source, 2/3 and 1/2 of it)."
    ),
    crf: list[int] = typer.Option([], "--crf", help="CRFs to try (repeatable; default: five per codec)."),
    max_drop: float | None = typer.Option(
        None,
        "--max-drop",
        help="Ship the cheapest rung within this many score points of the best rung "
        "(the default rule; default: the drop vq eval ladder tuned for the model, in its card).",
    ),
    match_crf: int | None = typer.Option(
        None,
        "--match-crf",
        help="Count --max-drop (default 0 here) from the full-height rung at this CRF instead of "
        "the best rung: a fixed ladder's quality at fewer bits (the CRF joins the grid at every height).",
    ),
    target_score: float | None = typer.Option(
        None, "--target-score", help="Ship the cheapest rung scoring at least this (1-5)."
    ),
    max_kbps: float | None = typer.Option(None, "--max-kbps", help="Ship the best rung within this bitrate."),
    kbps_per_point: float | None = typer.Option(
        None,
        "--kbps-per-point",
        help="Ship the hull rung where one more score point would cost more than this many kbps: "
        "one price for a whole catalogue (the dynamic optimizer's Lagrangian form).",
    ),
    client_post: list[str] = typer.Option(
        [],
        "--client-post",
        help=f"Simulate the client's post-processing on cheaper rungs: {', '.join(CLIENT_MODES)} "
        "(repeatable).",
    ),
    client_margin: float | None = typer.Option(
        None,
        "--client-margin",
        help="Score a post-processed rung must beat the chosen one by to replace it "
        "(default: the margin vq eval ladder tuned for the model, in its card).",
    ),
    client_model: str | None = typer.Option(
        None, "--client-model", help="The client's SR model (vq-enhance-x2)."
    ),
    max_seconds: float = typer.Option(10.0, "--max-seconds", help="Seconds of the video the search encodes."),
    segment: float = typer.Option(5.0, "--segment", help="Seconds of video per scored window."),
    jobs: int = typer.Option(0, "--jobs", help="Rungs encoded at once (0: one per core)."),
    views: int = typer.Option(
        DEFAULT_VIEWS, "--views", help="Fragment placements the quality model averages per window."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Re-encode the whole video at the shipped rung (final preset) here."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Write the rate-quality plot (.png, .svg, .pdf)."),
    model: str = options.MODEL,
    backend: str = options.BACKEND,
    precision: str = options.PRECISION,
    json_out: bool = typer.Option(False, "--json", help="The whole decision as one JSON object on stdout."),
) -> None:
    """Encode VIDEO at (height x CRF) rungs, score each as the viewer sees it with the
    quality model (no reference needed), and pick the rung to ship from the convex hull;
    with --client-post, ship a cheaper rung where the phone's post-processing makes up
    the difference."""
    resolve_backend(backend)
    graph_for(precision, "cpu")
    if not video.is_file():
        raise UsageError(f"{video}: no such file")
    if plot is not None and plot.suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(f"--plot must end in {', '.join(PLOT_SUFFIXES)}")
    opts = LadderOptions(
        codec=codec,
        heights=list(heights),
        crfs=list(crf),
        target_score=target_score,
        max_kbps=max_kbps,
        max_drop=max_drop,
        match_crf=match_crf,
        kbps_per_point=kbps_per_point,
        client_post=list(client_post),
        client_margin=client_margin,
        client_model=client_model,
        max_seconds=max_seconds,
        segment=segment,
        jobs=jobs,
        views=views,
        model=model,
        backend=backend,
        precision=precision,
    ).checked()
    record = run_ladder(video, opts, out=out, track=lambda it, n, d: track(it, total=n, description=d))
    if plot is not None:
        from vq.ladder.plot import plot_ladder

        record["plot"] = str(plot_ladder(record, plot))
    if json_out:
        print_json(record)
        return
    print_table(
        [{**r, "hull": "yes" if r["on_hull"] else ""} for r in record["rungs"]],
        [
            ("height", "height"),
            ("crf", "crf"),
            ("kbps", "kbps"),
            ("score", "score (1-5)"),
            ("hull", "on hull"),
        ],
        title=f"{video.name}: {codec}, first {record['searched_seconds']:g} s",
    )
    chosen = record["chosen"]
    defaults = record["defaults"]
    if defaults:  # what the user left out, filled in from the model's card
        filled = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in defaults.items() if k != "from")
        console.print(f"{filled} ({defaults['from']})")
    console.print(
        f"chosen: {chosen['height']}p crf {chosen['crf']}, {chosen['kbps']:g} kbps, "
        f"score {chosen['score']:.3f} ({chosen['why']})"
    )
    decision = (record.get("client") or {}).get("decision")
    if decision:
        shipped = record["shipped"]
        console.print(
            f"shipped: {shipped['height']}p crf {shipped['crf']} + client {decision['post']} "
            f"(score {decision['post_score']:.3f}), saves {decision['saved_kbps']:g} kbps "
            f"({100 * decision['saved_fraction']:.1f} %)"
        )
    elif "client" in record:
        console.print("client post-processing: no cheaper rung beats the chosen one")
    if "output" in record:
        o = record["output"]
        console.print(f"wrote {o['path']}: {o['size'][0]}x{o['size'][1]}, {o['kbps']} kbps ({o['preset']})")
    if plot is not None:
        err_console.print(f"plot: {record['plot']}")
