"""LPM: the enhancement seed's generative restorer, a DiT base steered by a ControlNet.

The seed trains a DiT on high-quality data for generative power, adds a ControlNet branch
that brings in the low-quality frame for fidelity, samples with rectified flow (25 steps)
and distils that into one step. At a size that trains on two CPU cores:

* **Where the flow lives.** In the *residual* of the high-quality frame over an
  *anchor* image made from the low-quality one, divided by its typical size
  (`residual_scale`): ``r = (hq - anchor(lq)) / residual_scale``. The anchor already
  fixes what can be known from the input, so a small model spends all its capacity on
  the detail a restorer has to invent (the reason ResShift and SinSR shift residuals).
  The anchor is either the exportable bilinear of `sr.upsample_bilinear` (identity at
  scale 1) or, with ``anchor_channels > 0``, a frozen regression restorer (`ResidualSR`,
  the `vq-enhance-x2` network) -- the posterior-mean estimate that PMRF (Ohayon et al.,
  2025) lets a rectified flow start from. With the bilinear anchor the flow must find
  the conditional mean *and* the detail from noise at t = 0, and this model's first
  teachers could not (endpoint at t = 0 correlated 0.25 with the true residual, Set5
  3-4 dB below bicubic); from a regression anchor, an endpoint of zero is already the
  regression answer and the flow only adds what regression averages away.
* **Rectified flow, endpoint-predicted.** ``x_t = (1 - t) z + t r`` with ``z ~ N(0, I)``;
  the network predicts the clean endpoint ``r`` itself and the velocity follows,
  ``v = (r_hat - x_t) / (1 - t)`` (the loss is still on v). Predicting the velocity
  instead makes the net carry the noise ``z`` through to cancel it at t = 0, which a
  small patch transformer does badly: the first such teacher leaked its input noise into
  every frame (output-noise correlation 0.2, Set5 x2 28.8 dB at 1 step, 4.8 dB *below*
  bicubic). Noise-free targets are what JiT (Li & He, 2025) argues for in pixel space.
  Sampling integrates from t = 0 (noise) to t = 1 with Euler.
* **DiT** (Peebles & Xie, 2023): patchify, fixed 2-D sin-cos positions, timestep
  embedding, blocks with adaLN-Zero (shift, scale and a zero-initialised gate per
  branch), a zero-initialised final layer.
* **ControlNet** (Zhang et al., 2023; PixArt-delta's DiT form): a trainable copy of the
  base's first `control_blocks` blocks whose input is the noisy tokens plus the
  low-quality frame's tokens through a zero-initialised projection; each copied block's
  output joins the frozen base after the same block through another zero-initialised
  projection. At initialisation the pair is exactly the base.
* **Exported graph**: ``(lq, x_t, t) -> (endpoint, image)``: the flow's estimate of
  the clean residual and the frame it implies, ``anchor(lq) + residual_scale *
  endpoint`` (the anchor network is part of the graph). The runtime's sampler (`vq.stages.enhance`)
  runs it once per step; a consistency-distilled student runs it once.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vq.models import TensorSpec
from vq.train.models import ModelDef, ModelIO, create_model
from vq.train.models.kvq import Attention
from vq.train.models.moco import ema_update
from vq.train.models.sr import ResidualSR, sr_preprocessing, upsample_bilinear

RESIDUAL_SCALE = 0.05  # std of (HR - bilinear(LR)) on BSD100 at x2, in [0, 1] units


def sincos_positions(rows: int, cols: int, dim: int) -> np.ndarray:
    """(rows*cols, dim) fixed 2-D sin-cos position embedding (half the channels per axis)."""
    quarter = dim // 4
    freqs = 1.0 / (10000.0 ** (np.arange(quarter) / quarter))
    ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    parts = []
    for coord in (ys.ravel(), xs.ravel()):
        angles = coord[:, None] * freqs[None, :]
        parts += [np.sin(angles), np.cos(angles)]
    return np.concatenate(parts, axis=1).astype(np.float32)


def timestep_features(t: jax.Array, dim: int = 128) -> jax.Array:
    """(B,) t in [0, 1] -> (B, dim) sinusoidal features of 1000 t."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = (1000.0 * t)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def patchify(x: jax.Array, p: int) -> jax.Array:
    """(B, H, W, C) -> (B, H/p * W/p, p*p*C)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(tokens: jax.Array, p: int, h: int, w: int) -> jax.Array:
    """Inverse of `patchify`: (B, N, p*p*C) -> (B, H, W, C)."""
    b, _, d = tokens.shape
    c = d // (p * p)
    x = tokens.reshape(b, h // p, w // p, p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def _zeros_linear(din: int, dout: int, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(
        din, dout, kernel_init=nnx.initializers.zeros, bias_init=nnx.initializers.zeros, rngs=rngs
    )


def _modulate(x: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    return x * (1.0 + scale[:, None]) + shift[:, None]


class DiTBlock(nnx.Module):
    """Self-attention and MLP, each under adaLN-Zero conditioning on the timestep."""

    def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(dim, use_scale=False, use_bias=False, rngs=rngs)
        self.attn = Attention(dim, heads, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, use_scale=False, use_bias=False, rngs=rngs)
        self.fc1 = nnx.Linear(dim, 4 * dim, rngs=rngs)
        self.fc2 = nnx.Linear(4 * dim, dim, rngs=rngs)
        self.ada = _zeros_linear(dim, 6 * dim, rngs)  # adaLN-Zero: every block starts as identity

    def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
        s1, g1_scale, gate1, s2, g2_scale, gate2 = jnp.split(self.ada(nnx.silu(c)), 6, axis=-1)
        h = _modulate(self.norm1(x), s1, g1_scale)
        x = x + gate1[:, None] * self.attn(h, h)
        h = _modulate(self.norm2(x), s2, g2_scale)
        return x + gate2[:, None] * self.fc2(nnx.gelu(self.fc1(h)))


class DiT(nnx.Module):
    """The base: the residual flow's endpoint estimate, unconditional but for the timestep."""

    def __init__(
        self, *, tile: int, patch: int, dim: int, depth: int, heads: int, channels: int = 3, rngs: nnx.Rngs
    ):
        if tile % patch:
            raise ValueError(f"tile {tile} is not a multiple of the patch {patch}")
        self.tile, self.patch, self.dim = tile, patch, dim
        self.embed = nnx.Linear(patch * patch * channels, dim, rngs=rngs)
        self.positions = nnx.Variable(jnp.asarray(sincos_positions(tile // patch, tile // patch, dim)))
        self.t_fc1 = nnx.Linear(128, dim, rngs=rngs)
        self.t_fc2 = nnx.Linear(dim, dim, rngs=rngs)
        self.blocks = nnx.List([DiTBlock(dim, heads, rngs=rngs) for _ in range(depth)])
        self.final_norm = nnx.LayerNorm(dim, use_scale=False, use_bias=False, rngs=rngs)
        self.final_ada = _zeros_linear(dim, 2 * dim, rngs)
        self.final = _zeros_linear(dim, patch * patch * channels, rngs)

    def time_embedding(self, t: jax.Array) -> jax.Array:
        return self.t_fc2(nnx.silu(self.t_fc1(timestep_features(t))))

    def tokens(self, x: jax.Array) -> jax.Array:
        return self.embed(patchify(x, self.patch)) + self.positions[...][None]

    def head(self, h: jax.Array, c: jax.Array, hw: tuple[int, int]) -> jax.Array:
        shift, scale = jnp.split(self.final_ada(nnx.silu(c)), 2, axis=-1)
        return unpatchify(self.final(_modulate(self.final_norm(h), shift, scale)), self.patch, *hw)

    def __call__(self, x: jax.Array, t: jax.Array, control: list[jax.Array] | None = None) -> jax.Array:
        """(B, tile, tile, C) noisy residual and (B,) t -> endpoint; `control[i]` (if given)
        is added to the tokens after block i."""
        c = self.time_embedding(t)
        h = self.tokens(x)
        for i, block in enumerate(self.blocks):
            h = block(h, c)
            if control is not None and i < len(control):
                h = h + control[i]
        return self.head(h, c, x.shape[1:3])


class ControlBranch(nnx.Module):
    """A trainable copy of the base's first blocks, fed the low-quality frame."""

    def __init__(self, base: DiT, blocks: int, *, rngs: nnx.Rngs):
        dim, p = base.dim, base.patch
        self.cond_embed = nnx.Linear(p * p * 3, dim, rngs=rngs)
        self.cond_zero = _zeros_linear(dim, dim, rngs)
        self.blocks = nnx.List([_own_copy(b) for b in base.blocks[:blocks]])
        self.out_zero = nnx.List([_zeros_linear(dim, dim, rngs) for _ in range(blocks)])

    def __call__(self, base: DiT, x: jax.Array, t: jax.Array, cond: jax.Array) -> list[jax.Array]:
        c = base.time_embedding(t)
        h = base.tokens(x) + self.cond_zero(self.cond_embed(patchify(cond, base.patch)))
        outs = []
        for block, zero in zip(self.blocks, self.out_zero, strict=True):
            h = block(h, c)
            outs.append(zero(h))
        return outs


class LpmControl(nnx.Module):
    """Base + ControlNet: the conditional endpoint ``r_hat(x_t, t | lq)``.

    `cond` is the anchor image (the low-quality frame brought to the output size),
    centred on 0.5 so the zero-initialised projection starts from a balanced input.
    ``anchor_channels > 0`` adds the frozen regression anchor (`ResidualSR` with that
    width and `anchor_blocks` blocks; its weights come from a trained enhance model,
    `load_anchor` in the task).
    """

    def __init__(
        self,
        *,
        scale: int,
        tile: int,
        patch: int,
        dim: int,
        depth: int,
        heads: int,
        control_blocks: int,
        residual_scale: float,
        anchor_channels: int = 0,
        anchor_blocks: int = 4,
        rngs: nnx.Rngs,
    ):
        self.scale, self.residual_scale = scale, residual_scale
        self.base = DiT(tile=tile * scale, patch=patch, dim=dim, depth=depth, heads=heads, rngs=rngs)
        self.control = ControlBranch(self.base, control_blocks, rngs=rngs)
        self.anchor = (
            ResidualSR(scale=scale, channels=anchor_channels, blocks=anchor_blocks, rngs=rngs)
            if anchor_channels
            else None
        )

    def upsampled(self, lq: jax.Array) -> jax.Array:
        """The anchor image the residual is measured from."""
        return anchor_image(self.anchor, lq, self.scale)

    def endpoint(self, x: jax.Array, t: jax.Array, up: jax.Array) -> jax.Array:
        return self.base(x, t, self.control(self.base, x, t, up - 0.5))

    def velocity(self, x: jax.Array, t: jax.Array, up: jax.Array) -> jax.Array:
        return velocity_from_endpoint(self.endpoint(x, t, up), x, t)

    def __call__(self, lq: jax.Array, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The exported sampler step: (endpoint estimate, the frame it implies)."""
        up = self.upsampled(lq)
        endpoint = self.endpoint(x, t, up)
        return endpoint, jnp.clip(up + self.residual_scale * endpoint, 0.0, 1.0)


class LpmDistill(nnx.Module):
    """Consistency distillation: the student, its EMA target and the frozen teacher.

    All three are `LpmControl`s loaded from the trained teacher (`load_teacher`); only
    the student is optimised (`_distill_trainable`: the MoCo pattern, the others' Params
    ride along untouched by the optimiser), the target follows the student by EMA, and
    the student is what gets exported.
    """

    def __init__(self, *, ema: float, rngs: nnx.Rngs, **control_kwargs: Any):
        self.ema = ema
        self.student = LpmControl(rngs=rngs, **control_kwargs)
        self.target = _own_copy(self.student)
        self.teacher = _own_copy(self.student)

    def load_teacher(self, teacher: LpmControl) -> None:
        state = nnx.state(teacher)
        for copy in (self.student, self.target, self.teacher):  # own buffers each (donation)
            nnx.update(copy, jax.tree.map(jnp.copy, state))

    def update_target(self) -> None:
        ema_update(self.target, self.student, self.ema)


def _own_copy(module: nnx.Module) -> nnx.Module:
    """A clone with its own array buffers (a plain clone shares them, and the trainer
    donates every buffer of the state once per step)."""
    copy = nnx.clone(module)
    nnx.update(copy, jax.tree.map(jnp.copy, nnx.state(copy)))
    return copy


def anchor_image(anchor: nnx.Module | None, lq: jax.Array, scale: int) -> jax.Array:
    """The regression anchor's output, or bilinear upsampling where there is none."""
    if anchor is not None:
        return anchor(lq)
    return upsample_bilinear(lq, scale) if scale > 1 else lq


def student_endpoint(model: LpmControl, x: jax.Array, t: jax.Array, up: jax.Array) -> jax.Array:
    """The consistency function f(x, t): the model's endpoint estimate, and x itself at
    t = 1 (the boundary condition: at the data end there is nothing left to move)."""
    return jnp.where((t >= 1.0)[:, None, None, None], x, model.endpoint(x, t, up))


T_GAP = 0.05  # the smallest 1 - t a velocity is divided by (JiT's clip): finite near t = 1


def velocity_from_endpoint(endpoint: jax.Array, x: jax.Array, t: jax.Array) -> jax.Array:
    """v = (r_hat - x_t) / (1 - t), the rectified flow's velocity implied by an endpoint."""
    return (endpoint - x) / jnp.maximum(1.0 - t, T_GAP)[:, None, None, None]


# -- model families ---------------------------------------------------------------------------

_ARCH = {"scale": 2, "tile": 32, "patch": 4, "dim": 128, "depth": 6, "heads": 4}


def _base_io(scale: int, tile: int, **_: Any) -> ModelIO:
    side = tile * scale
    return ModelIO(
        inputs=[
            TensorSpec("x", "float32", ("B", side, side, 3)),
            TensorSpec("t", "float32", ("B",)),
        ],
        outputs=[TensorSpec("endpoint", "float32", ("B", side, side, 3))],
    )


def _sampler_io(scale: int, tile: int, residual_scale: float, steps: int = 25, **_: Any) -> ModelIO:
    side = tile * scale
    return ModelIO(
        inputs=[
            TensorSpec("image", "float32", ("B", tile, tile, 3)),
            TensorSpec("x", "float32", ("B", side, side, 3)),
            TensorSpec("t", "float32", ("B",)),
        ],
        outputs=[
            TensorSpec("endpoint", "float32", ("B", side, side, 3)),
            TensorSpec("output", "float32", ("B", side, side, 3)),
        ],
        preprocessing={
            **sr_preprocessing(scale),
            "tile": tile,
            "residual_scale": residual_scale,
            "sampler": {"kind": "euler", "steps": steps},
        },
    )


def _base_trainable(path, value) -> bool:
    return isinstance(value, nnx.Param)


def _control_trainable(path, value) -> bool:
    """ControlNet training: the base stays frozen, only the control branch learns."""
    return isinstance(value, nnx.Param) and path[0] == "control"


def _distill_trainable(path, value) -> bool:
    """Distillation trains the student's DiT and control branch; its anchor stays frozen."""
    return isinstance(value, nnx.Param) and path[0] == "student" and path[1] != "anchor"


# FP8 takes the transformer's matmuls (nearly all the FLOPs); the regression anchor's convs
# stay float: that small CNN cancels large features into a small detail image, and one of
# its convs in E4M3 alone moved vq-enhance-x2's output by 3.6 grey levels on average (all
# ten: 11; fp16: 0.04).
TRANSFORMER_OPS = frozenset({"MatMul", "Gemm"})

_CONTROL_DEFAULTS = {
    **_ARCH,
    "control_blocks": 3,
    "residual_scale": RESIDUAL_SCALE,
    "anchor_channels": 0,
    "anchor_blocks": 4,
}

LPM_BASE = ModelDef(
    build=lambda *, rngs, scale, tile, **kw: DiT(tile=tile * scale, rngs=rngs, **kw),
    io=_base_io,
    defaults=dict(_ARCH),
    summary="LPM base: DiT rectified-flow generator of high-quality residual patches",
    trainable=_base_trainable,
)
LPM_CONTROL = ModelDef(
    build=lambda *, rngs, **kw: LpmControl(rngs=rngs, **kw),
    io=_sampler_io,
    defaults=dict(_CONTROL_DEFAULTS),
    summary="LPM: frozen DiT base + ControlNet on the low-quality frame (multi-step sampler)",
    trainable=_control_trainable,
    fp8_op_types=TRANSFORMER_OPS,
)
LPM_DISTILL = ModelDef(
    build=lambda *, rngs, **kw: LpmDistill(rngs=rngs, **kw),
    io=lambda ema, **kw: _sampler_io(**kw),
    defaults={**_CONTROL_DEFAULTS, "ema": 0.95},
    summary="LPM consistency distillation: one-step student, EMA target, frozen teacher",
    trainable=_distill_trainable,
    exports=lambda ema, **kw: ("student", "lpm_student", kw),
    fp8_op_types=TRANSFORMER_OPS,
)
# The distilled student: the same network as the ControlNet pair, sampled in one step.
LPM_STUDENT = ModelDef(
    build=lambda *, rngs, **kw: LpmControl(rngs=rngs, **kw),
    io=lambda **kw: _sampler_io(**kw, steps=1),
    defaults=dict(_CONTROL_DEFAULTS),
    summary="LPM one-step student (consistency-distilled ControlNet pair)",
    fp8_op_types=TRANSFORMER_OPS,
)


def build_control_from_base(base: DiT, **control_kwargs: Any) -> LpmControl:
    """A ControlNet model whose base (and the control copy's blocks) start from `base`."""
    model = create_model("lpm_control", **control_kwargs)
    state = nnx.state(base, nnx.Param)
    nnx.update(model.base, state)
    blocks = nnx.state(base.blocks, nnx.Param)
    for i, block in enumerate(model.control.blocks):  # a copy: its own buffers (donation)
        nnx.update(block, jax.tree.map(jnp.copy, blocks[i]))
    return model
