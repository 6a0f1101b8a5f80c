"""`vq eval`: measured evaluations with their baselines run beside them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

from vq.cli import options
from vq.cli.output import err_console, print_table
from vq.errors import UsageError
from vq.fsutil import atomic_write_text

app = typer.Typer(help="Evaluations: each reports baselines measured in the same run.", no_args_is_help=True)


@app.command("pairs")
def pairs_cmd(
    data: list[Path] = typer.Option(..., "--data", help="Image folders, images, videos (frames at 1 fps)."),
    holdout: float = typer.Option(
        None, "--holdout", help="Use only the held-out share of --data (as training split it)."
    ),
    model: str = options.MODEL,
    backend: str = options.BACKEND,
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32 or int8."),
    baselines: str = typer.Option(
        "pdq,thumbnail,random", "--baselines", help="Comma list: pdq, thumbnail, random."
    ),
    negatives: int = typer.Option(6, "--negatives", help="Negative pairs per source (plus look-alikes)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the edits."),
    crop: bool = typer.Option(True, "--crop/--no-crop", help="Content-box crop before every method."),
    json_path: Path = typer.Option(None, "--json", help="Write the full report here."),
) -> None:
    """ROC-AUC, accuracy and TPR at 1 % FPR per edit family: model vs PDQ, thumbnail, random init."""
    from vq.pipelines.eval_pairs import (
        cosine,
        evaluate_pairs,
        make_pairs,
        pdq_descriptor,
        pdq_similarity,
        thumbnail_descriptor,
    )
    from vq.stages.embed import Embedder
    from vq.train.embed.input_pipeline import load_sources

    chosen = [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = set(chosen) - {"pdq", "thumbnail", "random"}
    if unknown:
        raise UsageError(f"unknown baseline(s) {sorted(unknown)}: choose pdq, thumbnail, random")
    split = "holdout" if holdout else "train"
    sources = load_sources(data, holdout or 0.0, split)
    pairs = make_pairs([(s.name, s.image) for s in sources], seed=seed, negatives_per_source=negatives)
    err_console.print(
        f"{len(sources)} sources, {int(pairs.label.sum())} positive and "
        f"{int((pairs.label == 0).sum())} negative pairs",
        style="dim",
    )

    embedder = Embedder(model, backend=backend, precision=precision, crop=False)
    methods = {embedder.artifact.name: (lambda ims: embedder.embed_frames_list(ims), cosine)}
    if "pdq" in chosen:
        methods["pdq"] = (pdq_descriptor, pdq_similarity)
    if "thumbnail" in chosen:
        methods["thumbnail"] = (thumbnail_descriptor, cosine)
    with tempfile.TemporaryDirectory() as tmp:
        if "random" in chosen:
            random_model = _random_init(embedder, Path(tmp))
            if random_model is not None:
                methods["random-init"] = (lambda ims: random_model.embed_frames_list(ims), cosine)
        report = evaluate_pairs(pairs, methods, preprocess=crop)

    names = list(methods)
    rows = []
    for family in ["all", "hard", *report[names[0]]["families"]]:
        row = {"family": family}
        for n in names:
            block = report[n][family] if family in ("all", "hard") else report[n]["families"][family]
            row[n] = block["tpr_at_1pct_fpr"]
        rows.append(row)
    print_table(rows, [("family", "TPR @ 1% FPR"), *[(n, n) for n in names]], title="pair evaluation")
    summary = [
        {
            "method": n,
            "roc_auc": report[n]["all"]["roc_auc"],
            "accuracy": report[n]["all"]["accuracy"],
            "tpr": report[n]["all"]["tpr_at_1pct_fpr"],
            "hard_tpr": report[n]["hard"]["tpr_at_1pct_fpr"],
        }
        for n in names
    ]
    print_table(
        summary,
        [
            ("method", "method"),
            ("roc_auc", "ROC-AUC"),
            ("accuracy", "accuracy"),
            ("tpr", "TPR@1%FPR"),
            ("hard_tpr", "hard TPR@1%FPR"),
        ],
        title="overall",
    )
    if json_path:
        atomic_write_text(
            json_path,
            json.dumps(
                {
                    "sources": len(sources),
                    "positives": int(pairs.label.sum()),
                    "negatives": int((pairs.label == 0).sum()),
                    "seed": seed,
                    "crop": crop,
                    "methods": report,
                },
                indent=2,
            )
            + "\n",
        )


def _random_init(embedder, tmp: Path):
    """The model's architecture with untrained weights (needs the train extra to build)."""
    from vq.stages.embed import Embedder

    spec = embedder.artifact.card.flax
    if not spec:
        err_console.print("random-init baseline skipped: the model card names no architecture", style="dim")
        return None
    try:
        from vq.export.artifact import export_artifact
        from vq.train.models import create_model
    except ImportError:
        err_console.print("random-init baseline skipped: needs the 'train' extra", style="dim")
        return None
    export_artifact(
        create_model(spec["model"], seed=0, **spec.get("kwargs", {})),
        model_name=spec["model"],
        model_kwargs=spec.get("kwargs", {}),
        out_dir=tmp / "random-init",
        name="random-init",
        task="embed",
    )
    return Embedder(str(tmp / "random-init"), backend="ort-cpu", crop=False)


