"""The enhancement task: L1-trained residual super-resolution, scored by PSNR-Y.

Evaluation runs on held-out folders (Set5, Set14; never the training folder) and reports
the model's PSNR beside Pillow-bicubic upscaling of the same LR images, so every card
carries its gain over the classical baseline measured in the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vq.errors import UsageError
from vq.eval.metrics.image import psnr_y, to_uint8
from vq.train.enhance.config import EnhanceConfig
from vq.train.enhance.input_pipeline import Pair, bicubic_upscale, load_pairs, random_crop_batch
from vq.train.models import create_model


class EnhanceTask:
    name = "enhance"
    model_name = "sr_residual"

    def __init__(self, config: EnhanceConfig):
        if not config.data:
            raise UsageError("vq train enhance needs --data (HR image folders)")
        self.scale, self.patch, self.seed = config.scale, config.patch, config.seed
        self.model_kwargs: dict[str, Any] = {"scale": config.scale, **config.model_kwargs}
        self.train_pairs = load_pairs(list(config.data), config.scale)
        self.eval_sets: dict[str, list[Pair]] = {
            Path(d).name: load_pairs([d], config.scale) for d in config.eval_data
        }
        self.data_facts = {
            "train": [str(d) for d in config.data],
            "train_images": len(self.train_pairs),
            "eval": {k: len(v) for k, v in self.eval_sets.items()},
        }

    def create_model(self, seed: int) -> nnx.Module:
        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        del rng  # deterministic model
        pred = model(batch["lr"])
        l1 = jnp.mean(jnp.abs(pred - batch["hr"]))
        mse = jnp.mean((jnp.clip(pred, 0, 1) - batch["hr"]) ** 2)
        return l1, {"psnr_rgb": -10.0 * jnp.log10(mse + 1e-10)}

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        return random_crop_batch(self.train_pairs, self.seed, step, rows, self.patch, self.scale)

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        """Mean PSNR-Y per held-out set, model vs bicubic (border = scale, as published)."""
        if not self.eval_sets:
            return {}
        graphdef, state = nnx.split(model)
        apply = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        results: dict[str, float] = {}
        for set_name, pairs in self.eval_sets.items():
            ours, base = [], []
            for pair in pairs:
                x = pair.lr[None].astype(np.float32) / 255.0
                pred = to_uint8(np.asarray(apply(state, x))[0])
                ours.append(psnr_y(pred, pair.hr, border=self.scale))
                base.append(psnr_y(bicubic_upscale(pair.lr, self.scale), pair.hr, border=self.scale))
            results[f"{set_name}/psnr_y"] = float(np.mean(ours))
            results[f"{set_name}/bicubic_psnr_y"] = float(np.mean(base))
            results[f"{set_name}/gain_db"] = float(np.mean(ours) - np.mean(base))
        return results
