"""Toy task: learn score = gain * mean brightness of the clip."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from toy_task.config import ToyConfig
from vq.train.models import create_model

MODEL = "toy_task.model:TOY"  # a family kept beside the task, not in vq.train.models


def clips(seed: int, rows: range, frames: int) -> dict[str, np.ndarray]:
    out_clips, gains = [], []
    for row in rows:
        rng = np.random.default_rng((seed, row))
        out_clips.append(rng.random((frames, 16, 16, 3), dtype=np.float32) * rng.random())
        gains.append(np.float32(rng.uniform(0.5, 2.0)))
    clip = np.stack(out_clips)
    gain = np.asarray(gains, np.float32)
    return {"clip": clip, "gain": gain, "target": gain * clip.mean(axis=(1, 2, 3, 4))}


class ToyTask:
    name = "toy"
    model_name = MODEL

    def __init__(self, config: ToyConfig):
        self.config = config
        self.model_kwargs = {"frames": config.frames, "hidden": config.hidden}
        self.data_facts = {"synthetic": True}

    def create_model(self, seed: int):
        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def loss(self, model, batch, rng):
        err = jnp.mean((model(batch["clip"], batch["gain"]) - batch["target"]) ** 2)
        return err, {"mse": err}

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        return clips(self.config.seed * 100_003 + step, rows, self.config.frames)

    def evaluate(self, model) -> dict[str, float]:
        batch = clips(999_999, range(32), self.config.frames)
        pred = np.asarray(model(batch["clip"], batch["gain"]))
        return {"mse": float(np.mean((pred - batch["target"]) ** 2))}