@app.command("dedup")
def dedup_cmd(
    sources: list[Path] = typer.Option(..., "--sources", help="Source videos (folders or files)."),
    work: Path = typer.Option(..., "--work", help="Where the benchmark and its libraries are built."),
    model: str = options.MODEL,
    backend: str = options.BACKEND,
    fps: float = typer.Option(2.0, "--fps", help="Library sampling rate (frames per second)."),
    aligner: str = typer.Option("diagonal", "--aligner", help="diagonal (the seed's) or tn."),
    coarse: str = typer.Option("vote", "--coarse", help="vote or mean."),
    baselines: str = typer.Option("pdq", "--baselines", help="Comma list: pdq, or '' for none."),
    pdq_bits: int = typer.Option(
        31, "--pdq-bits", help="PDQ match distance in bits of 256 (31: PDQ's reference operating point)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the edits."),
    clip_seconds: float = typer.Option(6.0, "--clip-seconds", help="Length of the reference clips."),
    json_path: Path = typer.Option(None, "--json", help="Write the full report (with every record) here."),
) -> None:
    """Copy-detection benchmark: video P/R/F1, VSC segment µAP, VCSL F1; model vs PDQ."""
    from vq.match import ALIGNERS
    from vq.pipelines.dedup import DedupConfig
    from vq.pipelines.eval_dedup import build_benchmark, evaluate, summary
    from vq.pipelines.eval_pairs import PdqFrames
    from vq.stages.embed import Embedder

    chosen = [b.strip() for b in baselines.split(",") if b.strip()]
    if set(chosen) - {"pdq"}:
        raise UsageError(f"unknown baseline(s) {sorted(set(chosen) - {'pdq'})}: choose pdq")
    if coarse not in ("vote", "mean"):
        raise UsageError(f"--coarse must be vote or mean, not {coarse!r}")
    ALIGNERS.get(aligner)  # fails early on an unknown name
    if fps <= 0:
        raise UsageError("--fps must be positive")

    def warn(message: str) -> None:
        err_console.print(message, style="yellow")

    bench = build_benchmark(sources, work, seed=seed, clip_seconds=clip_seconds, warn=warn, progress=_track)
    info = summary(bench)
    err_console.print(
        f"{info['references']} references ({info['reference_seconds']} s), {info['queries']} queries "
        f"{info['kinds']}, {info['look_alikes']} look-alikes",
        style="dim",
    )
    embedder = Embedder(model, backend=backend)
    methods = {embedder.name: embedder}
    if "pdq" in chosen:
        methods["pdq"] = PdqFrames(bits=pdq_bits)
    config = DedupConfig(coarse=coarse, aligner=aligner)
    report = evaluate(bench, methods, work, fps=fps, config=config, progress=_track)

    rows = [
        {
            "method": name,
            "precision": r["video"]["precision"],
            "recall": r["video"]["recall"],
            "f1": r["video"]["f1"],
            "uap": r["segment_uap"],
            "vcsl_f1": r["vcsl"]["f1"],
            "s_per_query": r["seconds_per_query"],
        }
        for name, r in report.items()
    ]
    print_table(
        rows,
        [
            ("method", "method"),
            ("precision", "video P"),
            ("recall", "video R"),
            ("f1", "video F1"),
            ("uap", "segment µAP"),
            ("vcsl_f1", "VCSL F1"),
            ("s_per_query", "s/query (p50)"),
        ],
        title="copy detection",
    )
    kind_rows = [
        {
            "kind": kind,
            **{
                name: f"{r['kinds'][kind]['found']}/{r['kinds'][kind]['queries']}"
                for name, r in report.items()
            },
        }
        if kind not in ("non_copy", "look_alike")
        else {
            "kind": f"{kind} (false alarms)",
            **{
                name: f"{r['kinds'][kind]['flagged']}/{r['kinds'][kind]['queries']}"
                for name, r in report.items()
            },
        }
        for kind in next(iter(report.values()))["kinds"]
    ]
    print_table(kind_rows, [("kind", "query kind"), *[(n, n) for n in report]], title="per kind")
    if json_path:
        payload = {
            "benchmark": info,
            "params": bench.params,
            "fps": fps,
            "aligner": aligner,
            "coarse": coarse,
            "methods": report,
        }
        atomic_write_text(json_path, json.dumps(payload, indent=1, default=str) + "\n")


def _track(items, total, description):
    from vq.progress import track

    return track(items, total=total, description=description)
