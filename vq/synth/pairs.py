"""Low-/high-quality pairs for restoration training, made with the degradation engine.

A restorer trained only on bicubic-downscaled images learns to undo exactly one thing; an
upload has been blurred by a lens, brightened into noise and compressed at least once.
`lq_variants` therefore makes, per high-quality image, the clean low-resolution twin (the
benchmark's MATLAB-bicubic one where it exists) and `degraded` versions through a short
chain of the quality task's stages (`vq.synth.degrade`): optional blur before the
downscale, then sensor noise and a real H.264 / HEVC encode at a low-quality CRF, each
present at random. At ``scale = 1`` there is no downscale and the chain is the whole
restoration problem (deblock, denoise, deblur).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from vq.synth.degrade import Chain, Degradation, random_stage


@dataclass(frozen=True)
class LqVariant:
    image: np.ndarray  # uint8 (H/scale, W/scale, 3)
    chain: str  # what was done after (or around) the downscale; "clean" for none


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscale (Pillow's, close to MATLAB's imresize)."""
    if scale == 1:
        return hr
    h, w = hr.shape[:2]
    return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))


def degraded_chain(rng: np.random.Generator) -> tuple[Degradation | None, Chain]:
    """(blur before the downscale or None, stages after it): each stage present at random,
    at least one of them, the encode last as an upload's transcode."""
    while True:
        pre = (
            random_stage(rng, "blur", severity=float(rng.uniform(0.0, 0.35))) if rng.random() < 0.4 else None
        )
        post = []
        if rng.random() < 0.5:
            post.append(random_stage(rng, "noise", severity=float(rng.uniform(0.05, 0.5))))
        if rng.random() < 0.7:
            codec = str(rng.choice(["h264", "hevc"]))
            crf = int(rng.integers(24, 40))
            post.append(Degradation("encode", {"codec": codec, "preset": "veryfast", "crf": crf}))
        if pre is not None or post:
            return pre, Chain(tuple(post))


def lq_variants(
    hr: np.ndarray, scale: int, rng: np.random.Generator, degraded: int, clean: np.ndarray | None = None
) -> list[LqVariant]:
    """The clean LR twin (`clean`, or a bicubic downscale) and `degraded` chain versions."""
    out = [LqVariant(downscale(hr, scale) if clean is None else clean, "clean")]
    for _ in range(degraded):
        pre, chain = degraded_chain(rng)
        source = hr if pre is None else pre.apply(hr[None], 25.0)[0]
        lr = downscale(source, scale)[None]
        for stage in chain.stages:
            lr = stage.apply(lr, 25.0)
        what = " > ".join(
            ([pre.describe()] if pre else []) + [f"down x{scale}"] + [s.describe() for s in chain.stages]
        )
        out.append(LqVariant(lr[0], what))
    return out
