"""The binary-code head: 256-d frame vectors to `bits`-bit codes for faiss's binary indexes.

The copy-detection seed proposes learned hashing to fit billions of frames on one GPU:
32 bytes a vector, compared by XOR + popcount. The head is one linear map and a tanh
(the sign at run time); it starts as random hyperplanes (an orthogonal projection, i.e.
SimHash, the classic locality-sensitive hash for cosine), so training can only move it
from that baseline towards codes that keep edited copies together.

Input: L2-normalised float32 vectors (B, dim); output: float32 (B, bits) in (-1, 1), whose
signs are the bits (`vq.stages.hash.Hasher` packs them).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from vq.models import TensorSpec
from vq.train.models import ModelDef, ModelIO


class HashHead(nnx.Module):
    def __init__(self, *, dim: int = 256, bits: int = 256, rngs: nnx.Rngs):
        self.gain = math.sqrt(dim)  # unit vectors -> projections of unit variance
        self.proj = nnx.Linear(
            dim, bits, kernel_init=nnx.initializers.orthogonal(), bias_init=nnx.initializers.zeros, rngs=rngs
        )

    def __call__(self, vectors: jax.Array) -> jax.Array:
        return jnp.tanh(self.proj(vectors * self.gain))


def _io(dim: int, bits: int, **_: Any) -> ModelIO:
    return ModelIO(
        inputs=[TensorSpec("vectors", "float32", ("B", dim))],
        outputs=[TensorSpec("codes", "float32", ("B", bits))],
        preprocessing={"input": "L2-normalised embedding vectors", "bits": "code > 0"},
    )


HASH_HEAD = ModelDef(
    build=lambda *, rngs, **kw: HashHead(rngs=rngs, **kw),
    io=_io,
    defaults={"dim": 256, "bits": 256},
    summary="binary-code head: linear + tanh from SimHash init (codes are the signs)",
)
