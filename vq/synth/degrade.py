"""Degradation chains: what happens to a video between the camera and a viewer's screen.

The quality seed trains KVQ without human labels on clips put through "online-like"
multi-stage degradation and encoding chains. A `Degradation` is one stage (a kind and its
parameters, JSON-serialisable, a pure function of them and its seed) applied to a whole
clip, uint8 ``(T, H, W, 3)`` in, the same shape out. A `Chain` is several stages in a
random order and depth; applying it returns the clip after each stage, so the levels of
one chain are ordered by construction (level k+1 is level k degraded once more), the
relative labels the seed's label-free training uses.

Kinds, each drawn at a random severity:

* ``encode``      a real encode and decode: x264 / x265 / SVT-AV1 at a CRF or a bitrate
                  (bits per pixel, so a ladder means the same at any size), fast presets,
                  two-pass for x264 / x265 at a bitrate;
* ``rescale``     down by 0.25-0.75 and back up (an upload's resize, a player's upscale),
                  with a random pair of filters;
* ``blur``        Gaussian (out of focus, a soft lens);
* ``noise``       sensor noise, stronger in the shadows, fresh every frame;
* ``grain``       film grain: spatially correlated noise;
* ``ringing``     a hard low-pass (Gibbs ringing around edges, as a bad scaler leaves);
* ``banding``     too few tone levels (8-bit pipelines, heavy denoising);
* ``frame_drop``  dropped frames shown by holding the previous one;
* ``stutter``     periodic freezes of several frames (a struggling phone or stream);
* ``motion_blur`` a linear blur along one direction (camera shake, long exposure);
* ``sharpen``     over-sharpening with halos (beauty filters, phone pipelines);
* ``color``       a colour cast, washed-out or crushed contrast, wrong saturation;
* ``rung``        an encoding ladder's rung as a viewer sees it: scaled to a share of the
                  height (bicubic), encoded with x264's search preset at a CRF, decoded and
                  scaled back to the display (bicubic, as players do). Never drawn into a
                  random chain: the quality set builds a grid of them per source
                  (`vq.synth.quality_data.build_rungs`).

Everything is seeded: `random_chain(rng, ...)` draws the stages, and the same chain on
the same clip gives the same frames (encoders run with fixed settings; ``rung`` is the one
exception measured, see it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from vq.errors import UsageError

Clip = np.ndarray  # uint8 (T, H, W, 3)


@dataclass(frozen=True)
class Degradation:
    """One stage: `kind` and its parameters (JSON-serialisable)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def apply(self, clip: Clip, fps: float) -> Clip:
        try:
            fn = KINDS[self.kind].apply
        except KeyError:
            raise UsageError(f"unknown degradation {self.kind!r} (choose from {', '.join(KINDS)})") from None
        params = dict(self.params)
        span = params.pop("span", None)
        if span is None:
            out = fn(clip, fps, **params)
        else:  # only frames [a, b) of the clip; the stage sees just that stretch
            a, b = (round(v * len(clip)) for v in span)
            out = clip.copy()
            if b > a:
                out[a:b] = fn(clip[a:b], fps, **params)
        if out.shape != clip.shape or out.dtype != np.uint8:
            raise AssertionError(f"{self.kind} returned {out.dtype} {out.shape} for {clip.shape}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Degradation:
        data = dict(data)
        return cls(data.pop("kind"), data)

    def describe(self) -> str:
        return self.kind + "(" + ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "seed") + ")"


@dataclass(frozen=True)
class Chain:
    """Stages applied in order; `levels` gives the clip after each one."""

    stages: tuple[Degradation, ...]

    def levels(self, clip: Clip, fps: float) -> list[Clip]:
        out, current = [], clip
        for stage in self.stages:
            current = stage.apply(current, fps)
            out.append(current)
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.stages]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Chain:
        return cls(tuple(Degradation.from_json(d) for d in data))

    def describe(self) -> str:
        return " > ".join(s.describe() for s in self.stages)


# -- the kinds: apply(clip, fps, **params) and draw(rng, severity) -> params ---------------------


def _per_frame(clip: Clip, fn: Callable[[Image.Image], Image.Image]) -> Clip:
    return np.stack([np.asarray(fn(Image.fromarray(f))) for f in clip])


