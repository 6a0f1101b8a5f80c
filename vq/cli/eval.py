"""`vq eval`: measured evaluations with their baselines run beside them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

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
    model: str = typer.Option(None, "--model", "-m", help="Embedding model (default: the shipped one)."),
    backend: str = typer.Option("auto", "--backend", "-b", help="Backend for the model."),
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
