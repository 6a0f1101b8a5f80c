"""Super-resolution on held-out image sets: enhancement models side by side with bicubic.

The protocol of the SR literature (`vq.eval.metrics.image`: BT.601 luma, `scale` pixels
cropped at the border) on HR folders with MATLAB-bicubic LR twins (``<dir>_lr_x<scale>``),
so figures compare with published tables (bicubic x2 on Set5: 33.66 dB). Every model
runs through its runtime stage on the chosen backend, tiles and all; Pillow bicubic of
the same LR images is measured beside them. Per model and set:

* PSNR-Y and SSIM-Y against the reference, and the gain over bicubic;
* **detail**: the output's high-frequency energy over the reference's (1 = as much fine
  texture as the truth; a regression model falls short, noise overshoots);
* seconds per output megapixel (this backend, this machine, this run).

A generative model is named with its sampler steps and noise temperature,
``MODEL@STEPS~TEMPERATURE`` (``runs/teacher@25``, ``runs/art/lpm-x2~0``; each optional);
`--holdout F` keeps only the images a model trained with holdout fraction F never saw
(the name-hash split of `vq.media.sources.held_out`), for folders that were also
training data (BSD100 for the LPM models).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vq.errors import UsageError
from vq.eval.base import Evaluator, Report, Table, Ui, backend_option, model_option, precision_option
from vq.eval.metrics.image import high_frequency_energy, psnr_y, ssim_y


@dataclass
class SrOptions:
    data: list[Path] = field(
        metadata={"help": "HR image folder(s) with <dir>_lr_x<scale> twins (e.g. Set5).", "required": True}
    )
    model: str | None = model_option()
    compare: list[str] = field(
        default_factory=list,
        metadata={
            "help": "More models to run beside it (MODEL, MODEL@STEPS, MODEL@STEPS~TEMPERATURE; repeatable)."
        },
    )
    holdout: float = field(
        default=0.0, metadata={"help": "Keep only images held out at this fraction (0: all)."}
    )
    backend: str = backend_option()
    precision: str = precision_option()


def parse_model_spec(spec: str | None) -> tuple[str | None, int | None, float | None]:
    """``"name@8~0.5"`` -> ("name", 8, 0.5): sampler steps after ``@``, noise temperature
    after ``~`` (each optional: the card's default)."""
    if spec is None:
        return None, None, None
    temperature = None
    head, sep, tail = spec.rpartition("~")
    # a '~' that is not followed by a number belongs to the name (a path)
    if sep and head and tail.replace(".", "", 1).isdigit():
        temperature, spec = float(tail), head
    name, sep, steps = spec.rpartition("@")
    if sep and steps.isdigit():
        if int(steps) < 1:
            raise UsageError(f"{spec}: sampler steps must be >= 1")
        return name, int(steps), temperature
    return spec, None, temperature


def training_overlap(training: dict, set_name: str, holdout: float) -> str:
    """Whether a model (its card's ``training`` record, earlier stages included) saw an
    evaluation folder: ``no``, ``yes``, or ``held-out part`` when it trained on the rest
    of the folder at the same name-hash split that this evaluation keeps."""
    verdicts = []
    for record in [training, *training.get("upstream", [])]:
        data = record.get("data") if isinstance(record.get("data"), dict) else {}
        train = data.get("train")
        folders = train.get("folders", []) if isinstance(train, dict) else train or []
        if set_name not in {Path(str(f)).name for f in folders}:
            continue
        share = float(data.get("holdout_fraction") or 0.0)
        verdicts.append("held-out part" if share and holdout and share == holdout else "yes")
    return "yes" if "yes" in verdicts else (verdicts[0] if verdicts else "no")


def _rows_for_model(spec, pairs_by_set, opts, ui, per_image, references):
    from vq.stages.enhance import Enhancer

    name, steps, temperature = parse_model_spec(spec)
    rows = []
    with Enhancer(
        name, backend=opts.backend, precision=opts.precision, steps=steps, temperature=temperature
    ) as enhancer:
        described = enhancer.describe()
        label = described["model"]
        if enhancer.generative:
            label += f"@{enhancer.steps}" + (
                f"~{enhancer.temperature:g}" if enhancer.temperature != 1 else ""
            )
        training = enhancer.artifact.card.training
        first = next(iter(pairs_by_set.values()))[0]
        enhancer.enhance(first.lr[:64, :64])  # warm-up: session start is not per-image time
        for set_name, pairs in pairs_by_set.items():
            psnrs, ssims, detail, seconds, pixels = [], [], [], 0.0, 0
            for pair in ui.track(pairs, len(pairs), f"{label} {set_name}"):
                t0 = time.perf_counter()
                out = enhancer.enhance(pair.lr)[: pair.hr.shape[0], : pair.hr.shape[1]]
                seconds += time.perf_counter() - t0
                pixels += out.shape[0] * out.shape[1]
                psnrs.append(psnr_y(out, pair.hr, border=enhancer.scale))
                ssims.append(ssim_y(out, pair.hr, border=enhancer.scale))
                detail.append(high_frequency_energy(out, enhancer.scale) / references[pair.name])
                per_image.append({"set": set_name, "image": pair.name, "model": label, "psnr_y": psnrs[-1]})
            rows.append(
                {
                    "set": set_name,
                    "model": label,
                    "images": len(pairs),
                    "psnr_y": float(np.mean(psnrs)),
                    "ssim_y": float(np.mean(ssims)),
                    "detail": float(np.mean(detail)),
                    "s_per_mp": seconds / (pixels / 1e6),
                    "trained_on": training_overlap(training, set_name, opts.holdout),
                }
            )
    return rows, described, enhancer.scale


def run(opts: SrOptions, ui: Ui) -> Report:
    """Per set: each model's PSNR-Y, SSIM-Y, detail ratio and speed, bicubic beside them."""
    from vq.media.sources import bicubic_upscale, held_out, load_pairs
    from vq.models import load_model

    first = load_model(parse_model_spec(opts.model)[0], task="enhance")
    scale = int(first.card.preprocessing.get("upscale", 2))
    pairs_by_set = {}
    for folder in opts.data:
        pairs = load_pairs([folder], scale)
        if opts.holdout:
            pairs = [p for p in pairs if held_out(p.name, opts.holdout)]
        if not pairs:
            raise UsageError(f"{folder}: no images (held out at {opts.holdout})")
        pairs_by_set[folder.name] = pairs
    references = {p.name: high_frequency_energy(p.hr, scale) for ps in pairs_by_set.values() for p in ps}

    bicubic_rows = []
    for set_name, pairs in pairs_by_set.items():
        outs = [bicubic_upscale(p.lr, scale) for p in pairs]
        bicubic_rows.append(
            {
                "set": set_name,
                "model": "bicubic",
                "images": len(pairs),
                "psnr_y": float(
                    np.mean([psnr_y(o, p.hr, border=scale) for o, p in zip(outs, pairs, strict=True)])
                ),
                "ssim_y": float(
                    np.mean([ssim_y(o, p.hr, border=scale) for o, p in zip(outs, pairs, strict=True)])
                ),
                "detail": float(
                    np.mean(
                        [
                            high_frequency_energy(o, scale) / references[p.name]
                            for o, p in zip(outs, pairs, strict=True)
                        ]
                    )
                ),
                "s_per_mp": None,
                "trained_on": "-",
            }
        )
    per_image: list[dict] = []
    rows, described = [], None
    for spec in [opts.model, *opts.compare]:
        model_rows, info, model_scale = _rows_for_model(spec, pairs_by_set, opts, ui, per_image, references)
        if model_scale != scale:
            raise UsageError(f"{spec}: a x{model_scale} model beside x{scale} ones")
        described = described or info
        rows.extend(model_rows)
    base = {r["set"]: r["psnr_y"] for r in bicubic_rows}
    for row in rows:
        row["gain_db"] = row["psnr_y"] - base[row["set"]]
    table_rows = sorted(bicubic_rows + rows, key=lambda r: list(pairs_by_set).index(r["set"]))
    sets = [r for r in rows if r["model"] == rows[0]["model"]]
    for row in sets:
        row["bicubic"] = base[row["set"]]
    return Report(
        tables=[
            Table(
                f"x{scale} super-resolution on {opts.backend} ({opts.precision})",
                [
                    ("set", "set"),
                    ("model", "model"),
                    ("images", "images"),
                    ("psnr_y", "PSNR-Y"),
                    ("gain_db", "gain"),
                    ("ssim_y", "SSIM-Y"),
                    ("detail", "detail"),
                    ("s_per_mp", "s/MP"),
                    ("trained_on", "trained on it"),
                ],
                table_rows,
            )
        ],
        data={"scale": scale, "model": described, "sets": sets, "rows": table_rows, "images": per_image},
    )


EVALUATOR = Evaluator(
    summary="super-resolution PSNR-Y / SSIM / detail / speed vs bicubic on held-out image sets",
    options=SrOptions,
    run=run,
)
