"""Deterministic video edits: the ways uploaders disguise copies, for training and evaluation.

The copy-detection seed lists what re-uploads do to hide a copy: black or white borders,
blur-fill padding, crops, templates (the same clip in a decorated frame with a title),
picture-in-picture, live-stream screen recordings with scrolling comments and chrome,
player screen recordings, watermarks, filters, blur, re-encoding and speed changes, often
stacked. Each is an `Edit` here:

* spatial edits transform one frame (`edit(image, t)`) and say where the source picture
  ends up (`map_box`), which is the ground truth the content-box detector is scored on;
* temporal edits (`Speed`, `FrameRate`, `Trim`) rewrite the timeline: which source time
  each output frame shows, from which evaluation derives matching segments.

`render()` streams a source video through a list of edits into a new file, frame by
frame (memory does not grow with duration), and returns an `EditRecord` with the
content box and the time mapping. `random_edit(family, rng, ...)` draws an edit with
random parameters; everything is a function of its parameters and the seed, so an
evaluation set rebuilt from the same seed is identical.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from vq.errors import UsageError

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), in output pixels

WORDS = (
    "wow",
    "666",
    "lol",
    "first",
    "nice",
    "haha",
    "replay",
    "omg",
    "gg",
    "cool",
    "up!",
    "love it",
    "again",
    "legend",
    "no way",
    "2x speed",
    "same",
    "hello",
    "+1",
    "awesome",
)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, int(size)))


def _rng(seed: int, t: float) -> np.random.Generator:
    """Per-frame randomness that depends only on (seed, time)."""
    return np.random.default_rng((seed, round(t * 1000)))


def _fit(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize with Pillow's antialiased bilinear filter."""
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return np.asarray(Image.fromarray(image).resize((max(1, w), max(1, h)), Image.BILINEAR))


def _paste(canvas: np.ndarray, image: np.ndarray, window: Box) -> np.ndarray:
    """`image` fitted into `window` of `canvas` (in place); the canvas is returned."""
    x0, y0, x1, y1 = window
    canvas[y0:y1, x0:x1] = _fit(image, x1 - x0, y1 - y0)
    return canvas


def _solid_canvas(width: int, height: int, color: tuple[int, int, int]) -> np.ndarray:
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = color
    return canvas


def _into_window(box: Box, size: tuple[int, int], window: Box) -> Box:
    """Where `box` of a (w, h) frame lands when the frame is scaled into `window`."""
    x0, y0, x1, y1 = window
    sx, sy = (x1 - x0) / size[0], (y1 - y0) / size[1]
    bx0, by0, bx1, by1 = box
    return x0 + round(bx0 * sx), y0 + round(by0 * sy), x0 + round(bx1 * sx), y0 + round(by1 * sy)


def _clip_box(box: Box, w: int, h: int) -> Box:
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


class Edit:
    """Base: identity in space and time. Subclasses override what they change."""

    family = "identity"

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        return image

    def map_box(self, box: Box, size: tuple[int, int]) -> tuple[Box, tuple[int, int]]:
        """Where the source picture (`box` inside a frame of `size`) lands after this edit."""
        return box, size

    def describe(self) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {
            "family": self.family,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items() if _jsonable(v)},
        }


def _jsonable(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool, tuple, list)) or v is None


# -- geometry ---------------------------------------------------------------------------


@dataclass
class Border(Edit):
    """Solid bars of one colour (black, white, any) around the picture."""

    top: int
    bottom: int
    left: int
    right: int
    color: tuple[int, int, int] = (0, 0, 0)
    family = "border"

    def __call__(self, image, t):
        h, w = image.shape[:2]
        out = np.empty((h + self.top + self.bottom, w + self.left + self.right, 3), np.uint8)
        out[:] = self.color
        out[self.top : self.top + h, self.left : self.left + w] = image
        return out

    def map_box(self, box, size):
        x0, y0, x1, y1 = box
        return (
            (x0 + self.left, y0 + self.top, x1 + self.left, y1 + self.top),
            (size[0] + self.left + self.right, size[1] + self.top + self.bottom),
        )


