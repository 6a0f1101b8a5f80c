"""Toy evaluator: scores vs truth on fresh synthetic clips (SROCC, PLCC, MAE)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vq.eval.base import Evaluator, Report, Table, Ui
from vq.eval.metrics.correlation import plcc, srocc


@dataclass
class ToyOptions:
    model: str = field(metadata={"help": "Artifact folder.", "required": True})
    clips: int = field(default=24, metadata={"help": "Clips to score."})


def run(opts: ToyOptions, ui: Ui) -> Report:
    from vq.stages.base import open_stage

    with open_stage(opts.model, backend="ort-cpu") as stage:
        frames = int(stage.inputs["clip"].shape[1])
        rng = np.random.default_rng(5)
        clips = (
            rng.random((opts.clips, frames, 16, 16, 3)) * rng.random((opts.clips, 1, 1, 1, 1)) * 255
        ).astype(np.uint8)
        gains = rng.uniform(0.5, 2.0, opts.clips).astype(np.float32)
        truth = gains * clips.astype(np.float32).mean(axis=(1, 2, 3, 4)) / 255.0
        pred = stage.score(clips, gains)
    row = {"srocc": srocc(pred, truth), "plcc": plcc(pred, truth), "mae": float(np.abs(pred - truth).mean())}
    return Report([Table("toy", [("srocc", "SROCC"), ("plcc", "PLCC"), ("mae", "MAE")], [row])], row)


EVALUATOR = Evaluator(summary="toy scores vs truth", options=ToyOptions, run=run)
