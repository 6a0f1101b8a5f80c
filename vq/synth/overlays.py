"""Pages around the picture (picture-in-picture, templates, live-stream rooms, screen
recordings) and text over it (watermarks, bullet comments)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from vq.synth.base import (
    WORDS,
    Box,
    Edit,
    into_window,
    paste,
    random_color,
    random_window,
    solid_canvas,
    text_font,
)


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
        return paste(out, image, self.rect)

    def map_box(self, box, size):
        bg_h, bg_w = self._bg_shape()
        return into_window(box, size, self.rect), (bg_w, bg_h)

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
                font=text_font(size),
                fill=(255, 255, 255),
                anchor="mm",
            )
            caption_y = min(self.height - 4, y1 + (self.height - y1) // 2)
            draw.text(
                (self.width // 2, caption_y),
                "like + follow for part 2",
                font=text_font(size * 0.6),
                fill=(255, 240, 120),
                anchor="mm",
            )
            self._cache = np.asarray(im)
        return self._cache

    def __call__(self, image, t):
        return paste(self._page().copy(), image, self.rect)

    def map_box(self, box, size):
        return into_window(box, size, self.rect), (self.width, self.height)


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
        im = Image.fromarray(paste(solid_canvas(self.width, self.height, (18, 18, 24)), image, self.rect))
        draw = ImageDraw.Draw(im)
        font = text_font(max(9, self.height // 30))
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
        return into_window(box, size, self.rect), (self.width, self.height)


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
        im = Image.fromarray(paste(solid_canvas(self.width, self.height, (236, 236, 240)), image, self.rect))
        draw = ImageDraw.Draw(im)
        bar_y = min(self.height - 6, y1 + 6)
        draw.rectangle((x0, bar_y, x1, bar_y + 3), fill=(180, 180, 180))
        progress = x0 + int((x1 - x0) * min(1.0, t / max(self.duration, 1e-6)))
        draw.rectangle((x0, bar_y, progress, bar_y + 3), fill=(230, 40, 40))
        draw.text((x0, max(0, y0 - 16)), "Video Player - 1080p", font=text_font(12), fill=(40, 40, 40))
        cx = x0 + int((x1 - x0) * (0.5 + 0.3 * math.sin(t)))
        cy = y0 + int((y1 - y0) * (0.5 + 0.3 * math.cos(t * 0.7)))
        cursor = [(cx, cy), (cx + 12, cy + 5), (cx + 5, cy + 12)]
        draw.polygon(cursor, fill=(255, 255, 255), outline=(0, 0, 0))
        im = im.filter(ImageFilter.GaussianBlur(0.8))
        arr = np.asarray(im, np.float32) / 255.0
        return np.clip(255.0 * arr**self.gamma, 0, 255).astype(np.uint8)

    def map_box(self, box, size):
        return into_window(box, size, self.rect), (self.width, self.height)


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
        font = text_font(h * self.scale)
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
        font = text_font(max(9, h // 16))
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


# -- random draws (registered in `vq.synth.families`) ------------------------------------------------


def random_picture_in_picture(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    """`background`: a still image or a callable t -> frame (`BackgroundVideo`); grey if None."""
    w, h = size
    bg = background if background is not None else np.full((h, w, 3), 90, np.uint8)
    bh, bw = (bg(0.0) if callable(bg) else bg).shape[:2]
    return PictureInPicture(
        bg,
        random_window(rng, bw, bh, 0.35, 0.7, w / h),
        frame_px=int(rng.choice([0, 0, 2, 4])),
        frame_color=random_color(rng),
    )


def random_template(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    w, h = size
    aspect = w / h
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
    return Template(
        tw, th, (x0, y0, x0 + ww, y0 + wh), title=title, colors=(random_color(rng), random_color(rng))
    )


def random_live_stream(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    w, h = size
    lw, lh = int(w * 1.45), int(h * 1.2)
    ww = int(w * rng.uniform(0.85, 1.0))
    wh = int(ww / (w / h))
    y0 = max(14, (lh - wh) // 2)
    if y0 + wh > lh:  # a small picture: the header leaves too little room, shrink the window
        wh = max(8, lh - y0)
        ww = max(8, int(wh * w / h))
    return LiveStreamChrome(lw, lh, (6, y0, 6 + ww, y0 + wh), seed=int(rng.integers(1 << 30)))


def random_screen_recording(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    w, h = size
    sw, sh = int(w * 1.25), int(h * 1.35)
    ww = int(w * rng.uniform(0.8, 0.95))
    wh = int(ww / (w / h))
    x0 = (sw - ww) // 2
    y0 = int((sh - wh) * rng.uniform(0.3, 0.5))
    return ScreenRecording(sw, sh, (x0, y0, x0 + ww, y0 + wh), gamma=float(rng.uniform(0.85, 1.25)))


def random_watermark(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    text = str(rng.choice(["@reposter", "MY CHANNEL", "vq.tv", "@daily_clips"]))
    return Watermark(
        text=text, corner=str(rng.choice(["tl", "tr", "bl", "br"])), opacity=float(rng.uniform(0.4, 0.9))
    )


def random_bullet_comments(rng: np.random.Generator, size: tuple[int, int], background=None) -> Edit:
    return BulletComments(
        lanes=int(rng.integers(2, 6)),
        speed=float(rng.uniform(0.15, 0.4)),
        seed=int(rng.integers(1 << 30)),
    )
