"""Frames for the review page: small JPEG thumbnails at given times, the content box drawn.

Thumbnails are decoded from the files the records name (the upload, and the reference's
path as its library stored it), at most `THUMB_SIDE` px, and inlined as data URIs so the
page needs nothing but itself. A file that is gone or cannot be decoded gives no picture
and a reason, never a failed page.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from vq.errors import VqError
from vq.fsutil import is_url

THUMB_SIDE = 320
DECODE_DEADLINE = 30.0  # seconds a thumbnail decode may take before the page goes without it
BOX_COLOUR = (255, 59, 48)


def data_uri(image: np.ndarray, quality: int = 80) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def frames_at(
    path: str | None, times: Sequence[float], max_side: int = THUMB_SIDE
) -> tuple[list[np.ndarray], str | None]:
    """RGB frames nearest `times` (one per time, in order), or ([], why not)."""
    if not path:
        return [], "no file recorded"
    if is_url(path):  # a page is made offline: it never fetches
        return [], "a URL (not fetched for the page)"
    import time

    from vq.media import open_video
    from vq.media.frames import nearest

    try:
        with open_video(path) as video:
            deadline = time.monotonic() + DECODE_DEADLINE
            frames = video.sample(times=np.asarray(times, np.float64), max_side=max_side, deadline=deadline)
    except VqError as e:
        return [], str(e)
    if len(frames) == 0:
        return [], "no frames decoded"
    return [frames.images[i] for i in nearest(frames.times, times)], None


def draw_box(image: np.ndarray, box: dict[str, Any], frame_size: tuple[int, int]) -> np.ndarray:
    """`image` with the content box (given in pixels of a `frame_size` (w, h) frame) drawn."""
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    sx, sy = w / frame_size[0], h / frame_size[1]
    picture = Image.fromarray(image)
    rect = [box["x0"] * sx, box["y0"] * sy, box["x1"] * sx - 1, box["y1"] * sy - 1]
    ImageDraw.Draw(picture).rectangle(rect, outline=BOX_COLOUR, width=3)
    return np.asarray(picture)
