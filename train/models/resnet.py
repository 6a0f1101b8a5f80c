"""ResNet family for frame embeddings (He et al., 2016), in Flax NNX.

The copy-detection seed (Bilibili) embeds 224 px frames with a ResNet-50 trained by MoCo;
vq keeps the family (18/34/50, width multiplier) and adds what retrieval needs: GeM
pooling (Radenović et al., 2018), a linear projection to D dims and L2 normalisation,
so cosine similarity is a dot product and faiss inner-product search applies directly.

Input: NHWC float32, RGB scaled to [0, 1] then normalised with the ImageNet mean/std in
the model's preprocessing. `max_pool` is called with keyword arguments: jax2onnx's patch
rejects the positional form.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from vq.models import TensorSpec
from vq.train.models import ModelDef, ModelIO

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv(cin: int, cout: int, k: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(
        cin,
        cout,
        (k, k),
        strides=stride,
        padding="SAME",
        use_bias=False,
        kernel_init=nnx.initializers.kaiming_normal(),
        rngs=rngs,
    )


def _bn(c: int, rngs: nnx.Rngs, zero: bool = False) -> nnx.BatchNorm:
    # Zero-init the last BN of each residual branch: every block starts as identity.
    scale_init = nnx.initializers.zeros if zero else nnx.initializers.ones
    return nnx.BatchNorm(c, momentum=0.9, epsilon=1e-5, scale_init=scale_init, rngs=rngs)


class Shortcut(nnx.Module):
    """Identity, or a strided 1x1 conv + BN where a block changes shape."""

    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs):
        needs_proj = stride != 1 or cin != cout
        # nnx.data: the optional modules are state whether present or None.
        self.proj = nnx.data(_conv(cin, cout, 1, stride, rngs) if needs_proj else None)
        self.bn = nnx.data(_bn(cout, rngs) if needs_proj else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x if self.proj is None else self.bn(self.proj(x))


class BasicBlock(nnx.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, *, rngs: nnx.Rngs):
        cout = width * self.expansion
        self.conv1, self.bn1 = _conv(cin, width, 3, stride, rngs), _bn(width, rngs)
        self.conv2, self.bn2 = _conv(width, cout, 3, 1, rngs), _bn(cout, rngs, zero=True)
        self.shortcut = Shortcut(cin, cout, stride, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return nnx.relu(y + self.shortcut(x))


class Bottleneck(nnx.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, *, rngs: nnx.Rngs):
        cout = width * self.expansion
        self.conv1, self.bn1 = _conv(cin, width, 1, 1, rngs), _bn(width, rngs)
        self.conv2, self.bn2 = _conv(width, width, 3, stride, rngs), _bn(width, rngs)
        self.conv3, self.bn3 = _conv(width, cout, 1, 1, rngs), _bn(cout, rngs, zero=True)
        self.shortcut = Shortcut(cin, cout, stride, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = nnx.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return nnx.relu(y + self.shortcut(x))


class GeM(nnx.Module):
    """Generalised-mean pooling: p=1 is average pooling, p->inf max pooling; p is learnt."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        self.p = nnx.Param(jnp.asarray(p, jnp.float32))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        # x**p as exp(p*log x): jax2onnx's `pow` cannot broadcast over a symbolic batch.
        p = self.p[...]
        pooled = jnp.mean(jnp.exp(p * jnp.log(jnp.maximum(x, self.eps))), axis=(1, 2))
        return jnp.exp(jnp.log(pooled) / p)


class ResNet(nnx.Module):
    """ResNet trunk -> GeM/avg pool -> linear projection -> L2-normalised embedding."""

    def __init__(
        self,
        stage_sizes: tuple[int, ...],
        block: type,
        *,
        width_mult: float = 1.0,
        embed_dim: int = 256,
        pooling: str = "gem",
        in_channels: int = 3,
        rngs: nnx.Rngs,
    ):
        widths = [max(8, round(w * width_mult)) for w in (64, 128, 256, 512)]
        self.stem = _conv(in_channels, widths[0], 7, 2, rngs)
        self.stem_bn = _bn(widths[0], rngs)
        blocks = []
        cin = widths[0]
        for stage, (n, width) in enumerate(zip(stage_sizes, widths[: len(stage_sizes)], strict=True)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(cin, width, stride, rngs=rngs))
                cin = width * block.expansion
        self.blocks = nnx.List(blocks)
        if pooling not in ("gem", "avg"):
            raise ValueError(f"pooling must be 'gem' or 'avg', got {pooling!r}")
        self.pool = nnx.data(GeM() if pooling == "gem" else None)
        self.head = nnx.Linear(cin, embed_dim, rngs=rngs)
        self.feature_dim = cin

    def features(self, x: jax.Array) -> jax.Array:
        """Pooled trunk features before the projection."""
        x = nnx.relu(self.stem_bn(self.stem(x)))
        x = nnx.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding="SAME")
        for block in self.blocks:
            x = block(x)
        return self.pool(x) if self.pool is not None else jnp.mean(x, axis=(1, 2))

    def __call__(self, x: jax.Array) -> jax.Array:
        z = self.head(self.features(x))
        return z * jax.lax.rsqrt(jnp.sum(z * z, axis=-1, keepdims=True) + 1e-12)


def _resnet_io(image_size: int, embed_dim: int, color: str = "RGB", **_: Any) -> ModelIO:
    """`color`: "RGB", or "equalised-luma" (`vq.preprocess.normalize.equalise_luma`: the
    model sees each picture's equalised brightness, blind to colour grades)."""
    from vq.preprocess.normalize import COLOR_MODES

    if color not in COLOR_MODES:
        raise ValueError(f"color must be one of {COLOR_MODES}, got {color!r}")
    return ModelIO(
        inputs=[TensorSpec("image", "float32", ("B", image_size, image_size, 3))],
        outputs=[TensorSpec("embedding", "float32", ("B", embed_dim))],
        preprocessing={
            "size": [image_size, image_size],
            "scale": 1 / 255,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "color": color,
            "resize": "bilinear-antialias",
        },
    )


def _resnet_def(stages: tuple[int, ...], block: type, summary: str) -> ModelDef:
    def build(*, rngs: nnx.Rngs, image_size: int, color: str, **kwargs: Any) -> ResNet:
        del image_size, color  # the export's input size and preprocessing (`_resnet_io`), not layers
        return ResNet(stages, block, rngs=rngs, **kwargs)

    defaults = {"image_size": 160, "embed_dim": 256, "width_mult": 1.0, "pooling": "gem", "color": "RGB"}
    return ModelDef(build=build, io=_resnet_io, defaults=defaults, summary=summary)


RESNET18 = _resnet_def((2, 2, 2, 2), BasicBlock, "ResNet-18")
RESNET34 = _resnet_def((3, 4, 6, 3), BasicBlock, "ResNet-34")
RESNET50 = _resnet_def((3, 4, 6, 3), Bottleneck, "ResNet-50")
# A two-stage toy for tests only: exported and trained in seconds.
_RESNET_TINY = ModelDef(
    build=lambda *, rngs, image_size, color, **kw: ResNet((1, 1), BasicBlock, rngs=rngs, **kw),
    io=_resnet_io,
    defaults={"image_size": 32, "embed_dim": 16, "width_mult": 0.125, "pooling": "gem", "color": "RGB"},
    summary="tiny test-only ResNet",
)