def _to_uint8(x: np.ndarray) -> Clip:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def encode(clip, fps, codec, preset, crf=None, bpp=None, two_pass=False, **_):
    from vq.media.encode import encode_roundtrip

    _t, h, w, _c = clip.shape
    bitrate = None if bpp is None else max(16_000, int(bpp * w * h * fps))
    out, _size = encode_roundtrip(
        clip, fps, codec=codec, crf=crf, bitrate=bitrate, preset=preset, two_pass=two_pass
    )
    return out


# CRF ranges from "good" to "very poor" per encoder (SVT-AV1's scale runs to 63).
CRF_RANGE = {"h264": (20, 46), "hevc": (22, 46), "av1": (30, 60)}
PRESETS = {
    "h264": ["ultrafast", "superfast", "veryfast", "faster", "fast"],
    "hevc": ["ultrafast", "superfast", "veryfast"],
    "av1": ["10", "11", "12"],
}


def draw_encode(rng, s):
    codec = str(rng.choice(["h264", "h264", "hevc", "av1"]))
    params: dict[str, Any] = {"codec": codec, "preset": str(rng.choice(PRESETS[codec]))}
    if codec != "av1" and rng.random() < 0.4:  # a bitrate ladder rung, in bits per pixel
        params["bpp"] = round(float(0.25 * math.exp(-4.0 * s)), 4)  # 0.25 .. 0.005
        params["two_pass"] = bool(rng.random() < 0.5)
    else:
        lo, hi = CRF_RANGE[codec]
        params["crf"] = round(lo + (hi - lo) * s)
    return params


RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "box": Image.BOX}


def rescale(clip, fps, factor, down="bilinear", up="bilinear", **_):
    h, w = clip.shape[1:3]
    small = (max(8, round(w * factor)), max(8, round(h * factor)))
    return _per_frame(clip, lambda im: im.resize(small, RESAMPLE[down]).resize((w, h), RESAMPLE[up]))


def draw_rescale(rng, s):
    return {
        "factor": round(0.75 - 0.5 * s, 3),
        "down": str(rng.choice(list(RESAMPLE))),
        "up": str(rng.choice(["nearest", "bilinear", "bicubic"])),
    }


def blur(clip, fps, sigma, **_):
    return _per_frame(clip, lambda im: im.filter(ImageFilter.GaussianBlur(sigma)))


def noise(clip, fps, sigma, seed, **_):
    rng = np.random.default_rng(seed)
    x = clip.astype(np.float32)
    # Shot noise grows with the signal, read noise does not; phones brighten the shadows,
    # so what is seen is strongest in dark areas. Luma-dependent std, fresh per frame.
    luma = x.mean(axis=-1, keepdims=True) / 255.0
    std = sigma * (1.3 - 0.6 * luma)
    return _to_uint8(x + rng.standard_normal(x.shape, dtype=np.float32) * std)


def draw_noise(rng, s):
    return {"sigma": round(2.0 + 22.0 * s, 2), "seed": int(rng.integers(2**31))}


