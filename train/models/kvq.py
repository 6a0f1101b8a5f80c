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
* **Directional steps** (``oriented``, off in the shipped model): per token, the log energy
  of luma steps in four directions at 1-3 octaves (`oriented_energy`), which a motion
  blur empties one at a time. Added by a fine-tune they changed nothing (`BENCHMARKS.md`).
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
  With ``feature_outputs=F`` a second linear head reads the same pooled features and
  predicts VMAF's elementary features (`score_and_features`; a training target, never
  exported: the ONNX graph is `__call__`).

The model returns the score and each frame's KL divergence (the key frames are the
largest); `features(clip)` gives the pooled features (QPT and linear probes use them).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from vq.models import TensorSpec
from vq.preprocess.normalize import LUMA
from vq.train.models import ModelDef, ModelIO


def frame_kl(tokens: jax.Array) -> jax.Array:
    """(B, T, N, D) -> (B, T): KL divergence of each frame's token distribution (softmax
    over channels of its mean token) from the clip's (the mean of the frames')."""
    p = jax.nn.softmax(tokens.mean(axis=2), axis=-1)  # (B, T, D)
    q = p.mean(axis=1, keepdims=True)
    return jnp.sum(p * (jnp.log(p + 1e-9) - jnp.log(q + 1e-9)), axis=-1)


def parity_clips(rng: Any, batch: int, frames: int, size: int) -> Any:
    """Noise clips whose frames differ in contrast, for the export's parity check.

    Key frames are a choice (the largest KL divergences): on iid noise every frame is
    alike, KL values tie to 1e-6, and float rounding in another runtime may pick another
    frame -- a real disagreement only on inputs no video has. Frames of different contrast
    keep the choice well-conditioned, so what parity measures is the arithmetic."""
    import numpy as np

    contrast = rng.permutation(np.linspace(0.1, 1.0, frames)).astype(np.float32)
    noise = rng.random((batch, frames, size, size, 3), dtype=np.float32) - 0.5
    return 0.5 + contrast[None, :, None, None, None] * noise


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
# Options whose parts start at zero (off: 0), so a fine-tune may turn them on over a start
# without them and begin from its exact scores (`vq.train.kvq.task.trained_kvq`).
ZERO_STARTED = ("oriented",)
# Options that change what the model is shown, not its weights: a fine-tune may turn them
# on over a start without them, and learns to read the new input.
SHOWN_ONLY = ("context",)
BLOCK = 4  # filter support of the energy stem, in pixels of its scale
ENERGY_SCALES = (1, 2)  # native resolution and 2x2-averaged: the highest two octaves
ENERGY_CHANNELS = 8  # RGB, its change since the last frame, horizontal and vertical luma steps


def frame_planes(clip: jax.Array) -> jax.Array:
    """(B, T, S, S, 3) -> (B*T, 3, S+1, S+1): the frames channels-first (ONNX Runtime's
    convolution layout, so the graph transposes the clip once, not per convolution), with
    the last row and column repeated (the luma step past the edge is zero)."""
    b, t, s, _, c = clip.shape
    x = clip.reshape(b * t, s, s, c).transpose(0, 3, 1, 2)
    x = jnp.concatenate([x, x[:, :, -1:]], axis=2)
    return jnp.concatenate([x, x[:, :, :, -1:]], axis=3)


