"""Default configuration of the enhancement (x2 super-resolution) task.

The shipped `vq-enhance-x2` was trained with (see its card for the exact command)::

    vq train enhance --data ../shared/data/images/bsd100 \\
        --eval-data ../shared/data/images/set5 --eval-data ../shared/data/images/set14 \\
        --out runs/enhance-x2
"""

from __future__ import annotations

from vq.train.trainer import TrainConfig


def get_config(smoke: bool = False) -> tuple[TrainConfig, dict]:
    """(trainer settings, task settings). `smoke` shrinks everything to a seconds-long run."""
    train = TrainConfig(
        steps=5000,  # ~30 min on 2 CPU cores (3 steps/s)
        batch_size=16,
        learning_rate=1e-3,  # Adam on L1, as EDSR; cosine-decayed to 1 %
        warmup_steps=100,
        weight_decay=0.0,  # tiny model, little data: no decay on the conv weights
        log_every=50,
        checkpoint_every=500,
    )
    task = {"scale": 2, "patch": 48, "model_kwargs": {"channels": 32, "blocks": 4}}
    if smoke:
        train.steps, train.batch_size, train.log_every, train.checkpoint_every = 4, 4, 2, 2
        train.warmup_steps = 1
        task = {"scale": 2, "patch": 16, "model_kwargs": {"channels": 8, "blocks": 1}}
    return train, task