def grain(clip, fps, sigma, size, seed, **_):
    rng = np.random.default_rng(seed)
    t, h, w, _c = clip.shape
    # Grain is blobs, not pixels: noise at 1/size resolution, upsampled smoothly; mono.
    small = rng.standard_normal((t, max(2, h // size), max(2, w // size)), dtype=np.float32)
    field_ = np.stack([np.asarray(Image.fromarray(g).resize((w, h), Image.BICUBIC)) for g in small])
    field_ *= sigma / (field_.std() + 1e-6)
    return _to_uint8(clip.astype(np.float32) + field_[..., None])


def draw_grain(rng, s):
    return {
        "sigma": round(3.0 + 17.0 * s, 2),
        "size": int(rng.integers(2, 4)),
        "seed": int(rng.integers(2**31)),
    }


def ringing(clip, fps, cutoff, **_):
    # Zero every spatial frequency above `cutoff` (a fraction of Nyquist): the sinc
    # kernel this amounts to rings around every edge.
    _t, h, w, _c = clip.shape
    spectrum = np.fft.rfft2(clip.astype(np.float32), axes=(1, 2))
    fy = np.abs(np.fft.fftfreq(h))[:, None] * 2
    fx = np.fft.rfftfreq(w)[None, :] * 2
    keep = (fy <= cutoff) & (fx <= cutoff)
    return _to_uint8(np.fft.irfft2(spectrum * keep[None, :, :, None], s=(h, w), axes=(1, 2)))


def banding(clip, fps, levels, **_):
    step = 256.0 / levels
    return _to_uint8((np.floor(clip.astype(np.float32) / step) + 0.5) * step)


def frame_drop(clip, fps, rate, seed, **_):
    rng = np.random.default_rng(seed)
    keep = rng.random(len(clip)) >= rate
    keep[0] = True
    # Each frame shows the last kept frame at or before it.
    source = np.maximum.accumulate(np.where(keep, np.arange(len(clip)), 0))
    return clip[source]


def stutter(clip, fps, freeze, period, seed, **_):
    rng = np.random.default_rng(seed)
    t = len(clip)
    index = np.arange(t)
    start = int(rng.integers(0, max(1, period)))
    for s in range(start, t, period):  # one frozen run per period (a handful per clip)
        index[s : s + freeze] = s
    return clip[index]


def motion_blur(clip, fps, length, angle, **_):
    # The mean of `length` copies shifted along one direction (edge-padded).
    dy, dx = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    offsets = [
        (round(k * dy), round(k * dx)) for k in np.linspace(-(length - 1) / 2, (length - 1) / 2, length)
    ]
    pad = math.ceil((length - 1) / 2) + 1
    _t, h, w, _c = clip.shape
    padded = np.pad(clip.astype(np.float32), ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    acc = np.zeros(clip.shape, np.float32)
    for oy, ox in offsets:
        acc += padded[:, pad + oy : pad + oy + h, pad + ox : pad + ox + w]
    return _to_uint8(acc / length)


def sharpen(clip, fps, amount, radius, **_):
    f = ImageFilter.UnsharpMask(radius=radius, percent=int(amount * 100), threshold=0)
    return _per_frame(clip, lambda im: im.filter(f))


def color(clip, fps, gain, gamma, contrast, saturation, **_):
    x = clip.astype(np.float32) / 255.0
    x = np.power(np.clip(x * np.asarray(gain, np.float32), 0, 1), gamma)
    grey = x.mean(axis=-1, keepdims=True)
    x = grey + (x - grey) * saturation
    x = (x - 0.5) * contrast + 0.5
    return _to_uint8(x * 255.0)


def draw_color(rng, s):
    cast = rng.normal(0, 0.25 * s, 3)
    return {
        "gain": [round(float(math.exp(c)), 3) for c in cast],
        "gamma": round(float(math.exp(rng.choice([-1, 1]) * 0.6 * s)), 3),
        "contrast": round(float(1.0 + rng.choice([-0.6, 0.5]) * s), 3),
        "saturation": round(float(1.0 + rng.choice([-0.9, 1.0]) * s), 3),
    }


def rung(clip, fps, height, crf, codec="h264", preset="veryfast", **_):
    # Not bit-exact from run to run with x264's veryfast (the ladder's search preset, kept
    # so the rungs look like the ladder's), even with one thread. Measured on AVX-512 Zen 4:
    # a 170x96 rung's round trip differed 3 of 60 times idle and 6 of 60 with both cores
    # busy (timing-dependent); 3 of 60 at 64x42 with veryfast, 0 of 60 with faster; 0 of 20
    # at 256x144 to 512x288. It is the encode: 80 encodes of one input gave 3 different
    # packet streams, while the RGB->YUV conversion (200 runs) and the decode never
    # varied. Cause inside x264 not found; `encode` draws veryfast too, not measured.
    # Rungs are built once, cached, and labelled with VMAF on the frames saved, so the
    # labels always describe the pixels trained on.
    from vq.media.encode import encode_roundtrip
    from vq.preprocess.resize import resize

    h, w = clip.shape[1:3]
    small = (max(16, round(w * height / 2) * 2), max(16, round(h * height / 2) * 2))
    scaled = clip if small == (w, h) else resize(clip, small, "bicubic")
    out, _size = encode_roundtrip(scaled, fps, codec=codec, crf=crf, preset=preset)
    return out if small == (w, h) else resize(out, (w, h), "bicubic")


# The default ladder's heights (`vq.pipelines.ladder.default_heights`), as shares.
RUNG_HEIGHTS = (1.0, 0.667, 0.5)


def draw_rung(rng, s):
    return {"height": float(rng.choice(RUNG_HEIGHTS)), "crf": round(16 + 26 * s)}


@dataclass(frozen=True)
class Kind:
    apply: Callable[..., Clip]
    draw: Callable[[np.random.Generator, float], dict[str, Any]]
    temporal: bool = False  # visible only over several frames
    random: bool = True  # drawn into random chains and stages


KINDS: dict[str, Kind] = {
    "encode": Kind(encode, draw_encode),
    "rescale": Kind(rescale, draw_rescale),
    "blur": Kind(blur, lambda rng, s: {"sigma": round(0.6 + 3.4 * s, 2)}),
    "noise": Kind(noise, draw_noise),
    "grain": Kind(grain, draw_grain),
    "ringing": Kind(ringing, lambda rng, s: {"cutoff": round(0.6 - 0.4 * s, 3)}),
    "banding": Kind(banding, lambda rng, s: {"levels": round(48 - 40 * s)}),
    "frame_drop": Kind(
        frame_drop,
        lambda rng, s: {"rate": round(0.1 + 0.4 * s, 3), "seed": int(rng.integers(2**31))},
        temporal=True,
    ),
    "stutter": Kind(
        stutter,
        lambda rng, s: {
            "freeze": round(3 + 9 * s),
            "period": int(rng.integers(12, 20)),
            "seed": int(rng.integers(2**31)),
        },
        temporal=True,
    ),
    "motion_blur": Kind(
        motion_blur,
        lambda rng, s: {"length": round(3 + 14 * s), "angle": round(float(rng.uniform(0, 180)), 1)},
    ),
    "sharpen": Kind(
        sharpen, lambda rng, s: {"amount": round(1.0 + 3.0 * s, 2), "radius": round(1.0 + 2.0 * s, 2)}
    ),
    "color": Kind(color, draw_color),
    "rung": Kind(rung, draw_rung, random=False),
}
RANDOM_KINDS = [name for name, kind in KINDS.items() if kind.random]
# Stages that can add what VMAF reads as detail (edge contrast, global contrast): its VIF
# and ADM terms score them above their input, the "enhancement gain" VMAF NEG removes.
ENHANCING = ("sharpen", "color")


def random_stage(
    rng: np.random.Generator, kind: str | None = None, severity: float | None = None, span_share: float = 0.0
) -> Degradation:
    """One stage of `kind` (drawn when None) at `severity` in [0, 1] (drawn when None).
    With probability `span_share` a stage other than an encode covers only a stretch of
    the clip (30-70 % of it): distortions mixed in time, as a phone's auto-exposure or a
    stream's bad minute makes them."""
    kind = kind or str(rng.choice(RANDOM_KINDS))
    s = float(rng.uniform(0.15, 1.0) if severity is None else severity)
    params = KINDS[kind].draw(rng, s)
    if kind != "encode" and rng.random() < span_share:
        length = float(rng.uniform(0.3, 0.7))
        start = float(rng.uniform(0.0, 1.0 - length))
        params["span"] = [round(start, 3), round(start + length, 3)]
    return Degradation(kind, params)


def random_chain(
    rng: np.random.Generator,
    depth: tuple[int, int] = (1, 4),
    encode_last: float = 0.7,
    kinds: list[str] | None = None,
    span_share: float = 0.25,
) -> Chain:
    """A chain of `depth` distinct kinds in random order. With probability `encode_last`
    the chain ends in an encode, as nearly every upload does (the platform transcodes
    whatever arrives); an encode may also come earlier (the phone's own), so two-generation
    chains occur. A `span_share` of the other stages hit only part of the clip
    (`random_stage`)."""
    kinds = list(kinds or RANDOM_KINDS)
    n = int(rng.integers(depth[0], depth[1] + 1))
    chosen = [str(k) for k in rng.choice(kinds, size=min(n, len(kinds)), replace=False)]
    if "encode" in kinds and chosen[-1] != "encode" and rng.random() < encode_last:
        chosen = (chosen[1:] if len(chosen) > 1 else []) + ["encode"]
    return Chain(tuple(random_stage(rng, k, span_share=span_share) for k in chosen))
