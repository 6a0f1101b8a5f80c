"""The toy family: score = f(per-frame mean colour, scalar gain)."""

from __future__ import annotations

from vq.models import TensorSpec
from vq.train.models import ModelDef, ModelIO


def _build(*, rngs, frames: int, hidden: int):
    from flax import nnx

    class ToyScorer(nnx.Module):
        def __init__(self):
            self.hidden = nnx.Linear(3 * frames + 1, hidden, rngs=rngs)
            self.out = nnx.Linear(hidden, 1, rngs=rngs)

        def __call__(self, clip, gain):
            b = clip.shape[0]
            colours = clip.mean(axis=(2, 3)).reshape(b, 3 * frames)  # (B, T*3)
            x = nnx.relu(self.hidden(_join(colours, gain)))
            return self.out(x)[:, 0]

    return ToyScorer()


def _join(colours, gain):
    import jax.numpy as jnp

    return jnp.concatenate([colours, gain[:, None]], axis=1)


def _io(frames: int, hidden: int) -> ModelIO:
    return ModelIO(
        inputs=[
            TensorSpec("clip", "float32", ("B", frames, 16, 16, 3)),
            TensorSpec("gain", "float32", ("B",)),
        ],
        outputs=[TensorSpec("score", "float32", ("B",))],
        preprocessing={"scale": 1 / 255},
    )


TOY = ModelDef(build=_build, io=_io, defaults={"frames": 4, "hidden": 16}, summary="toy clip scorer")
