"""Configuration of the three LPM stages: `lpm-base`, `lpm-control`, `lpm-distill`.

The stages run in order (an exported model's card holds the exact commands and figures)::

    vq train lpm-base    --data ../shared/data/images/bsd100 --data ../shared/data/images/photos \\
        --anchor vq-enhance-x2 --out runs/lpm-base
    vq train lpm-control --data ... --base runs/lpm-base --eval-data ../shared/data/images/set5 \\
        --out runs/lpm-control
    vq train lpm-distill --data ... --teacher runs/lpm-control --eval-data ... --out runs/lpm-distill
    vq export onnx runs/lpm-distill --out runs/art/lpm-x2 -p fp16 -p int8 -p fp8 --calib DIR

A hash of each image's name holds `holdout` of the data folders out of every stage (the
held-out BSD100 images of the evaluation table); Set5 and Set14 are never read by
training. ``--smoke`` is the seconds-long variant of each stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vq.train.config import TrainConfig

SMOKE_MODEL = {"tile": 8, "patch": 4, "dim": 16, "depth": 2, "heads": 2, "control_blocks": 1}


@dataclass
class LpmConfig(TrainConfig):
    data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "High-quality image folder(s); LR twins in <dir>_lr_x<scale> are used (repeatable)."
        },
    )
    eval_data: list[str] = field(
        default_factory=list, metadata={"help": "Held-out HR folder(s) scored by PSNR-Y at the end (Set5)."}
    )
    holdout: float = field(default=0.2, metadata={"help": "Share of data images held out (by name hash)."})
    degraded: int = field(
        default=2,
        metadata={"help": "Degraded LR versions per image (blur, noise, H.264/HEVC; vq.synth.pairs)."},
    )
    clean_share: float = field(
        default=0.6, metadata={"help": "Share of training crops whose LR is the clean (bicubic) twin."}
    )
    anchor: str | None = field(
        default=None,
        metadata={
            "help": "lpm-base: a regression enhance model (zoo name, artifact or `vq train enhance` "
            "workdir) the flow refines; the later stages inherit it."
        },
    )
    base: str | None = field(default=None, metadata={"help": "lpm-control: the lpm-base workdir to steer."})
    teacher: str | None = field(
        default=None, metadata={"help": "lpm-distill: the lpm-control workdir to distil."}
    )
    teacher_steps: int = field(
        default=25, metadata={"help": "lpm-distill: the teacher's Euler grid (one ODE step per update)."}
    )
    eval_steps: list[int] = field(
        default_factory=lambda: [1, 8],
        metadata={"help": "Sampler steps scored at the end (PSNR-Y on eval data)."},
    )
    model_kwargs: dict = field(
        default_factory=dict,
        metadata={"help": "Model options (--set model_kwargs.depth=8, model_kwargs.scale=1)."},
    )


def _config(smoke: bool, steps: int, lr: float) -> LpmConfig:
    config = LpmConfig(
        steps=steps,
        batch_size=32,
        learning_rate=lr,
        warmup_steps=100,
        weight_decay=0.0,
        log_every=25,
        checkpoint_every=200,
    )
    if smoke:
        config.steps, config.batch_size, config.log_every, config.checkpoint_every = 3, 4, 1, 2
        config.warmup_steps, config.degraded, config.eval_steps = 1, 1, [1, 2]
        config.model_kwargs = dict(SMOKE_MODEL)
    return config


def get_base_config(smoke: bool = False) -> LpmConfig:
    return _config(smoke, steps=1000, lr=5e-4)


def get_control_config(smoke: bool = False) -> LpmConfig:
    config = _config(smoke, steps=1200, lr=5e-4)
    if not smoke:
        config.eval_steps = [1, 4, 8, 25]  # 25: the teacher's own sampler
    return config


def get_distill_config(smoke: bool = False) -> LpmConfig:
    config = _config(smoke, steps=500, lr=1e-4)
    config.eval_steps = [1]
    return config
