"""Configuration of quality-aware pretraining (QPT).

Run on the pristine clips of a built quality set (``vq train kvq`` builds it), then
fine-tune KVQ from the result::

    vq train qpt --set-dir runs/quality-set --out runs/qpt
    vq train kvq --set-dir runs/quality-set --pretrained runs/qpt --out runs/kvq-qpt

``--smoke`` is the seconds-long variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vq.train.config import TrainConfig
from vq.train.kvq.config import SMOKE_MODEL


@dataclass
class QptConfig(TrainConfig):
    set_dir: str = field(
        default="runs/quality-set", metadata={"help": "A built quality set (its train-split pristine clips)."}
    )
    crop: int = field(default=256, metadata={"help": "Side of the crop each sample is degraded in, px."})
    temperature: float = field(default=0.2, metadata={"help": "InfoNCE temperature."})
    proj_dim: int = field(default=64, metadata={"help": "Projection size."})
    model_kwargs: dict = field(
        default_factory=dict, metadata={"help": "KVQ backbone options (must match the fine-tuning run's)."}
    )


def get_config(smoke: bool = False) -> QptConfig:
    config = QptConfig(
        steps=400,
        batch_size=16,  # 8 degradations x 2 contents
        learning_rate=1e-3,
        warmup_steps=50,
        weight_decay=0.05,
        log_every=25,
        checkpoint_every=200,
    )
    if smoke:
        config.steps, config.batch_size, config.log_every, config.checkpoint_every = 3, 4, 1, 2
        config.warmup_steps, config.crop = 1, 96
        config.model_kwargs = dict(SMOKE_MODEL)
    return config
