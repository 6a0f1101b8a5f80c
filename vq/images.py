"""Still-image read/write with the same robustness rules as video: one-line errors,
size limits checked before decoding, atomic writes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from vq.errors import MediaError
from vq.fsutil import atomic_path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

# Refuse images above this many pixels before decoding (a 100 MP frame is already huge;
# decompression bombs declare billions). Override with VQ_MAX_PIXELS.
MAX_PIXELS = int(os.environ.get("VQ_MAX_PIXELS", 100_000_000))


def read_rgb(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3) RGB, or raise `MediaError` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise MediaError(f"{path}: {w}x{h} exceeds the {max_pixels:,}-pixel limit")
                if w == 0 or h == 0:
                    raise MediaError(f"{path}: image has no pixels")
                im.load()
                return np.asarray(im.convert("RGB"))
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard fired while parsing the header: same verdict as ours.
        raise MediaError(f"{path}: exceeds the {max_pixels:,}-pixel limit (bomb guard)") from None
    except Image.UnidentifiedImageError:
        raise MediaError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(f"{path}: corrupt or truncated image ({e})") from None


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write uint8 RGB as PNG atomically (a crash never leaves half a file)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path
