"""The embedding task: MoCo on edited views, optional distillation from a teacher model.

Loss: InfoNCE over (positive key, queued negatives) at temperature T, as MoCo; with a
teacher artifact (`--teacher`, e.g. a larger embedder exported by vq) the student also
matches the teacher's pairwise similarities within the batch (relational distillation,
dimension-free), the seed's "ViT teacher distils ResNet-50" step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vq.errors import UsageError
from vq.media.sources import load_sources
from vq.preprocess.normalize import card_colours
from vq.train.embed.config import EmbedConfig
from vq.train.embed.input_pipeline import make_view, pair_batch, siblings_of
from vq.train.models import create_model, model_io


class EmbedTask:
    name = "embed"
    model_name = "moco"  # its family trains the query encoder only and exports it

    def __init__(self, config: EmbedConfig):
        if not config.data:
            raise UsageError("vq train embed needs --data (image folders, videos)")
        data, holdout, teacher = config.data, config.holdout, config.teacher
        self.encoder, self.encoder_kwargs = config.encoder, dict(config.encoder_kwargs)
        self.model_kwargs: dict[str, Any] = {
            "encoder": self.encoder,
            "encoder_kwargs": self.encoder_kwargs,
            "queue_size": config.queue_size,
            "momentum": config.momentum,
            "temperature": config.temperature,
        }
        io = model_io(self.encoder, **self.encoder_kwargs)
        self.size = int(io.inputs[0].shape[1])
        prep = io.preprocessing
        self.mean = np.asarray(prep["mean"], np.float32)
        self.std = np.asarray(prep["std"], np.float32)
        self.preprocessing = prep  # its colour step is done to every view, as the runtime does
        self.seed = config.seed
        self.train_sources = load_sources(data, holdout, "train")
        self.siblings = siblings_of(self.train_sources)
        self.lookalike_share, self.grade_share = config.lookalike_share, config.grade_share
        self.scene_share = config.scene_share
        self.batch_weight = config.batch_weight
        self.eval_sources = load_sources(data, holdout, "holdout")
        self.teacher = None
        self.distill_weight = config.distill_weight
        if teacher:
            from vq.models import load_model
            from vq.runtimes import open_session

            self.teacher = open_session(load_model(teacher, task="embed"), backend="ort-cpu")
        self.data_facts = {
            "sources": [str(d) for d in data],
            "train_frames": len(self.train_sources),
            "holdout_frames": len(self.eval_sources),
            "holdout_fraction": holdout,
            "holdout": sorted(s.name for s in self.eval_sources),
            "teacher": teacher,
        }

    def create_model(self, seed: int) -> nnx.Module:
        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def _normalise(self, images: jax.Array) -> jax.Array:
        return (images.astype(jnp.float32) / 255.0 - self.mean) / self.std

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        del rng
        logits, q, k = model.contrastive_logits(
            self._normalise(batch["view_a"]), self._normalise(batch["view_b"])
        )
        labels = jnp.zeros(logits.shape[0], jnp.int32)
        nce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        model.enqueue(k)
        metrics = {
            "nce": nce,
            "pos_sim": jnp.mean(logits[:, 0]) * model.temperature,
            "top1": jnp.mean(jnp.argmax(logits, axis=1) == 0),
        }
        loss = nce
        if self.batch_weight:
            # In-batch InfoNCE: every other row's key is a negative, look-alike rows (another
            # moment of the same video, placed there by the input pipeline) included.
            batch_logits = (q @ k.T) / model.temperature
            rows = jnp.arange(q.shape[0])
            in_batch = optax.softmax_cross_entropy_with_integer_labels(batch_logits, rows).mean()
            loss = loss + self.batch_weight * in_batch
            metrics["in_batch"] = in_batch
        if "teacher_a" in batch:
            t = batch["teacher_a"]
            t = t / jnp.linalg.norm(t, axis=1, keepdims=True)
            distill = jnp.mean((q @ q.T - t @ t.T) ** 2)
            loss = loss + self.distill_weight * distill
            metrics["distill"] = distill
        return loss, metrics

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        out = pair_batch(
            self.train_sources,
            self.seed,
            step,
            rows,
            self.size,
            siblings=self.siblings,
            lookalike_share=self.lookalike_share,
            grade_share=self.grade_share,
            scene_share=self.scene_share,
        )
        if self.teacher is not None:
            spec = self.teacher.artifact.card.inputs[0]
            from vq.preprocess.normalize import to_model_input
            from vq.preprocess.resize import resize

            views = resize(out["view_a"], (spec.shape[2], spec.shape[1]))
            feeds = to_model_input(views, self.teacher.artifact.card.preprocessing)
            out["teacher_a"] = self.teacher.run({spec.name: feeds})[self.teacher.output_names[0]]
        for key in ("view_a", "view_b"):  # after the teacher, which sees them as its own card says
            out[key] = card_colours(out[key], self.preprocessing)
        return out

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        """Top-1 retrieval of held-out sources from one edited view each (a quick proxy;
        `vq eval pairs` is the full evaluation)."""
        if len(self.eval_sources) < 2:
            return {}
        encoder = model.encoder
        encoder.eval()
        graphdef, state = nnx.split(encoder)
        apply = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        rng = np.random.default_rng(12345)
        backgrounds = [s.image for s in self.eval_sources[:32]]
        originals, queries = [], []
        for src in self.eval_sources:
            originals.append(_plain(src.image, self.size))
            queries.append(make_view(src.image, rng, self.size, backgrounds))
        originals = list(card_colours(np.stack(originals), self.preprocessing))
        queries = list(card_colours(np.stack(queries), self.preprocessing))
        ref = np.concatenate(
            [
                np.asarray(apply(state, self._normalise(jnp.asarray(np.stack(originals[i : i + 64])))))
                for i in range(0, len(originals), 64)
            ]
        )
        qry = np.concatenate(
            [
                np.asarray(apply(state, self._normalise(jnp.asarray(np.stack(queries[i : i + 64])))))
                for i in range(0, len(queries), 64)
            ]
        )
        top1 = float(np.mean(np.argmax(qry @ ref.T, axis=1) == np.arange(len(qry))))
        encoder.train()
        return {"holdout_top1": top1, "holdout_frames": float(len(qry))}


def _plain(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
