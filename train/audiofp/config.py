"""Configuration of the learned audio fingerprint task.

The shipped `vq-audiofp` was trained with (its card has the exact command and metrics)::

    python scripts/gather_audio.py --out runs/audio
    vq train audiofp --data runs/audio --out runs/audiofp

``vq train audiofp --smoke --data DIR --out DIR`` is the seconds-long variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vq.train.config import TrainConfig


@dataclass
class AudioFpConfig(TrainConfig):
    data: list[str] = field(
        default_factory=list,
        metadata={"help": "Recordings: audio files or videos with sound, or folders of them (repeatable)."},
    )
    holdout: float = field(
        default=0.25,
        metadata={"help": "Share of recordings kept out for evaluation (by a hash of the name)."},
    )
    max_seconds: float = field(default=60.0, metadata={"help": "Longest stretch of a recording used."})
    versions: int = field(
        default=12, metadata={"help": "Edited versions of each training recording (every family in turn)."}
    )
    temperature: float = field(default=0.1, metadata={"help": "InfoNCE temperature."})
    width: int = field(default=32, metadata={"help": "Channels of the first convolution."})
    dim: int = field(default=128, metadata={"help": "Vector size."})
    eval_queries: int = field(default=8, metadata={"help": "Edited 8 s queries per held-out recording."})


def get_config(smoke: bool = False) -> AudioFpConfig:
    config = AudioFpConfig(
        steps=3000,
        batch_size=128,
        learning_rate=2e-3,
        warmup_steps=100,
        weight_decay=1e-4,
        log_every=50,
        eval_every=1000,
        checkpoint_every=500,
    )
    if smoke:
        config.steps, config.batch_size, config.versions, config.width, config.dim = 3, 8, 2, 8, 16
        config.max_seconds, config.eval_queries = 10.0, 2
        config.log_every, config.checkpoint_every, config.warmup_steps, config.eval_every = 1, 3, 1, 0
    return config
