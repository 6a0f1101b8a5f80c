"""Configuration of the enhancement task (x2 super-resolution, L1 regression baseline).

The shipped `vq-enhance-x2` was trained with (see its card for the exact command)::

    vq train enhance --data ../shared/data/images/bsd100 \\
        --eval-data ../shared/data/images/set5 --eval-data ../shared/data/images/set14 \\
        --out runs/enhance-x2

``vq train enhance --smoke --data DIR --out DIR`` is the seconds-long variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vq.train.config import TrainConfig


@dataclass
class EnhanceConfig(TrainConfig):
    data: list[str] = field(
        default_factory=list,
        metadata={"help": "HR image folder(s); LR twins in <dir>_lr_x<scale> (repeatable)."},
    )
    eval_data: list[str] = field(
        default_factory=list, metadata={"help": "Held-out HR folder(s) scored by PSNR-Y (e.g. Set5)."}
    )
    scale: int = field(default=2, metadata={"help": "Upscaling factor (power of two)."})
    patch: int = field(default=48, metadata={"help": "LR training patch side, pixels."})
    model_kwargs: dict = field(
        default_factory=lambda: {"channels": 32, "blocks": 4},
        metadata={"help": "sr_residual options (--set model_kwargs.blocks=8)."},
    )


def get_config(smoke: bool = False) -> EnhanceConfig:
    config = EnhanceConfig(
        steps=5000,  # ~30 min on 2 CPU cores (3 steps/s)
        batch_size=16,
        learning_rate=1e-3,  # Adam on L1, as EDSR; cosine-decayed to 1 %
        warmup_steps=100,
        weight_decay=0.0,  # tiny model, little data: no decay on the conv weights
        log_every=50,
        checkpoint_every=500,
    )
    if smoke:
        config.steps, config.batch_size, config.log_every, config.checkpoint_every = 4, 4, 2, 2
        config.warmup_steps = 1
        config.patch, config.model_kwargs = 16, {"channels": 8, "blocks": 1}
    return config
