"""Super-resolution on held-out image sets: PSNR-Y of an enhancement model vs bicubic.

The protocol of the SR literature (`vq.eval.metrics.image.psnr_y`: BT.601 luma, `scale`
pixels cropped at the border) on HR folders with MATLAB-bicubic LR twins
(``<dir>_lr_x<scale>``), so figures compare with published tables (bicubic x2 on Set5:
33.66 dB). The model runs through its runtime stage on any backend, tiles and all, and
Pillow bicubic upscaling of the same LR images is measured beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vq.eval.base import Evaluator, Report, Table, Ui, backend_option, model_option, precision_option
from vq.eval.metrics.image import psnr_y


@dataclass
class SrOptions:
    data: list[Path] = field(
        metadata={"help": "HR image folder(s) with <dir>_lr_x<scale> twins (e.g. Set5).", "required": True}
    )
    model: str | None = model_option()
    backend: str = backend_option()
    precision: str = precision_option()


def run(opts: SrOptions, ui: Ui) -> Report:
    """Mean PSNR-Y per set: the model and bicubic on the same LR images."""
    from vq.media.sources import bicubic_upscale, load_pairs
    from vq.stages.enhance import Enhancer

    rows, per_image = [], []
    with Enhancer(opts.model, backend=opts.backend, precision=opts.precision) as enhancer:
        scale = enhancer.scale
        for folder in opts.data:
            pairs = load_pairs([folder], scale)
            ours, base = [], []
            for pair in ui.track(pairs, len(pairs), f"{folder.name}"):
                out = enhancer.enhance(pair.lr)[: pair.hr.shape[0], : pair.hr.shape[1]]
                ours.append(psnr_y(out, pair.hr, border=scale))
                base.append(psnr_y(bicubic_upscale(pair.lr, scale), pair.hr, border=scale))
                per_image.append(
                    {"set": folder.name, "image": pair.name, "psnr_y": ours[-1], "bicubic": base[-1]}
                )
            rows.append(
                {
                    "set": folder.name,
                    "images": len(pairs),
                    "psnr_y": float(np.mean(ours)),
                    "bicubic": float(np.mean(base)),
                    "gain_db": float(np.mean(ours) - np.mean(base)),
                }
            )
        described = enhancer.describe()
    return Report(
        tables=[
            Table(
                f"x{scale} super-resolution, PSNR-Y (dB)",
                [
                    ("set", "set"),
                    ("images", "images"),
                    ("psnr_y", described["model"]),
                    ("bicubic", "bicubic"),
                    ("gain_db", "gain"),
                ],
                rows,
            )
        ],
        data={"scale": scale, "model": described, "sets": rows, "images": per_image},
    )


EVALUATOR = Evaluator(
    summary="super-resolution PSNR-Y vs bicubic on held-out HR/LR image sets (Set5, Set14, B100)",
    options=SrOptions,
    run=run,
)