@dataclass
class BlurFill(Edit):
    """The picture fitted inside a canvas whose padding is a blurred, enlarged copy of it
    (how landscape clips are posted to portrait feeds)."""

    width: int
    height: int
    sigma: float = 12.0
    darken: float = 0.8
    family = "blur_fill"

    def _layout(self, w: int, h: int) -> Box:
        scale = min(self.width / w, self.height / h)
        fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
        x0, y0 = (self.width - fw) // 2, (self.height - fh) // 2
        return x0, y0, x0 + fw, y0 + fh

    def __call__(self, image, t):
        h, w = image.shape[:2]
        cover = max(self.width / w, self.height / h)
        bw, bh = math.ceil(w * cover), math.ceil(h * cover)
        bg = Image.fromarray(image).resize((bw, bh), Image.BILINEAR)
        bx, by = (bw - self.width) // 2, (bh - self.height) // 2
        bg = bg.crop((bx, by, bx + self.width, by + self.height)).filter(ImageFilter.GaussianBlur(self.sigma))
        out = (np.asarray(bg, np.float32) * self.darken).astype(np.uint8)
        return _paste(out, image, self._layout(w, h))

    def map_box(self, box, size):
        return _into_window(box, size, self._layout(*size)), (self.width, self.height)


@dataclass
class Crop(Edit):
    """Keep the fractional rectangle (x0, y0, x1, y1) of the frame."""

    x0: float
    y0: float
    x1: float
    y1: float
    family = "crop"

    def _pixels(self, w, h) -> Box:
        return (
            round(self.x0 * w),
            round(self.y0 * h),
            max(round(self.x0 * w) + 2, round(self.x1 * w)),
            max(round(self.y0 * h) + 2, round(self.y1 * h)),
        )

    def __call__(self, image, t):
        x0, y0, x1, y1 = self._pixels(image.shape[1], image.shape[0])
        return image[y0:y1, x0:x1]

    def map_box(self, box, size):
        x0, y0, x1, y1 = self._pixels(*size)
        bx0, by0, bx1, by1 = box
        new = (bx0 - x0, by0 - y0, bx1 - x0, by1 - y0)
        return _clip_box(new, x1 - x0, y1 - y0), (x1 - x0, y1 - y0)


@dataclass
class Scale(Edit):
    """Resize to (width, height): aspect changes, low-resolution copies."""

    width: int
    height: int
    family = "scale"

    def __call__(self, image, t):
        return _fit(image, self.width, self.height)

    def map_box(self, box, size):
        return _into_window(box, size, (0, 0, self.width, self.height)), (self.width, self.height)


@dataclass
class PictureInPicture(Edit):
    """The clip in a window over another (moving) video or a still image."""

    background: Any  # a BackgroundSource (video) or a uint8 image
    rect: Box  # where the clip goes, in background pixels
    frame_px: int = 0
    frame_color: tuple[int, int, int] = (255, 255, 255)
    family = "picture_in_picture"

    def __call__(self, image, t):
        bg = self.background(t) if callable(self.background) else self.background
        out = np.array(bg, copy=True)
        x0, y0, x1, y1 = self.rect
        if self.frame_px:
            f = self.frame_px
            out[max(0, y0 - f) : y1 + f, max(0, x0 - f) : x1 + f] = self.frame_color
        return _paste(out, image, self.rect)

    def map_box(self, box, size):
        bg_h, bg_w = self._bg_shape()
        return _into_window(box, size, self.rect), (bg_w, bg_h)

    def _bg_shape(self) -> tuple[int, int]:
        bg = self.background(0.0) if callable(self.background) else self.background
        return bg.shape[0], bg.shape[1]


