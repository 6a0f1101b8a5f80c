"""KVQ: a video transformer over fragment tokens with key-frame attention and two branches.

What the quality seed describes, at a size that trains on two CPU cores:

* **Tokens.** The input is a fragment clip (`vq.preprocess.fragments`: native-resolution
  mini-patches, ``B, T, S, S, 3``). Each ``token x token`` patch of each frame becomes a
  token from its pixels *and* their change since the previous frame, so a freeze, a
  dropped frame or motion blur is visible to every token, not only across attention.
  With the default ``energy`` stem each token also carries the log energies of a learned
  4x4 filter bank at native and half resolution (`band_energy`): the statistics that
  blur, noise, blocking and ringing move, which a linear patch embedding, dominated by
  content and brightness, learns slowly from little data (+0.06 held-out SROCC and +0.09
  in-chain rank accuracy at equal steps; `BENCHMARKS.md`).
* **Key frames by KL divergence.** In every block, each frame's token distribution (the
  softmax over channels of its mean token) is compared with the clip's (the mean of those):
  the ``k`` frames with the largest KL divergence are the least redundant. Tokens attend
  within their own frame, then to the tokens of the key frames only: sparse attention in
  time, ``T*N x k*N`` instead of ``T*N x T*N``. Selection is a rank computed with
  comparisons and a one-hot matrix, so the graph exports to ONNX without TopK or gathers.
* **Two branches over clip lengths.** A short branch sees the middle `short_frames` frames
  (spatial artefacts: noise, blocks, blur show in a few frames) and a long branch all
  `frames` (stutter, drops, motion blur need time). Both share the tokeniser; their pooled
  features are concatenated.
* **Score head** calibrated to 1-5: ``1 + 4 * sigmoid(z)``, trained on the pseudo-MOS.

The model returns the score and each frame's KL divergence (the key frames are the
largest); `features(clip)` gives the pooled features (QPT and linear probes use them).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from vq.models import TensorSpec
from vq.train.models import ModelDef, ModelIO


def frame_kl(tokens: jax.Array) -> jax.Array:
    """(B, T, N, D) -> (B, T): KL divergence of each frame's token distribution (softmax
    over channels of its mean token) from the clip's (the mean of the frames')."""
    p = jax.nn.softmax(tokens.mean(axis=2), axis=-1)  # (B, T, D)
    q = p.mean(axis=1, keepdims=True)
    return jnp.sum(p * (jnp.log(p + 1e-9) - jnp.log(q + 1e-9)), axis=-1)


def keyframe_selection(kl: jax.Array, k: int) -> jax.Array:
    """(B, T) KL -> (B, T, k) one-hot: column j marks the frame with the j-th largest."""
    t = kl.shape[1]
    idx = jnp.arange(t)
    other, me = kl[:, None, :], kl[:, :, None]
    # rank[b, t] = how many frames come before t (larger KL; ties by index).
    ahead = (other > me) | ((other == me) & (idx[None, None, :] < idx[None, :, None]))
    rank = jnp.sum(ahead.astype(jnp.int32), axis=-1)
    return (rank[..., None] == jnp.arange(k)[None, None, :]).astype(kl.dtype)


STEMS = ("linear", "conv", "energy")
BLOCK = 4  # filter support of the energy stem, in pixels of its scale
ENERGY_SCALES = (1, 2)  # native resolution and 2x2-averaged: the highest two octaves
ENERGY_CHANNELS = 8  # RGB, its change since the last frame, horizontal and vertical luma steps


def band_energy(clip: jax.Array, filters: nnx.Linear, scale: int, token: int) -> jax.Array:
    """(B, T, S, S, 3) -> (B, T, N, F): per token, the log mean energy of `F` learned
    ``BLOCK x BLOCK`` filters over the token's blocks, at 1/`scale` resolution.

    Why: blur, noise, grain, blocking and ringing are changes in how much energy sits in
    which fine-scale band, and how it is spread. A linear patch embedding sees signed
    pixels, dominated by content and brightness; the energy of a filter response (squared,
    averaged, in logs so that contrast is a shift) is the statistic that distortion moves,
    and learning the filters keeps it a model rather than a fixed feature. Block means are
    removed (no DC), and the luma steps to the right and below let a block's filters see
    the seam into its neighbour (codec block edges)."""
    b, t, s, _, _ = clip.shape
    previous = jnp.concatenate([clip[:, :1], clip[:, :-1]], axis=1)
    luma = clip.mean(axis=-1, keepdims=True)
    dx = jnp.pad(luma[:, :, :, 1:] - luma[:, :, :, :-1], ((0, 0), (0, 0), (0, 0), (0, 1), (0, 0)))
    dy = jnp.pad(luma[:, :, 1:] - luma[:, :, :-1], ((0, 0), (0, 0), (0, 1), (0, 0), (0, 0)))
    x = jnp.concatenate([clip, clip - previous, dx, dy], axis=-1)
    if scale > 1:
        x = x.reshape(b, t, s // scale, scale, s // scale, scale, ENERGY_CHANNELS).mean(axis=(3, 5))
    n = s // scale // BLOCK  # blocks per side
    x = x.reshape(b, t, n, BLOCK, n, BLOCK, ENERGY_CHANNELS).transpose(0, 1, 2, 4, 3, 5, 6)
    x = x.reshape(b, t, n, n, BLOCK * BLOCK, ENERGY_CHANNELS)
    x = x - x.mean(axis=4, keepdims=True)
    response = filters(x.reshape(b, t, n, n, BLOCK * BLOCK * ENERGY_CHANNELS))
    per = token // scale // BLOCK  # blocks per token side
    g = n // per
    energy = (response**2).reshape(b, t, g, per, g, per, -1).mean(axis=(3, 5))
    return jnp.log(1e-5 + energy).reshape(b, t, g * g, -1)


class Attention(nnx.Module):
    """Multi-head attention written with einsum (exports cleanly through jax2onnx)."""

    def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
        self.heads = heads
        self.q = nnx.Linear(dim, dim, rngs=rngs)
        self.kv = nnx.Linear(dim, 2 * dim, rngs=rngs)
        self.out = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, x: jax.Array, context: jax.Array) -> jax.Array:
        b, n, d = x.shape
        m = context.shape[1]
        h = self.heads
        q = self.q(x).reshape(b, n, h, d // h)
        k, v = jnp.split(self.kv(context).reshape(b, m, 2, h, d // h), 2, axis=2)
        k, v = k[:, :, 0], v[:, :, 0]
        logits = jnp.einsum("bnhc,bmhc->bhnm", q, k) / jnp.sqrt(float(d // h))
        out = jnp.einsum("bhnm,bmhc->bnhc", jax.nn.softmax(logits, axis=-1), v)
        return self.out(out.reshape(b, n, d))


class KeyFrameBlock(nnx.Module):
    """Attention within each frame, then to the key frames' tokens, then an MLP."""

    def __init__(self, dim: int, heads: int, keyframes: int, *, rngs: nnx.Rngs):
        self.keyframes = keyframes
        self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
        self.spatial = Attention(dim, heads, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
        self.temporal = Attention(dim, heads, rngs=rngs)
        self.norm3 = nnx.LayerNorm(dim, rngs=rngs)
        self.fc1 = nnx.Linear(dim, 2 * dim, rngs=rngs)
        self.fc2 = nnx.Linear(2 * dim, dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(B, T, N, D) -> (the same, each frame's KL divergence (B, T))."""
        b, t, n, d = x.shape
        h = self.norm1(x).reshape(b * t, n, d)
        x = x + self.spatial(h, h).reshape(b, t, n, d)
        h = self.norm2(x)
        kl = frame_kl(h)
        select = keyframe_selection(kl, min(self.keyframes, t))
        keys = jnp.einsum("btnd,btk->bknd", h, select).reshape(b, -1, d)
        x = x + self.temporal(h.reshape(b, t * n, d), keys).reshape(b, t, n, d)
        return x + self.fc2(nnx.gelu(self.fc1(self.norm3(x)))), kl


class Branch(nnx.Module):
    def __init__(self, dim: int, heads: int, depth: int, keyframes: int, *, rngs: nnx.Rngs):
        self.blocks = nnx.List([KeyFrameBlock(dim, heads, keyframes, rngs=rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Pooled features (B, D) and the first block's frame KL (B, T)."""
        kls = []
        for block in self.blocks:
            x, kl = block(x)
            kls.append(kl)
        return self.norm(x).mean(axis=(1, 2)), kls[0]


class KVQ(nnx.Module):
    def __init__(
        self,
        *,
        frames: int = 16,
        short_frames: int = 4,
        size: int = 128,
        token: int = 16,
        dim: int = 64,
        heads: int = 4,
        depth: int = 2,
        keyframes: int = 4,
        branches: str = "short+long",
        stem: str = "energy",
        energy_filters: int = 32,
        rngs: nnx.Rngs,
    ):
        if size % token:
            raise ValueError(f"fragment size {size} is not a multiple of the token size {token}")
        if branches not in ("short+long", "short", "long"):
            raise ValueError(f"branches must be short+long, short or long, got {branches!r}")
        if stem not in STEMS or (stem == "conv" and token % 8) or (stem == "energy" and token % 8):
            raise ValueError(
                f"stem must be one of {', '.join(STEMS)} (conv and energy: token a multiple of 8), "
                f"got {stem!r}, token {token}"
            )
        self.frames, self.short_frames, self.token, self.branches = frames, short_frames, token, branches
        n = (size // token) ** 2
        if stem == "conv":
            # Three stride-2 3x3 convolutions before the tokens ("early convolutions help
            # transformers see"): local energy, edges and blocking are nonlinear in the
            # pixels, which a linear patch embedding on little data learns slowly.
            self.stem = nnx.List(
                [
                    nnx.Conv(6, 24, (3, 3), strides=(2, 2), rngs=rngs),
                    nnx.Conv(24, 48, (3, 3), strides=(2, 2), rngs=rngs),
                    nnx.Conv(48, 64, (3, 3), strides=(2, 2), rngs=rngs),
                ]
            )
            self.embed = nnx.Linear(64 * (token // 8) ** 2, dim, rngs=rngs)
        else:
            self.stem = None
            self.embed = nnx.Linear(2 * 3 * token * token, dim, rngs=rngs)
        if stem == "energy":
            # A learned filter bank whose log energies join each token (see `band_energy`).
            self.filters = nnx.List(
                [
                    nnx.Linear(BLOCK * BLOCK * ENERGY_CHANNELS, energy_filters, use_bias=False, rngs=rngs)
                    for _ in ENERGY_SCALES
                ]
            )
            self.embed_energy = nnx.Linear(len(ENERGY_SCALES) * energy_filters, dim, rngs=rngs)
        else:
            self.filters = None
        self.pos_space = nnx.Param(0.02 * jax.random.normal(rngs.params(), (n, dim)))
        self.pos_time = nnx.Param(0.02 * jax.random.normal(rngs.params(), (frames, dim)))
        self.short = (
            Branch(dim, heads, depth, max(1, keyframes // 2), rngs=rngs) if "short" in branches else None
        )
        self.long = Branch(dim, heads, depth, keyframes, rngs=rngs) if "long" in branches else None
        width = dim * (2 if branches == "short+long" else 1)
        self.head1 = nnx.Linear(width, dim, rngs=rngs)
        self.head2 = nnx.Linear(dim, 1, rngs=rngs)

    def tokens(self, clip: jax.Array) -> jax.Array:
        """(B, T, S, S, 3) -> (B, T, N, D): pixels and their change since the last frame."""
        b, t, s, _, c = clip.shape
        previous = jnp.concatenate([clip[:, :1], clip[:, :-1]], axis=1)
        x = jnp.concatenate([clip, clip - previous], axis=-1)
        g, p = s // self.token, self.token
        if self.stem is not None:
            x = x.reshape(b * t, s, s, 2 * c)
            for conv in self.stem:
                x = nnx.gelu(conv(x))
            p, c = p // 8, x.shape[-1] // 2  # the map is 8x smaller; 2c = its channels
            x = x.reshape(b, t, s // 8, s // 8, 2 * c)
        x = (
            x.reshape(b, t, g, p, g, p, 2 * c)
            .transpose(0, 1, 2, 4, 3, 5, 6)
            .reshape(b, t, g * g, p * p * 2 * c)
        )
        tokens = self.embed(x) + self.pos_space[None, None] + self.pos_time[None, :t, None]
        if self.filters is not None:
            energies = [
                band_energy(clip, f, scale, self.token)
                for f, scale in zip(self.filters, ENERGY_SCALES, strict=True)
            ]
            tokens = tokens + self.embed_energy(jnp.concatenate(energies, axis=-1))
        return tokens

    def features(self, clip: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Pooled features of both branches (B, D or 2D), and the frame KL (B, T) of the
        long branch (the short one's, padded with zeros, when there is no long branch)."""
        x = self.tokens(clip)
        parts, kl = [], None
        mid = (self.frames - self.short_frames) // 2
        if self.short is not None:
            feat, short_kl = self.short(x[:, mid : mid + self.short_frames])
            parts.append(feat)
            kl = jnp.pad(short_kl, ((0, 0), (mid, self.frames - self.short_frames - mid)))
        if self.long is not None:
            feat, kl = self.long(x)
            parts.append(feat)
        return jnp.concatenate(parts, axis=-1), kl

    def __call__(self, clip: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Quality on the 1-5 scale (B,), and each frame's KL divergence (B, T): the
        frames with the largest are the key frames the model attended to."""
        feat, kl = self.features(clip)
        logit = self.head2(nnx.gelu(self.head1(feat)))[:, 0]
        return 1.0 + 4.0 * jax.nn.sigmoid(logit), kl


def _kvq_io(frames: int, size: int, keyframes: int, **_: Any) -> ModelIO:
    return ModelIO(
        inputs=[TensorSpec("clip", "float32", ("B", frames, size, size, 3))],
        outputs=[TensorSpec("score", "float32", ("B",)), TensorSpec("frame_kl", "float32", ("B", frames))],
        preprocessing={
            "scale": 1 / 255,
            "mean": [0.45, 0.45, 0.45],
            "std": [0.25, 0.25, 0.25],
            "color": "RGB",
            "fragments": {"grid": size // 32, "patch": 32},
            "frames": frames,
            "keyframes": keyframes,
            "score_range": [1.0, 5.0],
        },
    )


KVQ_MODEL = ModelDef(
    build=lambda *, rngs, **kw: KVQ(rngs=rngs, **kw),
    io=_kvq_io,
    defaults={
        "frames": 16,
        "short_frames": 4,
        "size": 128,
        "token": 16,
        "dim": 64,
        "heads": 4,
        "depth": 2,
        "keyframes": 4,
        "branches": "short+long",
        "stem": "energy",
        "energy_filters": 32,
    },
    summary="KVQ video transformer: fragment tokens, KL key-frame attention, short + long branches",
)


def _head_only(path, value) -> bool:
    """A linear probe: only the score head is optimised, the backbone stays as loaded."""
    return isinstance(value, nnx.Param) and path[0] in ("head1", "head2")


KVQ_PROBE = ModelDef(
    build=KVQ_MODEL.build,
    io=KVQ_MODEL.io,
    defaults=KVQ_MODEL.defaults,
    summary="KVQ with a frozen backbone: a probe of what pretraining learned",
    trainable=_head_only,
)


class QPT(nnx.Module):
    """Quality-aware pretraining wrapper: a KVQ backbone and a projection head whose
    embeddings are compared by InfoNCE (`vq.train.qpt`)."""

    def __init__(self, *, backbone_kwargs: dict[str, Any], proj_dim: int = 64, rngs: nnx.Rngs):
        self.backbone = KVQ(rngs=rngs, **{**KVQ_MODEL.defaults, **backbone_kwargs})
        width = self.backbone.head1.in_features
        self.proj1 = nnx.Linear(width, width, rngs=rngs)
        self.proj2 = nnx.Linear(width, proj_dim, rngs=rngs)

    def __call__(self, clip: jax.Array) -> jax.Array:
        """Raw projections (B, proj_dim); the loss centres them over the batch first."""
        feat, _ = self.backbone.features(clip)
        return self.proj2(nnx.gelu(self.proj1(feat)))


def _not_head(path, value) -> bool:
    """QPT trains the backbone and projection; the score head is left for fine-tuning."""
    return isinstance(value, nnx.Param) and not (path[0] == "backbone" and path[1] in ("head1", "head2"))


QPT_MODEL = ModelDef(
    build=lambda *, rngs, **kw: QPT(rngs=rngs, **kw),
    io=lambda **kw: _kvq_io(**{**KVQ_MODEL.defaults, **kw["backbone_kwargs"]}),
    defaults={"backbone_kwargs": {}, "proj_dim": 64},
    summary="QPT wrapper: KVQ backbone + projection (the backbone is exported)",
    trainable=_not_head,
    exports=lambda **kw: ("backbone", "kvq", dict(kw["backbone_kwargs"])),
)
