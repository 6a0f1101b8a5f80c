"""The learned audio fingerprint network: a 1 s log-mel window to a unit vector.

Input (B, 100, 64): 100 frames of 64 log-mel bands (`vq.stages.audio_fingerprint.mel_windows`).
Each band's mean over the window is removed first (a fixed EQ or gain is a constant per
band in log energy, so it cancels), then the window is scaled to unit spread. Four
strided 3x3 convolutions (time and frequency halve each time) and a mean over time keep
where in frequency things happen; a linear layer maps that to a `dim`-d unit vector.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from vq.models import TensorSpec
from vq.train.models import ModelDef, ModelIO

FRAMES, BANDS = 100, 64


class AudioFingerprintNet(nnx.Module):
    def __init__(self, *, width: int = 32, dim: int = 128, rngs: nnx.Rngs):
        chans = [1, width, 2 * width, 4 * width, 4 * width]
        self.convs = nnx.List(
            [nnx.Conv(chans[k], chans[k + 1], (3, 3), strides=(2, 2), rngs=rngs) for k in range(4)]
        )
        self.norms = nnx.List([nnx.LayerNorm(chans[k + 1], rngs=rngs) for k in range(4)])
        bands = BANDS
        for _ in range(4):
            bands = (bands + 1) // 2
        self.head = nnx.Linear(bands * chans[-1], dim, rngs=rngs)

    def __call__(self, mel: jax.Array) -> jax.Array:
        x = mel - mel.mean(axis=1, keepdims=True)  # per-band mean over time: EQ and gain cancel
        x = x / (jnp.sqrt((x * x).mean(axis=(1, 2), keepdims=True)) + 1e-3)
        x = x[..., None]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = jax.nn.gelu(norm(conv(x)))
        x = x.mean(axis=1)  # over time: (B, bands, C)
        x = self.head(x.reshape(x.shape[0], -1))
        return x / jnp.sqrt((x * x).sum(axis=-1, keepdims=True) + 1e-12)


def _io(dim: int, **_: Any) -> ModelIO:
    return ModelIO(
        inputs=[TensorSpec("mel", "float32", ("B", FRAMES, BANDS))],
        outputs=[TensorSpec("vector", "float32", ("B", dim))],
        preprocessing={
            "input": "64 log-mel bands (25 ms windows, 10 ms hop, 16 kHz), 1 s windows every 0.5 s",
            "features": "vq.stages.audio_fingerprint.log_mel + mel_windows",
        },
    )


AUDIO_FP = ModelDef(
    build=lambda *, rngs, **kw: AudioFingerprintNet(rngs=rngs, **kw),
    io=_io,
    defaults={"width": 32, "dim": 128},
    summary="learned audio fingerprint: 4 strided convs over a 1 s log-mel window, unit vector",
)