def strided_conv(planes: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """(N, C, H, W) planes, an HWIO kernel -> (N, H', W', O), no padding."""
    y = jax.lax.conv_general_dilated(
        planes, kernel, (stride, stride), "VALID", dimension_numbers=("NCHW", "HWIO", "NCHW")
    )
    return y.transpose(0, 2, 3, 1)


def band_energy(
    clip: jax.Array,
    filters: nnx.Linear,
    scale: int,
    token: int,
    planes: jax.Array | None = None,
    floor: bool = False,
) -> jax.Array:
    """(B, T, S, S, 3) -> (B, T, N, F): per token, the log mean energy of `F` learned
    ``BLOCK x BLOCK`` filters over the token's blocks, at 1/`scale` resolution.

    Why: blur, noise, grain, blocking and ringing are changes in how much energy sits in
    which fine-scale band, and how it is spread. A linear patch embedding sees signed
    pixels, dominated by content and brightness; the energy of a filter response (squared,
    averaged, in logs so that contrast is a shift) is the statistic that distortion moves,
    and learning the filters keeps it a model rather than a fixed feature.

    What a filter sees, per block: 8 channels -- RGB, its change since the last frame,
    and the luma steps to the right and below (so a block's filters see the seam into its
    neighbour: codec block edges) -- with the block's mean removed (no DC); at scale 2 the
    channels are 2x2-averaged first. Every one of those is linear in the pixels, so each
    filter is folded into one convolution over the frame and one over the previous frame
    (`energy_kernels`), strided by the block: the same numbers as building the 8 channels
    and cutting blocks, at a fraction of the memory traffic (the 8-channel full-resolution
    tensor is never made). `planes`: `frame_planes(clip)`, if the caller has them.
    With `floor`, each token also carries the mean over its blocks of the *log* energy
    (B, T, N, 2F): a geometric mean, led by the token's quietest blocks. The mean energy
    is led by its busiest: texture hides there what noise adds to a flat block and what
    banding takes from a smooth gradient, the two stages the mean-energy model ordered
    worst (wrong on 54 % and 77 % of held-out noise and banding steps, and as often on
    its own training clips)."""
    b, t, s = clip.shape[:3]
    now, before = energy_kernels(filters.kernel[...], scale)
    f = now.shape[-1]
    block = BLOCK * scale
    planes = frame_planes(clip) if planes is None else planes
    y = strided_conv(planes, jnp.concatenate([now, before], axis=-1), block)
    n = s // block  # blocks per side
    y = y.reshape(b, t, n, n, 2 * f)
    past = y[..., f:]
    response = y[..., :f] - jnp.concatenate([past[:, :1], past[:, :-1]], axis=1)
    per = token // block  # blocks per token side
    g = n // per
    blocks = (response**2).reshape(b, t, g, per, g, per, f)
    energy = jnp.log(1e-5 + blocks.mean(axis=(3, 5))).reshape(b, t, g * g, f)
    if not floor:
        return energy
    quiet = jnp.log(1e-5 + blocks).mean(axis=(3, 5)).reshape(b, t, g * g, f)
    return jnp.concatenate([energy, quiet], axis=-1)


ORIENTED_SCALES = (1, 2, 4)  # the octaves `oriented_energy` reads, finest first


def oriented_energy(clip: jax.Array, scale: int, token: int) -> jax.Array:
    """(B, T, S, S, 3) -> (B, T, N, 4): per token, the log mean squared luma step between
    neighbouring pixels of the ``scale x scale``-averaged frame in four directions (right,
    down, down-right, down-left), taken inside the token only, less the four's mean.

    Why: a motion blur empties one direction and leaves the others. The learned filter
    bank's energies each mix directions, so on a noise texture a 10 px motion blur lowers
    them by 1.7-2.0 in log energy, against 4.5 for a Gaussian blur of sigma 1.5, though
    VMAF calls the motion blur the worse of the two on real pictures. The shipped model
    scored a 10 px diagonal smear on two BSD100 pictures within 0.1 of the clean clip.
    Per direction, the emptied one stands out. Steps never cross a token's edge: in a
    fragment clip the pixel past it belongs to another part of the frame.

    Measured as a fine-tune from the shipped model (`BENCHMARKS.md`, thirtieth session):
    no gain; the model left these features almost unused."""
    b, t, s = clip.shape[:3]
    luma = clip @ jnp.asarray(LUMA / 1000, clip.dtype)  # (B, T, S, S)
    n, m = s // scale, token // scale  # pixels per side at this scale, per token side
    g = s // token
    y = luma.reshape(b, t, n, scale, n, scale).mean(axis=(3, 5))
    y = y.reshape(b, t, g, m, g, m).transpose(0, 1, 2, 4, 3, 5)  # (B, T, g, g, m, m)
    steps = (
        y[..., :, 1:] - y[..., :, :-1],
        y[..., 1:, :] - y[..., :-1, :],
        y[..., 1:, 1:] - y[..., :-1, :-1],
        y[..., 1:, :-1] - y[..., :-1, 1:],
    )
    energy = jnp.stack([jnp.log(1e-5 + jnp.mean(d**2, axis=(-2, -1))) for d in steps], axis=-1)
    # Less their mean: how unevenly the directions hold energy (their common level is the
    # filter bank's to read), with no large shared offset for a zero-started embedding to
    # fight. On the raw energies a fine-tune left that embedding's weights under a thirtieth
    # of the filter bank's; centred, about a twelfth (neither moved the scores).
    energy = energy - energy.mean(axis=-1, keepdims=True)
    return energy.reshape(b, t, g * g, 4)


def energy_kernels(weights: jax.Array, scale: int) -> tuple[jax.Array, jax.Array]:
    """A filter bank over blocks of the 8 energy channels -> the equivalent convolution
    kernels over RGB pixels: ``(block+1, block+1, 3, F)`` on the frame and the same shape
    (last row and column zero) on the previous frame, ``block = BLOCK * scale``."""
    f = weights.shape[-1]
    w = weights.reshape(BLOCK, BLOCK, ENERGY_CHANNELS, f)
    w = w - w.mean(axis=(0, 1), keepdims=True)  # removing the block mean = a zero-DC filter
    if scale > 1:  # a weight on a 2x2 average is that weight / 4 on each of its pixels
        w = jnp.repeat(jnp.repeat(w, scale, axis=0), scale, axis=1) / (scale * scale)
    rgb, change, dx, dy = w[..., 0:3, :], w[..., 3:6, :], w[..., 6:7, :] / 3, w[..., 7:8, :] / 3

    def grown(k: jax.Array, row: int = 0, col: int = 0) -> jax.Array:
        """`k` on the (block+1)^2 window, moved down `row` and right `col`."""
        return jnp.pad(k, ((row, 1 - row), (col, 1 - col), (0, 0), (0, 0)))

    # luma = mean of RGB; the step right of a pixel is luma[x + 1] - luma[x].
    now = grown(rgb + change) + grown(dx, col=1) - grown(dx) + grown(dy, row=1) - grown(dy)
    return now, grown(change)


class Attention(nnx.Module):
    """Multi-head attention as batched matmuls (ONNX MatMul: ONNX Runtime's Einsum
    costs about twice as much on these shapes)."""

    def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
        self.heads = heads
        self.q = nnx.Linear(dim, dim, rngs=rngs)
        self.kv = nnx.Linear(dim, 2 * dim, rngs=rngs)
        self.out = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, x: jax.Array, context: jax.Array) -> jax.Array:
        b, n, d = x.shape
        m = context.shape[1]
        h = self.heads
        q = self.q(x).reshape(b, n, h, d // h).transpose(0, 2, 1, 3)  # (b, h, n, c)
        kv = self.kv(context).reshape(b, m, 2, h, d // h)
        k, v = kv[:, :, 0].transpose(0, 2, 3, 1), kv[:, :, 1].transpose(0, 2, 1, 3)  # (b,h,c,m), (b,h,m,c)
        logits = jnp.matmul(q, k) / jnp.sqrt(float(d // h))
        out = jnp.matmul(jax.nn.softmax(logits, axis=-1), v)  # (b, h, n, c)
        return self.out(out.transpose(0, 2, 1, 3).reshape(b, n, d))


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
        keys = jnp.matmul(select.transpose(0, 2, 1), h.reshape(b, t, n * d)).reshape(b, -1, d)
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
        energy_floor: bool = False,
        align: int = 1,
        feature_outputs: int = 0,
        oriented: int = 0,
        context: int = 0,
        rngs: nnx.Rngs,
    ):
        del align, context  # how fragments are cut (preprocessing facts the card carries), not weights
        if size % token:
            raise ValueError(f"fragment size {size} is not a multiple of the token size {token}")
        if branches not in ("short+long", "short", "long"):
            raise ValueError(f"branches must be short+long, short or long, got {branches!r}")
        if stem not in STEMS or (stem == "conv" and token % 8) or (stem == "energy" and token % 8):
            raise ValueError(
                f"stem must be one of {', '.join(STEMS)} (conv and energy: token a multiple of 8), "
                f"got {stem!r}, token {token}"
            )
        if not 0 <= oriented <= len(ORIENTED_SCALES) or (oriented and token % ORIENTED_SCALES[oriented - 1]):
            raise ValueError(
                f"oriented must be 0-{len(ORIENTED_SCALES)} scales, each dividing the token size, "
                f"got {oriented}, token {token}"
            )
        self.frames, self.short_frames, self.token, self.branches = frames, short_frames, token, branches
        self.energy_floor = energy_floor
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
            stats = 2 if energy_floor else 1  # mean energy, and the mean log energy
            self.embed_energy = nnx.Linear(len(ENERGY_SCALES) * stats * energy_filters, dim, rngs=rngs)
        else:
            self.filters = None
        # Directional luma steps at the first `oriented` scales (`oriented_energy`). Their
        # embedding starts at zero, so a model fine-tuned from one without them starts as it.
        self.oriented_scales = ORIENTED_SCALES[:oriented]
        self.embed_oriented = (
            nnx.Linear(
                4 * oriented,
                dim,
                kernel_init=nnx.initializers.zeros_init(),
                bias_init=nnx.initializers.zeros_init(),
                rngs=rngs,
            )
            if oriented
            else None
        )
        self.pos_space = nnx.Param(0.02 * jax.random.normal(rngs.params(), (n, dim)))
        self.pos_time = nnx.Param(0.02 * jax.random.normal(rngs.params(), (frames, dim)))
        self.short = (
            Branch(dim, heads, depth, max(1, keyframes // 2), rngs=rngs) if "short" in branches else None
        )
        self.long = Branch(dim, heads, depth, keyframes, rngs=rngs) if "long" in branches else None
        width = dim * (2 if branches == "short+long" else 1)
        self.head1 = nnx.Linear(width, dim, rngs=rngs)
        self.head2 = nnx.Linear(dim, 1, rngs=rngs)
        self.feature_head = nnx.Linear(width, feature_outputs, rngs=rngs) if feature_outputs else None

    def tokens(self, clip: jax.Array) -> jax.Array:
        """(B, T, S, S, 3) -> (B, T, N, D): pixels and their change since the last frame."""
        b, t, s, _, c = clip.shape
        position = self.pos_space[None, None] + self.pos_time[None, :t, None]
        if self.stem is None:
            planes = frame_planes(clip)
            return self.add_energy(clip, self.patch_embed(clip, planes) + position, planes)
        previous = jnp.concatenate([clip[:, :1], clip[:, :-1]], axis=1)
        x = jnp.concatenate([clip, clip - previous], axis=-1).reshape(b * t, s, s, 2 * c)
        for conv in self.stem:
            x = nnx.gelu(conv(x))
        g, p, c = s // self.token, self.token // 8, x.shape[-1] // 2  # the map is 8x smaller
        x = (
            x.reshape(b, t, g, p, g, p, 2 * c)
            .transpose(0, 1, 2, 4, 3, 5, 6)
            .reshape(b, t, g * g, p * p * 2 * c)
        )
        return self.add_energy(clip, self.embed(x) + position, None)

    def patch_embed(self, clip: jax.Array, planes: jax.Array) -> jax.Array:
        """(B, T, S, S, 3) -> (B, T, N, D): the linear embedding of each token's pixels and
        their change since the last frame, as one strided convolution over the frames
        (the embedding's weights on `x - previous` split into a term on `x` and one on
        `previous`), so the 6-channel clip is never built."""
        b, t, s, _, c = clip.shape
        p, d = self.token, self.embed.out_features
        w = self.embed.kernel[...].reshape(p, p, 2 * c, d)
        kernel = jnp.concatenate([w[..., :c, :] + w[..., c:, :], w[..., c:, :]], axis=-1)
        y = strided_conv(planes, kernel, p)  # the repeated last row and column fall outside
        y = y.reshape(b, t, (s // p) ** 2, 2 * d)
        past = y[..., d:]
        return y[..., :d] - jnp.concatenate([past[:, :1], past[:, :-1]], axis=1) + self.embed.bias[...]

    def add_energy(self, clip: jax.Array, tokens: jax.Array, planes: jax.Array | None) -> jax.Array:
        if self.embed_oriented is not None:
            steps = [oriented_energy(clip, scale, self.token) for scale in self.oriented_scales]
            tokens = tokens + self.embed_oriented(jnp.concatenate(steps, axis=-1))
        if self.filters is None:
            return tokens
        energies = [
            band_energy(clip, f, scale, self.token, planes, self.energy_floor)
            for f, scale in zip(self.filters, ENERGY_SCALES, strict=True)
        ]
        return tokens + self.embed_energy(jnp.concatenate(energies, axis=-1))

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
        score, kl, _ = self.score_and_features(clip)
        return score, kl

    def score_and_features(self, clip: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        """`__call__`'s score and frame KL, and the auxiliary head's predictions (B, F)
        of VMAF's elementary features (None without the head), from one pass."""
        feat, kl = self.features(clip)
        logit = self.head2(nnx.gelu(self.head1(feat)))[:, 0]
        aux = self.feature_head(feat) if self.feature_head is not None else None
        return 1.0 + 4.0 * jax.nn.sigmoid(logit), kl, aux


def _kvq_io(frames: int, size: int, keyframes: int, align: int = 1, context: int = 0, **_: Any) -> ModelIO:
    cut = {"grid": size // 32, "patch": 32, "align": align, **({"context": 1} if context else {})}
    return ModelIO(
        inputs=[TensorSpec("clip", "float32", ("B", frames, size, size, 3))],
        outputs=[TensorSpec("score", "float32", ("B",)), TensorSpec("frame_kl", "float32", ("B", frames))],
        parity_feeds=lambda rng, batch: {"clip": parity_clips(rng, batch, frames, size)},
        preprocessing={
            "scale": 1 / 255,
            "mean": [0.45, 0.45, 0.45],
            "std": [0.25, 0.25, 0.25],
            "color": "RGB",
            "fragments": cut,
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
        "energy_floor": False,
        "align": 1,
        "feature_outputs": 0,
        "oriented": 0,
        "context": 0,
    },
    summary="KVQ video transformer: fragment tokens, KL key-frame attention, short + long branches",
    # int8 on the matrix products only. The stem's convolutions feed log energies, which
    # turn an 8-bit rounding of a quiet band into a large shift: on 64 held-out windows
    # the score moved 0.77 on the 1-5 scale on average with every op quantised, 0.35 with
    # the convolutions too, 0.02 with the matrix products alone (BENCHMARKS.md).
    int8_op_types=frozenset({"MatMul", "Gemm"}),
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
