"""Test-only models, tasks and media. Imported by tests and by trainer subprocesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def run_json(capsys, args: list[str]) -> tuple[int, list[dict]]:
    """Run the CLI in this process: its exit code and the JSON records it printed."""
    import json

    from vq.cli.app import main

    code = main(args)
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def smooth_images(n: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """uint8 RGB images with natural-ish statistics: upsampled noise plus edges."""
    rng = np.random.default_rng(seed)
    h, w = size
    images = []
    for _ in range(n):
        coarse = rng.random((max(2, h // 8), max(2, w // 8), 3)) * 255
        smooth = Image.fromarray(coarse.astype(np.uint8)).resize((w, h), Image.BICUBIC)
        img = np.asarray(smooth, dtype=np.float64)
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        img[y0 : y0 + h // 3, x0 : x0 + w // 3] = rng.random(3) * 255  # a flat block with sharp edges
        img += rng.normal(0, 4, img.shape)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def write_images(folder: Path, images: list[np.ndarray], prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = folder / f"{prefix}_{i:03d}.png"
        Image.fromarray(img).save(path)
        paths.append(path)
    return paths


# -- a small conv + attention model (exported inside tests) -------------------------------


def conv_attn_def():
    from flax import nnx

    from vq.models import TensorSpec
    from vq.train.models import ModelDef, ModelIO

    class ConvAttnNet(nnx.Module):
        """Conv-BN-ReLU-maxpool, then self-attention over the spatial tokens, then a head."""

        def __init__(self, *, dim: int = 16, out_dim: int = 8, rngs: nnx.Rngs):
            self.conv = nnx.Conv(3, dim, (3, 3), strides=2, rngs=rngs)
            self.bn = nnx.BatchNorm(dim, rngs=rngs)
            self.attn = nnx.MultiHeadAttention(num_heads=2, in_features=dim, decode=False, rngs=rngs)
            self.norm = nnx.LayerNorm(dim, rngs=rngs)
            self.head = nnx.Linear(dim, out_dim, rngs=rngs)

        def __call__(self, x):
            y = nnx.relu(self.bn(self.conv(x)))
            y = nnx.max_pool(y, window_shape=(2, 2), strides=(2, 2))
            b, h, w, c = y.shape
            tokens = y.reshape(b, h * w, c)
            tokens = self.norm(tokens + self.attn(tokens))
            return self.head(nnx.gelu(tokens.mean(axis=1)))

    def io(dim: int, out_dim: int) -> ModelIO:
        return ModelIO(
            inputs=[TensorSpec("image", "float32", ("B", 32, 32, 3))],
            outputs=[TensorSpec("logits", "float32", ("B", out_dim))],
            preprocessing={"size": [32, 32], "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.25] * 3},
        )

    return ModelDef(
        build=lambda *, rngs, **kw: ConvAttnNet(rngs=rngs, **kw),
        io=io,
        defaults={"dim": 16, "out_dim": 8},
        summary="test conv+attention net",
    )


# -- a tiny synthetic task for trainer tests ---------------------------------------------


class RegressionTask:
    """Predict per-image mean colour from a small conv+BN net (BatchNorm makes the
    1-vs-8-device comparison meaningful: batch statistics must be global)."""

    name = "regression"
    model_name = "_resnet_tiny"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.model_kwargs: dict[str, Any] = {"embed_dim": 3, "image_size": 16}
        self.data_facts: dict[str, Any] = {"synthetic": True}

    def create_model(self, seed: int):
        from vq.train.models import create_model

        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def loss(self, model, batch, rng):
        import jax.numpy as jnp

        pred = model.features(batch["x"])[:, :3]
        err = jnp.mean((pred - batch["y"]) ** 2)
        return err, {"mae": jnp.mean(jnp.abs(pred - batch["y"]))}

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        xs = [np.random.default_rng((self.seed, step, r)).random((16, 16, 3), dtype=np.float32) for r in rows]
        x = np.stack(xs)
        return {"x": x, "y": x.mean(axis=(1, 2))}

    def evaluate(self, model) -> dict[str, float]:
        batch = self.batch(10_000, range(8))
        pred = np.asarray(model.features(batch["x"]))[:, :3]
        return {"mse": float(np.mean((pred - batch["y"]) ** 2))}


# -- workers for the batch watchdog (spawned processes import them from here) --------------


class SlowOrCrashingWorker:
    """Doubles numbers; sleeps forever on "sleep", dies on "crash" (tests/test_watchdog.py)."""

    def __init__(self, factor: int):
        self.factor = factor

    def __call__(self, item):
        import os
        import time

        if item == "sleep":
            time.sleep(3600)
        if item == "crash":
            os._exit(3)
        if item == "raise":
            raise ValueError("cannot double this\nsecond line")
        return (os.getpid(), item * self.factor)


def refusing_worker(reason: str):
    from vq.errors import UsageError

    raise UsageError(reason)
