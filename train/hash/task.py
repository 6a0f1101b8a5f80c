"""The binary-code task: a hashing head trained on edited pairs of embedding vectors.

Loss, on a batch of pairs (two edited views of one source, as the embedder's vectors):

* **ranking** (InfoNCE): a view's code agrees more with its pair's code than with any
  other row's (agreement = <code, code'> / bits, i.e. 1 - 2 Hamming / bits);
* **neighbourhood** (listwise distillation): over the batch, the softmax of code
  agreement matches the softmax of the vectors' cosine, so a Hamming shortlist holds the
  exact top 10 that re-ranking then orders;
* **quantisation** (codes near +-1, so the sign loses little) and **balance** (each bit
  half on, half off: no wasted bits).

Evaluation on held-out sources, against random hyperplanes (SimHash: the head's own
initialisation) in the same run: a database of the held-out originals among the
training pairs' vectors, queried with edited views; recall@10 against exact float search
and the original found in the top 10, from the codes alone and after re-ranking a
100-code shortlist with the exact vectors (what the library does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from PIL import Image

from vq.errors import UsageError
from vq.media.sources import load_sources
from vq.train.embed.input_pipeline import make_view
from vq.train.hash.config import HashConfig
from vq.train.hash.input_pipeline import embedded_pairs
from vq.train.models import create_model

QUERY_VIEWS = 8  # edited views per held-out source
SHORTLIST = 100


class HashTask:
    name = "hash"
    model_name = "hash_head"

    def __init__(self, config: HashConfig):
        from vq.stages.embed import Embedder

        if not config.data:
            raise UsageError("vq train hash needs --data (image folders, videos)")
        stage = Embedder(config.embedder, backend="ort-cpu")
        self.model_kwargs: dict[str, Any] = {"dim": stage.dim, "bits": config.bits}
        self.seed, self.bits = config.seed, config.bits
        self.temperature = config.temperature
        self.weights = (
            config.ranking_weight,
            config.neighbour_weight,
            config.quant_weight,
            config.balance_weight,
        )
        train = load_sources(config.data, config.holdout, "train")
        self.pairs = embedded_pairs(train, config.embedder, config.pairs, config.seed, Path(config.cache))
        self.eval_db, self.eval_queries, self.eval_truth = self._holdout(config, stage)
        self.data_facts = {
            "sources": [str(d) for d in config.data],
            "embedder": stage.name,
            "embedder_sha256": stage.fingerprint,
            "train_frames": len(train),
            "train_pairs": config.pairs,
            "holdout_fraction": config.holdout,
            "eval_database": len(self.eval_db),
            "eval_queries": len(self.eval_queries),
        }

    def _holdout(self, config: HashConfig, stage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Database: held-out originals, then the training pairs' second views as
        distractors; queries: edited views of each held-out original (row i's original
        is database row truth[i])."""
        try:
            held = load_sources(config.data, config.holdout, "holdout")
        except UsageError:
            held = []
        size = stage.size[0]
        backgrounds = [s.image for s in held[:64]]
        originals, views, truth = [], [], []
        for i, src in enumerate(held):
            originals.append(np.asarray(Image.fromarray(src.image).resize((size, size), Image.BILINEAR)))
            for v in range(QUERY_VIEWS):
                views.append(make_view(src.image, np.random.default_rng((8, i, v)), size, backgrounds))
                truth.append(i)
        if not held:
            return self.pairs["b"], np.zeros((0, stage.dim), np.float32), np.zeros(0, np.int64)
        db = np.concatenate([stage.embed_frames(np.stack(originals)), self.pairs["b"]])
        return db, stage.embed_frames(np.stack(views)), np.asarray(truth)

    def create_model(self, seed: int) -> nnx.Module:
        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        del rng
        a, b = batch["a"], batch["b"]
        ca, cb = model(a), model(b)
        agree = ca @ cb.T / self.bits  # (B, B) in [-1, 1]
        rows = jnp.arange(a.shape[0])
        ranking = 0.5 * (
            optax.softmax_cross_entropy_with_integer_labels(agree / self.temperature, rows).mean()
            + optax.softmax_cross_entropy_with_integer_labels(agree.T / self.temperature, rows).mean()
        )
        # Listwise: over every other vector in the batch, the codes' agreement spreads as
        # the exact cosine does (what a Hamming shortlist must keep for re-ranking).
        pool = jnp.concatenate([a, b])
        code_pool = jnp.concatenate([ca, cb])
        mask = jnp.eye(a.shape[0], pool.shape[0], dtype=bool)  # a row against itself
        target = jax.nn.softmax(jnp.where(mask, -jnp.inf, a @ pool.T) / self.temperature, axis=1)
        logits = jnp.where(mask, -jnp.inf, ca @ code_pool.T / self.bits) / self.temperature
        neighbour = -jnp.mean(
            jnp.sum(target * jnp.where(mask, 0.0, jax.nn.log_softmax(logits, axis=1)), axis=1)
        )
        quant = jnp.mean((1.0 - jnp.abs(ca)) ** 2)
        balance = jnp.mean(jnp.mean(ca, axis=0) ** 2)
        wr, wn, wq, wb = self.weights
        loss = wr * ranking + wn * neighbour + wq * quant + wb * balance
        top1 = jnp.mean(jnp.argmax(agree, axis=1) == rows)
        return loss, {"ranking": ranking, "neighbour": neighbour, "quant": quant, "top1": top1}

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        n = len(self.pairs["a"])
        pick = np.array([np.random.default_rng((self.seed, step, r)).integers(n) for r in rows])
        return {"a": self.pairs["a"][pick], "b": self.pairs["b"][pick]}

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        if not len(self.eval_queries):
            return {}
        out = {
            f"holdout_{k}": v
            for k, v in retrieval(model, self.eval_db, self.eval_queries, self.eval_truth).items()
        }
        simhash = self.create_model(self.seed)  # the head before training: random hyperplanes
        out |= {
            f"simhash_{k}": v
            for k, v in retrieval(simhash, self.eval_db, self.eval_queries, self.eval_truth).items()
        }
        return out


def retrieval(model: nnx.Module, db: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Codes against exact search: recall@10 and source@10, from codes alone and after
    re-ranking a `SHORTLIST` by the exact vectors."""
    code_db = np.asarray(model(jnp.asarray(db))) > 0
    code_q = np.asarray(model(jnp.asarray(queries))) > 0
    signed_db, signed_q = code_db * 2.0 - 1.0, code_q * 2.0 - 1.0
    agree = signed_q @ signed_db.T  # bits - 2 x Hamming
    exact = queries @ db.T
    truth10 = np.argsort(-exact, axis=1)[:, :10]
    codes10 = np.argsort(-agree, axis=1, kind="stable")[:, :10]
    short = np.argsort(-agree, axis=1, kind="stable")[:, :SHORTLIST]
    reranked = np.take_along_axis(short, np.argsort(-np.take_along_axis(exact, short, 1), axis=1)[:, :10], 1)

    def recall(found: np.ndarray) -> float:
        return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth10, strict=True)]))

    return {
        "source10_exact": float(np.mean(np.any(truth10 == truth[:, None], axis=1))),
        "recall10_codes": recall(codes10),
        "recall10_rerank": recall(reranked),
        "source10_codes": float(np.mean(np.any(codes10 == truth[:, None], axis=1))),
        "source10_rerank": float(np.mean(np.any(reranked == truth[:, None], axis=1))),
    }