@dataclass
class Template(Edit):
    """A decorated page: gradient background, title text, the clip in a window, captions."""

    width: int
    height: int
    rect: Box
    title: str = "MUST WATCH"
    colors: tuple[tuple[int, int, int], tuple[int, int, int]] = ((30, 30, 90), (200, 80, 40))
    family = "template"

    def _page(self) -> np.ndarray:
        if not hasattr(self, "_cache"):
            a, b = np.asarray(self.colors[0], np.float32), np.asarray(self.colors[1], np.float32)
            ramp = np.linspace(0, 1, self.height, dtype=np.float32)[:, None, None]
            page = (a * (1 - ramp) + b * ramp).repeat(self.width, axis=1).astype(np.uint8)
            im = Image.fromarray(page)
            draw = ImageDraw.Draw(im)
            _, y0, _, y1 = self.rect
            size = max(12, y0 // 2) if y0 > 24 else max(12, self.height // 14)
            draw.text(
                (self.width // 2, max(4, y0 // 2)),
                self.title,
                font=_font(size),
                fill=(255, 255, 255),
                anchor="mm",
            )
            caption_y = min(self.height - 4, y1 + (self.height - y1) // 2)
            draw.text(
                (self.width // 2, caption_y),
                "like + follow for part 2",
                font=_font(size * 0.6),
                fill=(255, 240, 120),
                anchor="mm",
            )
            self._cache = np.asarray(im)
        return self._cache

    def __call__(self, image, t):
        return _paste(self._page().copy(), image, self.rect)

    def map_box(self, box, size):
        return _into_window(box, size, self.rect), (self.width, self.height)


@dataclass
class LiveStreamChrome(Edit):
    """A live-stream room recording: header bar, gift banner, chat panel with scrolling
    messages beside the clip, all moving while the clip plays."""

    width: int
    height: int
    rect: Box
    seed: int = 0
    family = "live_stream"

    def __call__(self, image, t):
        _, y0, x1, y1 = self.rect
        im = Image.fromarray(_paste(_solid_canvas(self.width, self.height, (18, 18, 24)), image, self.rect))
        draw = ImageDraw.Draw(im)
        font = _font(max(9, self.height // 30))
        draw.rectangle((0, 0, self.width, max(6, y0 - 2)), fill=(40, 20, 60))
        draw.text((8, 2), f"LIVE  {1200 + int(t * 37)} watching", font=font, fill=(255, 80, 120))
        rng = np.random.default_rng(self.seed)
        line_h = max(10, self.height // 24)
        panel_x = x1 + 6
        shift = int(t * line_h * 1.5)  # messages scroll up 1.5 lines per second
        for i in range(self.height // line_h + 2):
            k = i + shift // line_h
            y = y0 + i * line_h - shift % line_h
            word = WORDS[(k * 7 + int(rng.integers(100))) % len(WORDS)]
            if panel_x < self.width - 20:
                draw.text((panel_x, y), f"user{k % 97}: {word}", font=font, fill=(200, 200, 255))
        banner_x = int((t * 80) % (self.width + 200)) - 200
        draw.text((banner_x, y1 - line_h * 2), "sent a ROCKET x10", font=font, fill=(255, 200, 0))
        return np.asarray(im)

    def map_box(self, box, size):
        return _into_window(box, size, self.rect), (self.width, self.height)


@dataclass
class ScreenRecording(Edit):
    """A player recorded off a screen: window chrome, progress bar, cursor, soft focus and
    a gamma shift, as phone recordings of a monitor look."""

    width: int
    height: int
    rect: Box
    duration: float = 60.0
    gamma: float = 1.15
    family = "screen_recording"

    def __call__(self, image, t):
        x0, y0, x1, y1 = self.rect
        im = Image.fromarray(
            _paste(_solid_canvas(self.width, self.height, (236, 236, 240)), image, self.rect)
        )
        draw = ImageDraw.Draw(im)
        bar_y = min(self.height - 6, y1 + 6)
        draw.rectangle((x0, bar_y, x1, bar_y + 3), fill=(180, 180, 180))
        progress = x0 + int((x1 - x0) * min(1.0, t / max(self.duration, 1e-6)))
        draw.rectangle((x0, bar_y, progress, bar_y + 3), fill=(230, 40, 40))
        draw.text((x0, max(0, y0 - 16)), "Video Player - 1080p", font=_font(12), fill=(40, 40, 40))
        cx = x0 + int((x1 - x0) * (0.5 + 0.3 * math.sin(t)))
        cy = y0 + int((y1 - y0) * (0.5 + 0.3 * math.cos(t * 0.7)))
        cursor = [(cx, cy), (cx + 12, cy + 5), (cx + 5, cy + 12)]
        draw.polygon(cursor, fill=(255, 255, 255), outline=(0, 0, 0))
        im = im.filter(ImageFilter.GaussianBlur(0.8))
        arr = np.asarray(im, np.float32) / 255.0
        return np.clip(255.0 * arr**self.gamma, 0, 255).astype(np.uint8)

    def map_box(self, box, size):
        return _into_window(box, size, self.rect), (self.width, self.height)


@dataclass
class Rotate(Edit):
    """A small rotation (degrees, counter-clockwise) about the centre, corners filled black."""

    degrees: float
    family = "rotate"

    def __call__(self, image, t):
        return np.asarray(Image.fromarray(image).rotate(self.degrees, Image.BILINEAR, expand=False))

    def map_box(self, box, size):
        # The largest axis-aligned rectangle still all picture (no black corners).
        w, h = size
        a = math.radians(abs(self.degrees))
        s, c = abs(math.sin(a)), abs(math.cos(a))
        long_side, short_side = max(w, h), min(w, h)
        if short_side <= 2 * s * c * long_side or abs(s - c) < 1e-10:
            half = 0.5 * short_side
            iw, ih = (half / s, half / c) if w >= h else (half / c, half / s)
        else:
            iw, ih = (w * c - h * s) / (c * c - s * s), (h * c - w * s) / (c * c - s * s)
        iw, ih = max(2, min(w, int(iw))), max(2, min(h, int(ih)))
        return ((w - iw) // 2, (h - ih) // 2, (w + iw) // 2, (h + ih) // 2), size


@dataclass
class Flip(Edit):
    family = "flip"

    def __call__(self, image, t):
        return image[:, ::-1]

    def map_box(self, box, size):
        x0, y0, x1, y1 = box
        return (size[0] - x1, y0, size[0] - x0, y1), size


# -- overlays -----------------------------------------------------------------------------


@dataclass
class Watermark(Edit):
    """A semi-transparent text logo in a corner."""

    text: str = "@reposter"
    corner: str = "tr"
    opacity: float = 0.6
    scale: float = 0.06
    family = "watermark"

    def __call__(self, image, t):
        h, w = image.shape[:2]
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        font = _font(h * self.scale)
        left, top, right, bottom = draw.textbbox((0, 0), self.text, font=font)
        tw, th = right - left, bottom - top
        pad = max(4, h // 40)
        x = pad if self.corner[1] == "l" else w - tw - pad
        y = pad if self.corner[0] == "t" else h - th - pad * 2
        draw.text(
            (x, y),
            self.text,
            font=font,
            fill=(255, 255, 255, int(255 * self.opacity)),
            stroke_width=1,
            stroke_fill=(0, 0, 0, int(255 * self.opacity)),
        )
        return np.asarray(Image.alpha_composite(Image.fromarray(image).convert("RGBA"), layer).convert("RGB"))


@dataclass
class BulletComments(Edit):
    """Danmaku: comments scrolling right to left over the picture, in lanes."""

    lanes: int = 4
    speed: float = 0.25  # picture widths per second
    seed: int = 0
    family = "bullet_comments"

    def __call__(self, image, t):
        h, w = image.shape[:2]
        im = Image.fromarray(image)
        draw = ImageDraw.Draw(im)
        font = _font(max(9, h // 16))
        rng = np.random.default_rng(self.seed)
        lane_h = max(10, h // (self.lanes * 2 + 1))
        for lane in range(self.lanes):
            offset = rng.uniform(0, 1)
            for k in range(3):
                travel = 1.0 + offset + 0.6 * k - self.speed * t * (1 + 0.2 * lane)
                x = int(w * travel % (w * 1.8)) - int(w * 0.4)
                word = WORDS[(lane * 5 + k * 3 + int(rng.integers(100))) % len(WORDS)]
                draw.text(
                    (x, lane_h * (1 + 2 * lane)),
                    word,
                    font=font,
                    fill=(255, 255, 255),
                    stroke_width=1,
                    stroke_fill=(0, 0, 0),
                )
        return np.asarray(im)


# -- pixel edits ------------------------------------------------------------------------------


@dataclass
class Color(Edit):
    """Brightness (added), contrast (scaled about mid-grey), saturation, hue rotation (deg)."""

    brightness: float = 0.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    family = "color"

    def __call__(self, image, t):
        x = image.astype(np.float32)
        if self.hue or self.saturation != 1.0:
            # Rotate/scale chroma in YIQ: a linear map, so one 3x3 matrix per frame.
            to_yiq = np.array(
                [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32
            )
            a = math.radians(self.hue)
            rot = np.array(
                [
                    [1, 0, 0],
                    [0, math.cos(a) * self.saturation, -math.sin(a) * self.saturation],
                    [0, math.sin(a) * self.saturation, math.cos(a) * self.saturation],
                ],
                np.float32,
            )
            x = x @ (np.linalg.inv(to_yiq) @ rot @ to_yiq).T
        x = (x - 128.0) * self.contrast + 128.0 + self.brightness
        return np.clip(x, 0, 255).astype(np.uint8)


@dataclass
class Blur(Edit):
    sigma: float = 2.0
    family = "blur"

    def __call__(self, image, t):
        return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(self.sigma)))


@dataclass
class Noise(Edit):
    sigma: float = 8.0
    seed: int = 0
    family = "noise"

    def __call__(self, image, t):
        noise = _rng(self.seed, t).normal(0, self.sigma, image.shape).astype(np.float32)
        return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@dataclass
class Reencode(Edit):
    """Low-quality re-encode of each frame as JPEG at `quality` after downscaling by
    `scale`: blocking and ringing like a low-bitrate copy. (`render(..., crf=)` also
    re-encodes the whole video for real.)"""

    quality: int = 25
    scale: float = 0.5
    family = "reencode"

    def __call__(self, image, t):
        import io

        h, w = image.shape[:2]
        small = Image.fromarray(image).resize(
            (max(2, int(w * self.scale)), max(2, int(h * self.scale))), Image.BILINEAR
        )
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=int(self.quality))
        return np.asarray(Image.open(buf).convert("RGB").resize((w, h), Image.BILINEAR))


# -- time ---------------------------------------------------------------------------------------


@dataclass
class Speed(Edit):
    """Play `factor` times faster (0.5 = slow motion); frames are re-timed, not interpolated."""

    factor: float
    family = "speed"

    def retime(self, out_t: np.ndarray, src_t: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
        duration = (out_t[-1] + 1 / fps) / self.factor
        new_out = np.arange(0.0, duration - 1e-9, 1.0 / fps)
        return new_out, np.interp(new_out * self.factor, out_t, src_t)


@dataclass
class FrameRate(Edit):
    fps: float
    family = "frame_rate"

    def retime(self, out_t, src_t, fps):
        duration = out_t[-1] + 1 / fps
        new_out = np.arange(0.0, duration - 1e-9, 1.0 / self.fps)
        idx = np.clip(np.searchsorted(out_t, new_out, side="right") - 1, 0, len(out_t) - 1)
        return new_out, src_t[idx]


@dataclass
class Trim(Edit):
    """Keep [start, end) seconds of the current timeline."""

    start: float
    end: float
    family = "trim"

    def retime(self, out_t, src_t, fps):
        keep = (out_t >= self.start) & (out_t < self.end)
        if not keep.any():
            raise UsageError(f"trim [{self.start}, {self.end}) keeps no frames")
        return out_t[keep] - out_t[keep][0], src_t[keep]


TEMPORAL = (Speed, FrameRate, Trim)


# -- background sources for picture-in-picture ----------------------------------------------------


class BackgroundVideo:
    """Frames of another video by time (looping), for picture-in-picture backgrounds."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float = 10.0, seconds: float = 20.0):
        from vq.media.video import open_video

        with open_video(path) as video:
            duration = video.info.duration or seconds
            long_enough = duration > 1 / fps
            frames = video.sample(fps=fps, size=size) if long_enough else video.sample(times=[0.0], size=size)
        self.frames, self.times, self.period = frames.images, frames.times, max(duration, 1e-3)
        self.path = str(path)

    def __call__(self, t: float) -> np.ndarray:
        i = int(np.searchsorted(self.times, t % self.period, side="right")) - 1
        return self.frames[max(0, min(i, len(self.frames) - 1))]


# -- composing ---------------------------------------------------------------------------------------


@dataclass
class EditRecord:
    """What an edited copy is: the edits, where the source picture is, and which source
    times each stretch of the output shows."""

    edits: list[dict[str, Any]]
    size: tuple[int, int]
    box: Box
    segments: list[tuple[float, float, float, float]] = field(default_factory=list)
    duration: float = 0.0
    sources: list[str] = field(default_factory=list)  # the file each segment shows

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def apply_spatial(edits: Sequence[Edit], image: np.ndarray, t: float = 0.0) -> np.ndarray:
    for edit in edits:
        if not isinstance(edit, TEMPORAL):
            image = np.ascontiguousarray(edit(image, t))
    return image


def track_box(edits: Sequence[Edit], size: tuple[int, int]) -> tuple[Box, tuple[int, int]]:
    box: Box = (0, 0, size[0], size[1])
    for edit in edits:
        if not isinstance(edit, TEMPORAL):
            box, size = edit.map_box(box, size)
    return box, size


def segments_from(
    out_t: np.ndarray, src_t: np.ndarray, fps: float, tolerance: float = 0.6
) -> list[tuple[float, float, float, float]]:
    """Piecewise-linear (out_start, out_end, src_start, src_end) runs of the time mapping."""
    if len(out_t) == 0:
        return []
    step = 1.0 / fps
    segs = []
    start = 0
    for i in range(1, len(out_t) + 1):
        broken = i == len(out_t) or abs(src_t[i] - src_t[i - 1]) > tolerance + step * 4
        if broken:
            segs.append(
                (
                    float(out_t[start]),
                    float(out_t[i - 1] + step),
                    float(src_t[start]),
                    float(src_t[i - 1] + step),
                )
            )
            start = i
    return segs


def render(
    source: str | Path,
    dest: str | Path,
    edits: Sequence[Edit],
    *,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    codec: str = "h264",
    crf: int = 23,
    bitrate: int | None = None,
    audio: bool = True,
    max_seconds: float | None = None,
) -> EditRecord:
    """Stream `source` through `edits` into `dest`; returns what the copy is.

    `fps` and `size` resample the source first (lower values make evaluation sets cheap);
    `max_seconds` caps the source duration read.
    """
    from vq.media.encode import EVEN_SIZE_CODECS, write_video
    from vq.media.video import open_video

    with open_video(source) as video:
        info = video.info
        src_fps = fps or info.fps or 25.0
        duration = info.duration or 0.0
        if max_seconds is not None:
            duration = min(duration, max_seconds)
        out_t = np.arange(0.0, duration - 1e-9, 1.0 / src_fps)
        if len(out_t) == 0:
            raise UsageError(f"{source}: nothing to render (duration {duration})")
        src_t = out_t.copy()
        speed, out_fps = 1.0, src_fps
        for edit in edits:
            if isinstance(edit, TEMPORAL):
                out_t, src_t = edit.retime(out_t, src_t, out_fps)
                if isinstance(edit, Speed):
                    speed *= edit.factor
                if isinstance(edit, FrameRate):
                    out_fps = edit.fps
        base_size = size or (info.width, info.height)
        box, out_size = track_box(edits, base_size)
        if codec in EVEN_SIZE_CODECS:  # the encoder drops an odd last row/column
            out_size = (out_size[0] // 2 * 2, out_size[1] // 2 * 2)
            box = _clip_box(box, *out_size)
        from vq.media.sampling import iter_frames_at

        frames = iter_frames_at(video, src_t, base_size)
        spatial = [e for e in edits if not isinstance(e, TEMPORAL)]

        def produce() -> Iterator[np.ndarray]:
            for t, image in zip(out_t, frames, strict=True):
                yield apply_spatial(spatial, image, float(t))

        audio_from = source if audio and info.has_audio and speed > 0 else None
        write_video(
            dest,
            produce(),
            out_fps,
            times=out_t,
            codec=codec,
            crf=crf,
            bitrate=bitrate,
            audio_from=audio_from,
            audio_start=float(src_t[0]),
            audio_speed=speed,
        )
    segments = segments_from(out_t, src_t, out_fps)
    return EditRecord(
        edits=[e.describe() for e in edits],
        size=out_size,
        box=box,
        segments=segments,
        duration=float(out_t[-1] + 1 / out_fps),
        sources=[str(source)] * len(segments),
    )


def splice(
    pieces: Sequence[tuple[str | Path, float, float]],
    dest: str | Path,
    edits: Sequence[Edit] = (),
    *,
    fps: float,
    size: tuple[int, int],
    codec: str = "h264",
    crf: int = 23,
) -> EditRecord:
    """Join `pieces` = [(source, start, end) seconds] at `fps` and `size`, then apply the
    spatial `edits` to the whole: a partial copy is a stretch of one video inserted between
    others. No audio; temporal edits belong in `render`."""
    from vq.media.encode import EVEN_SIZE_CODECS, write_video
    from vq.media.sampling import iter_frames_at
    from vq.media.video import open_video

    if any(isinstance(e, TEMPORAL) for e in edits):
        raise UsageError("splice takes spatial edits only; re-time the pieces with render() first")
    plan = []
    out_start = 0.0
    for source, start, end in pieces:
        times = np.arange(start, end - 1e-9, 1.0 / fps)
        if len(times) == 0:
            raise UsageError(f"{source}: piece [{start}, {end}) holds no frames at {fps} fps")
        plan.append((source, times, out_start))
        out_start += len(times) / fps
    box, out_size = track_box(edits, size)
    if codec in EVEN_SIZE_CODECS:
        out_size = (out_size[0] // 2 * 2, out_size[1] // 2 * 2)
        box = _clip_box(box, *out_size)

    def produce() -> Iterator[np.ndarray]:
        for source, times, offset in plan:
            with open_video(source) as video:
                for k, image in enumerate(iter_frames_at(video, times, size)):
                    yield apply_spatial(edits, image, offset + k / fps)

    write_video(dest, produce(), fps, codec=codec, crf=crf)
    return EditRecord(
        edits=[e.describe() for e in edits],
        size=out_size,
        box=box,
        segments=[(o, o + len(t) / fps, float(t[0]), float(t[-1] + 1 / fps)) for _, t, o in plan],
        duration=out_start,
        sources=[str(s) for s, _, _ in plan],
    )


# -- random edits -----------------------------------------------------------------------------------


def _color(rng) -> tuple[int, int, int]:
    kind = rng.integers(3)
    if kind == 0:
        return (0, 0, 0)
    if kind == 1:
        return (255, 255, 255)
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _window(rng, w: int, h: int, lo: float, hi: float, aspect: float | None = None) -> Box:
    """A random rectangle covering lo..hi of the width, inside (w, h)."""
    ww = int(w * rng.uniform(lo, hi))
    hh = int(ww / aspect) if aspect else int(h * rng.uniform(lo, hi))
    hh = max(8, min(hh, h - 4))
    ww = max(8, min(ww, w - 4))
    x0 = int(rng.integers(0, w - ww + 1))
    y0 = int(rng.integers(0, h - hh + 1))
    return x0, y0, x0 + ww, y0 + hh


def random_edit(family: str, rng: np.random.Generator, size: tuple[int, int], background: Any = None) -> Edit:
    """An edit of `family` with random parameters, for a source of `size` = (w, h)."""
    w, h = size
    aspect = w / h
    if family == "border":
        return Border(*(int(rng.integers(0, max(2, s // 5))) for s in (h, h, w, w)), color=_color(rng))
    if family == "letterbox":  # landscape into portrait, bars above and below
        out_h = int(w * rng.uniform(1.3, 1.9))
        pad = max(0, out_h - h)
        top = int(rng.integers(0, pad + 1))
        return Border(top, pad - top, 0, 0, color=_color(rng))
    if family == "blur_fill":
        ow = w
        oh = int(w * rng.uniform(1.3, 1.9))  # portrait canvas
        return BlurFill(ow, oh, sigma=float(rng.uniform(6, 20)), darken=float(rng.uniform(0.5, 0.9)))
    if family == "crop":
        x0, y0 = rng.uniform(0, 0.2, 2)
        x1, y1 = 1 - rng.uniform(0, 0.2, 2)
        return Crop(float(x0), float(y0), float(x1), float(y1))
    if family == "scale":
        s = rng.uniform(0.4, 0.9)
        return Scale(max(16, int(w * s * rng.uniform(0.8, 1.25))), max(16, int(h * s)))
    if family == "picture_in_picture":
        bg = background if background is not None else np.full((h, w, 3), 90, np.uint8)
        bh, bw = (bg(0.0) if callable(bg) else bg).shape[:2]
        return PictureInPicture(
            bg,
            _window(rng, bw, bh, 0.35, 0.7, aspect),
            frame_px=int(rng.choice([0, 0, 2, 4])),
            frame_color=_color(rng),
        )
    if family == "template":
        tw, th = w, int(w * rng.uniform(1.2, 1.8))
        ww = int(tw * rng.uniform(0.8, 0.95))
        wh = int(ww / aspect)
        if wh > 0.75 * th:  # portrait sources: the window must leave room for the title
            wh = int(0.75 * th)
            ww = max(8, int(wh * aspect))
        x0 = (tw - ww) // 2
        y0 = int(rng.integers(th // 6, max(th // 6 + 1, th - wh - th // 12)))
        y0 = min(y0, th - wh)
        title = str(rng.choice(["MUST WATCH", "TOP 10", "FUNNY", "WOW"]))
        return Template(tw, th, (x0, y0, x0 + ww, y0 + wh), title=title, colors=(_color(rng), _color(rng)))
    if family == "live_stream":
        lw, lh = int(w * 1.45), int(h * 1.2)
        ww = int(w * rng.uniform(0.85, 1.0))
        wh = int(ww / aspect)
        y0 = max(14, (lh - wh) // 2)
        return LiveStreamChrome(lw, lh, (6, y0, 6 + ww, y0 + wh), seed=int(rng.integers(1 << 30)))
    if family == "screen_recording":
        sw, sh = int(w * 1.25), int(h * 1.35)
        ww = int(w * rng.uniform(0.8, 0.95))
        wh = int(ww / aspect)
        x0 = (sw - ww) // 2
        y0 = int((sh - wh) * rng.uniform(0.3, 0.5))
        return ScreenRecording(sw, sh, (x0, y0, x0 + ww, y0 + wh), gamma=float(rng.uniform(0.85, 1.25)))
    if family == "watermark":
        text = str(rng.choice(["@reposter", "MY CHANNEL", "vq.tv", "@daily_clips"]))
        return Watermark(
            text=text, corner=str(rng.choice(["tl", "tr", "bl", "br"])), opacity=float(rng.uniform(0.4, 0.9))
        )
    if family == "bullet_comments":
        return BulletComments(
            lanes=int(rng.integers(2, 6)),
            speed=float(rng.uniform(0.15, 0.4)),
            seed=int(rng.integers(1 << 30)),
        )
    if family == "color":
        return Color(
            brightness=float(rng.uniform(-40, 40)),
            contrast=float(rng.uniform(0.7, 1.3)),
            saturation=float(rng.uniform(0.5, 1.5)),
            hue=float(rng.uniform(-30, 30)),
        )
    if family == "blur":
        return Blur(float(rng.uniform(1.0, 3.0)))
    if family == "noise":
        return Noise(float(rng.uniform(4, 14)), seed=int(rng.integers(1 << 30)))
    if family == "flip":
        return Flip()
    if family == "rotate":
        return Rotate(float(rng.uniform(-6, 6)))
    if family == "reencode":
        return Reencode(quality=int(rng.integers(10, 35)), scale=float(rng.uniform(0.3, 0.6)))
    if family == "speed":
        return Speed(float(rng.choice([0.75, 1.25, 1.5, 2.0])))
    if family == "frame_rate":
        return FrameRate(float(rng.choice([10.0, 15.0, 30.0])))
    raise UsageError(f"unknown edit family {family!r} (known: {', '.join(FAMILIES)})")


FAMILIES = (
    "border",
    "letterbox",
    "blur_fill",
    "crop",
    "scale",
    "picture_in_picture",
    "template",
    "live_stream",
    "screen_recording",
    "watermark",
    "bullet_comments",
    "color",
    "blur",
    "noise",
    "flip",
    "rotate",
    "reencode",
    "speed",
    "frame_rate",
)
# Families that edit single frames (the rest re-time the video): training views, full copies.
SPATIAL_FAMILIES = tuple(f for f in FAMILIES if f not in ("speed", "frame_rate"))
# Families whose output keeps the source picture as a rectangle the content box can find.
BOXED = (
    "border",
    "letterbox",
    "blur_fill",
    "picture_in_picture",
    "template",
    "live_stream",
    "screen_recording",
)
