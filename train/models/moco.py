"""MoCo (He et al., 2020): a query encoder, its momentum (EMA) twin and a queue of keys.

Only the query encoder is trained by the optimiser (`trainable` filter below); the key
encoder follows it by exponential moving average and encodes the second view of each
pair; the queue holds the last `queue_size` keys as negatives. The query encoder is what
gets exported: it is a registered embedding model (ResNet by default).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from vq.train.models import ModelDef, create_model, model_io


def ema_update(target: nnx.Module, source: nnx.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * source, over their Params (no
    gradient flows into the source through it): MoCo's key encoder, LPM's target."""
    nnx.update(
        target,
        jax.tree.map(
            lambda t, s: momentum * t + (1 - momentum) * jax.lax.stop_gradient(s),
            nnx.state(target, nnx.Param),
            nnx.state(source, nnx.Param),
        ),
    )


class QueueState(nnx.Variable):
    """Non-trainable MoCo state: the key queue and its write pointer."""


class MoCo(nnx.Module):
    def __init__(
        self,
        *,
        encoder: str,
        encoder_kwargs: dict[str, Any],
        queue_size: int,
        momentum: float,
        temperature: float,
        rngs: nnx.Rngs,
    ):
        seed = int(jax.random.randint(rngs.params(), (), 0, 2**30))
        self.encoder = create_model(encoder, seed=seed, **encoder_kwargs)
        self.momentum_encoder = create_model(encoder, seed=seed, **encoder_kwargs)
        dim = model_io(encoder, **encoder_kwargs).outputs[0].shape[-1]
        queue = jax.random.normal(rngs.params(), (queue_size, dim))
        self.queue = QueueState(queue / jnp.linalg.norm(queue, axis=1, keepdims=True))
        self.queue_ptr = QueueState(jnp.zeros((), jnp.int32))
        self.momentum = momentum
        self.temperature = temperature

    def update_momentum_encoder(self) -> None:
        ema_update(self.momentum_encoder, self.encoder, self.momentum)

    def contrastive_logits(
        self, x_query: jax.Array, x_key: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """InfoNCE logits (positive first), the queries, and the keys to enqueue."""
        q = self.encoder(x_query)
        self.update_momentum_encoder()
        k = jax.lax.stop_gradient(self.momentum_encoder(x_key))
        positive = jnp.sum(q * k, axis=-1, keepdims=True)
        negative = q @ self.queue[...].T
        return jnp.concatenate([positive, negative], axis=1) / self.temperature, q, k

    def enqueue(self, keys: jax.Array) -> None:
        """Write `keys` over the oldest entries (wrapping around the ring)."""
        size = self.queue[...].shape[0]
        slots = (self.queue_ptr[...] + jnp.arange(keys.shape[0])) % size
        self.queue[...] = self.queue[...].at[slots].set(keys)
        self.queue_ptr[...] = (self.queue_ptr[...] + keys.shape[0]) % size


def trainable(path, value) -> bool:
    """Only the query encoder's parameters are optimised."""
    return isinstance(value, nnx.Param) and path[0] == "encoder"


MOCO = ModelDef(
    build=lambda *, rngs, **kw: MoCo(rngs=rngs, **kw),
    io=lambda **kw: model_io(kw["encoder"], **kw["encoder_kwargs"]),
    defaults={
        "encoder": "resnet18",
        "encoder_kwargs": {},
        "queue_size": 4096,
        "momentum": 0.99,
        "temperature": 0.1,
    },
    summary="MoCo wrapper: query encoder + momentum encoder + key queue",
    trainable=trainable,
    exports=lambda **kw: ("encoder", kw["encoder"], dict(kw["encoder_kwargs"])),
)
