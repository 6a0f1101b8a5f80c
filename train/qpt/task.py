"""QPT: quality-aware contrastive pretraining, as the quality seed describes it.

Positives are clips of *different* content under the *same* degradation; negatives are
the same content under other degradations, and other content. A batch draws D
degradations (`vq.synth.degrade.random_stage`, one kind each at a random severity) and D
pristine clips of the quality set's train split; sample 2i is content i under
degradation i and sample 2i+1 is content i+1 under degradation i, so each content appears
under two degradations and each degradation on two contents. Each sample is a random
``crop x crop`` window of a random 16-frame stretch, degraded at native resolution, then
cut into fragments (random positions). InfoNCE over the 2D embeddings: the backbone
learns what a degradation looks like, whatever the picture.

Evaluation: top-1 retrieval of the positive among the batch on held-out pristine clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vq.errors import UsageError
from vq.preprocess.fragments import fragments
from vq.preprocess.normalize import to_model_input
from vq.synth.degrade import random_stage
from vq.synth.quality_data import load_quality_set
from vq.train.models import create_model, model_def, model_io
from vq.train.qpt.config import QptConfig


class QptTask:
    name = "qpt"
    model_name = "qpt"

    def __init__(self, config: QptConfig):
        self.seed, self.crop, self.temperature = config.seed, config.crop, config.temperature
        self.batch_size = config.batch_size
        if config.batch_size % 2:
            raise UsageError("batch_size must be even (pairs of contents per degradation)")
        self.model_kwargs: dict[str, Any] = {
            "backbone_kwargs": dict(config.model_kwargs),
            "proj_dim": config.proj_dim,
        }
        kvq = model_def("kvq").kwargs(**config.model_kwargs)
        prep = model_io("kvq", **config.model_kwargs).preprocessing
        self.frames, self.preprocessing = kvq["frames"], prep
        self.grid, self.patch = prep["fragments"]["grid"], prep["fragments"]["patch"]
        self.set_dir = Path(config.set_dir)
        rows = load_quality_set(self.set_dir)
        self.train = [r for r in rows if r.level == 0 and r.split == "train"]
        self.holdout = [r for r in rows if r.level == 0 and r.split == "holdout"]
        if len(self.train) < 2:
            raise UsageError(f"{self.set_dir}: QPT needs at least two pristine train clips")
        self.data_facts = {
            "set_dir": str(self.set_dir),
            "train_contents": len(self.train),
            "holdout_contents": len(self.holdout),
        }

    def sample(self, row, degradation, rng: np.random.Generator) -> np.ndarray:
        clip = np.load(self.set_dir / row.file, mmap_mode="r")
        t, h, w = clip.shape[:3]
        side = min(self.crop, h, w) // 2 * 2
        s = int(rng.integers(0, max(1, t - self.frames + 1)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        window = np.ascontiguousarray(clip[s : s + self.frames, y : y + side, x : x + side])
        return fragments(degradation.apply(window, row.fps), self.grid, self.patch, rng)

    def pairs(self, rows: list, step: int, count: int, indices) -> np.ndarray:
        """Samples `indices` of a batch of `count` (see the module docstring)."""
        rng = np.random.default_rng([self.seed, step])
        d = count // 2
        contents = rng.choice(len(rows), size=d, replace=len(rows) < d)
        degradations = [random_stage(rng, severity=float(rng.uniform(0.3, 1.0))) for _ in range(d)]
        out = []
        for i in indices:
            k, second = divmod(i, 2)
            row = rows[int(contents[(k + second) % d])]
            out.append(self.sample(row, degradations[k], np.random.default_rng([self.seed, step, i])))
        return to_model_input(np.stack(out), self.preprocessing)

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        return {"clip": self.pairs(self.train, step, self.batch_size, list(rows))}

    def create_model(self, seed: int) -> nnx.Module:
        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        del rng
        z = centred_unit(model(batch["clip"]))
        n = z.shape[0]
        logits = z @ z.T / self.temperature - 1e9 * jnp.eye(n)
        partner = jnp.arange(n) ^ 1  # 0<->1, 2<->3, ...
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, partner).mean()
        return loss, {"top1": jnp.mean(jnp.argmax(logits, axis=1) == partner)}

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        if len(self.holdout) < 2:
            return {}
        graphdef, state = nnx.split(model)
        apply = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        hits = total = 0
        for step in range(4):  # four fixed held-out batches of 8 degradations
            z = np.asarray(centred_unit(apply(state, self.pairs(self.holdout, 10_000 + step, 16, range(16)))))
            sim = z @ z.T - 1e9 * np.eye(len(z))
            hits += int(np.sum(np.argmax(sim, axis=1) == (np.arange(len(z)) ^ 1)))
            total += len(z)
        return {"holdout/top1": hits / total}


def centred_unit(z: jax.Array) -> jax.Array:
    """Projections minus their batch mean, on the unit sphere. Without the centring the
    pooled features of a fresh transformer are nearly one constant vector: every cosine is
    ~1, InfoNCE sits at log(n - 1) with vanishing gradients and never leaves (measured:
    400 steps at chance)."""
    z = z - z.mean(axis=0, keepdims=True)
    return z / (jnp.linalg.norm(z, axis=-1, keepdims=True) + 1e-6)
