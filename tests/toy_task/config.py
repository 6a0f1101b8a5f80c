"""Toy task config. Run: ``vq train toy --out runs/toy`` (once registered)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vq.train.config import TrainConfig


@dataclass
class ToyConfig(TrainConfig):
    frames: int = field(default=4, metadata={"help": "Frames per clip."})
    hidden: int = field(default=16, metadata={"help": "Hidden width."})


def get_config(smoke: bool = False) -> ToyConfig:
    config = ToyConfig(
        steps=60, batch_size=8, learning_rate=1e-2, warmup_steps=5, log_every=10, checkpoint_every=30
    )
    if smoke:
        config.steps = 4
    return config
