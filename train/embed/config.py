"""Default configuration of the copy-detection embedding task (MoCo).

The shipped `vq-embed` was trained with (see its card for the exact command)::

    vq train embed --data ../shared/data/images/bsd100 --data ../shared/data/images/set14 \\
        --data ../shared/data/videos --out runs/embed
"""

from __future__ import annotations

from vq.train.trainer import TrainConfig


def get_config(smoke: bool = False) -> tuple[TrainConfig, dict]:
    train = TrainConfig(
        steps=2500,  # ~40 min on 2 CPU cores
        batch_size=32,  # pairs per step; the queue supplies most negatives
        learning_rate=2e-3,  # AdamW, warmup + cosine
        warmup_steps=100,
        weight_decay=1e-4,
        log_every=25,
        eval_every=500,
        checkpoint_every=250,
    )
    task = {
        "encoder": "resnet18",
        # Half-width ResNet-18 at 128 px: ~2.9 M parameters, an 11 MB fp32 graph, and
        # fast enough for the 2-core CPU target (>= 300 frames/s int8 at batch 32).
        "encoder_kwargs": {"width_mult": 0.5, "image_size": 128, "embed_dim": 256},
        "queue_size": 4096,
        "momentum": 0.99,
        "temperature": 0.1,
        "holdout": 0.2,
    }
    if smoke:
        train.steps, train.batch_size, train.log_every, train.checkpoint_every = 3, 4, 1, 3
        train.warmup_steps, train.eval_every = 1, 0
        task.update(encoder="_resnet_tiny", encoder_kwargs={"image_size": 32, "embed_dim": 16}, queue_size=16)
    return train, task
