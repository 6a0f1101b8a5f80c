"""A small residual super-resolution network: the enhancement path's fast baseline.

EDSR-style body (Lim et al., 2017) without batch norm, a sub-pixel (pixel-shuffle)
upsampler (Shi et al., 2016, ESPCN), and a fixed bilinear x2 skip so the body only
learns the residual detail. Every op is written with slices, pads and reshapes so the
ONNX export keeps B, H and W symbolic: one artifact serves any frame size.

Input and output are NHWC float32 RGB in [0, 1]; the output is `scale` times larger.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vq.models import TensorSpec
from vq.train.models import ModelDef, ModelIO


def pixel_shuffle(x: jax.Array, scale: int) -> jax.Array:
    """(B, H, W, s*s*C) -> (B, H*s, W*s, C), the depth-to-space of ESPCN."""
    b, h, w, c = x.shape
    out_c = c // (scale * scale)
    x = x.reshape(b, h, w, scale, scale, out_c)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * scale, w * scale, out_c)


_TENT = np.array([0.25, 0.5, 0.25], dtype=np.float32)


def _blur_same(x: jax.Array) -> jax.Array:
    """Depthwise 3x3 [1/4 1/2 1/4] outer-product blur, zero padding (SAME)."""
    c = x.shape[-1]
    kernel = jnp.asarray(np.tile(np.outer(_TENT, _TENT)[:, :, None, None], (1, 1, 1, c)))
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c
    )


def upsample_bilinear2x(x: jax.Array) -> jax.Array:
    """Half-pixel bilinear x2 with edge clamping, shape-polymorphic.

    Nearest x2 followed by a [1/4 1/2 1/4] blur *is* half-pixel bilinear: output 2i gets
    1/4 x[i-1] + 3/4 x[i], output 2i+1 gets 3/4 x[i] + 1/4 x[i+1]. Dividing by the same
    blur of ones renormalises the zero-padded border, which equals clamping to the edge.
    Only repeat, SAME conv and divide: jax2onnx 0.17.1 keeps B, H, W symbolic through
    these, whereas edge padding and slices with symbolic bounds break its lowering.
    """
    up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return _blur_same(up) / _blur_same(jnp.ones_like(up[..., :1]))


def upsample_bilinear(x: jax.Array, scale: int) -> jax.Array:
    """Bilinear upsampling by a power of two, built from x2 steps."""
    if scale < 1 or scale & (scale - 1):
        raise ValueError(f"scale must be a power of two, got {scale}")
    while scale > 1:
        x = upsample_bilinear2x(x)
        scale //= 2
    return x


class ResBlock(nnx.Module):
    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        # Residual scaling (EDSR) keeps a BN-free stack stable at init.
        return x + 0.2 * self.conv2(nnx.relu(self.conv1(x)))


class ResidualSR(nnx.Module):
    def __init__(self, *, scale: int = 2, channels: int = 32, blocks: int = 4, rngs: nnx.Rngs):
        self.scale = scale
        self.head = nnx.Conv(3, channels, (3, 3), rngs=rngs)
        self.body = nnx.List([ResBlock(channels, rngs=rngs) for _ in range(blocks)])
        # Zero-init the last conv: the untrained net is exactly the bilinear upsampler.
        self.tail = nnx.Conv(
            channels, 3 * scale * scale, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        feats = self.head(x)
        y = feats
        for block in self.body:
            y = block(y)
        detail = pixel_shuffle(self.tail(y + feats), self.scale)
        return upsample_bilinear(x, self.scale) + detail


def sr_preprocessing(scale: int) -> dict[str, Any]:
    """What an x`scale` enhancement graph expects: RGB in [0, 1], as its card records."""
    return {
        "scale": 1 / 255,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "color": "RGB",
        "upscale": scale,
    }


def _sr_io(scale: int, **_: Any) -> ModelIO:
    return ModelIO(
        inputs=[TensorSpec("image", "float32", ("B", "H", "W", 3))],
        outputs=[TensorSpec("output", "float32", ("B", f"H*{scale}", f"W*{scale}", 3))],
        preprocessing=sr_preprocessing(scale),
    )


SR_RESIDUAL = ModelDef(
    build=lambda *, rngs, **kw: ResidualSR(rngs=rngs, **kw),
    io=_sr_io,
    defaults={"scale": 2, "channels": 32, "blocks": 4},
    summary="residual SR net, pixel shuffle + bilinear skip",
)
