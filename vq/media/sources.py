"""Source media for training and evaluation, split by a stable hash of each source's name.

Sources are images (folders, files) and video frames (sampled at `video_fps`, named
``"clip.mp4@12.000"``). A hash of the name puts a `holdout` share of them aside: training
(`vq train embed`) reads the ``"train"`` side and never sees the others, evaluation
(`vq eval pairs`) reads the ``"holdout"`` side. Frames the runtime would not use (one
colour: black, fades, title cards; `vq.preprocess.content_box.is_informative`) are left
out of both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vq.errors import UsageError
from vq.images import IMAGE_SUFFIXES, read_rgb
from vq.media.video import VIDEO_SUFFIXES
from vq.preprocess.content_box import is_informative

MAX_SIDE = 320  # sources are kept at most this large; views are made from them


@dataclass(frozen=True)
class Source:
    name: str  # "folder/file.png" or "video.mp4@12.000"
    image: np.ndarray


def video_files(sources: list[Path]) -> list[Path]:
    """Video files given directly or found in the given folders (not recursive), in order."""
    files: list[Path] = []
    for s in sources:
        if s.is_dir():
            files.extend(sorted(p for p in s.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()))
        elif s.is_file():
            files.append(s)
        else:
            raise UsageError(f"{s}: no such file or folder")
    return files


def held_out(name: str, fraction: float) -> bool:
    """Whether source `name` is in the held-out `fraction` (a stable hash of the name)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def _shrink(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return image
    s = MAX_SIDE / max(h, w)
    return np.asarray(
        Image.fromarray(image).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    )


def list_sources(paths: list[str | Path], video_fps: float = 1.0) -> list[tuple[str, Path, float | None]]:
    """(name, file, time) for every image and every sampled video frame under `paths`."""
    from vq.media import probe

    items: list[tuple[str, Path, float | None]] = []
    for root in map(Path, paths):
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            suffix = f.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                items.append((f"{f.parent.name}/{f.name}", f, None))
            elif suffix in VIDEO_SUFFIXES:
                try:
                    duration = probe(f).duration or 0.0
                except Exception:  # unreadable clips are skipped, as the runtime would
                    continue
                items.extend(
                    (f"{f.name}@{t:.3f}", f, float(t)) for t in np.arange(0.5, duration, 1 / video_fps)
                )
    if not items:
        raise UsageError(f"no images or videos under {', '.join(map(str, paths))}")
    return items


def load_sources(
    paths: list[str | Path], holdout: float, split: str, video_fps: float = 1.0, drop_flat: bool = True
) -> list[Source]:
    """The `split` ("train" or "holdout") part of the sources, decoded and shrunk."""
    from vq.media import open_video

    chosen = [it for it in list_sources(paths, video_fps) if held_out(it[0], holdout) == (split == "holdout")]
    by_video: dict[Path, list[tuple[str, float]]] = {}
    sources: list[Source] = []
    for name, path, t in chosen:
        if t is None:
            sources.append(Source(name, _shrink(read_rgb(path))))
        else:
            by_video.setdefault(path, []).append((name, t))
    for path, entries in by_video.items():
        with open_video(path) as video:
            frames = video.sample(times=[t for _, t in entries], max_side=MAX_SIDE)
        # A time past the end returns no frame: pair each frame with its nearest request.
        requested = np.array([t for _, t in entries])
        for t, image in zip(frames.times, frames.images, strict=True):
            sources.append(Source(entries[int(np.argmin(np.abs(requested - t)))][0], image))
    if drop_flat:  # fades and black frames: the runtime never stores nor queries them
        sources = [s for s in sources if is_informative(s.image)]
    if not sources:
        raise UsageError(f"no {split} sources (holdout fraction {holdout})")
    return sources


# -- super-resolution pairs -------------------------------------------------------------------------
# A data folder holds high-resolution images; its low-resolution twin is the sibling folder
# ``<name>_lr_x<scale>`` with the same file names (the layout of the SelfExSR benchmark sets
# in ``../shared/data/images``, made with MATLAB's bicubic ``imresize``). Where no twin
# exists, LR images are made with Pillow's antialiased bicubic.


@dataclass(frozen=True)
class Pair:
    name: str
    hr: np.ndarray  # uint8 (H*s, W*s, 3)
    lr: np.ndarray  # uint8 (H, W, 3)


def load_pairs(folders: list[str | Path], scale: int) -> list[Pair]:
    """HR/LR pairs from `folders`, HR cropped to a multiple of `scale`."""
    pairs: list[Pair] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise UsageError(f"data folder {folder} does not exist")
        twin = folder.with_name(f"{folder.name}_lr_x{scale}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"no images in {folder}")
        for path in files:
            hr = read_rgb(path)
            h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
            hr = hr[:h, :w]
            if (twin / path.name).is_file():
                lr = read_rgb(twin / path.name)
                if lr.shape[:2] != (h // scale, w // scale):
                    raise UsageError(f"{twin / path.name}: size {lr.shape[:2]} is not HR/{scale}")
            else:
                lr = np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))
            pairs.append(Pair(f"{folder.name}/{path.name}", hr, lr))
    return pairs


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The classical baseline: Pillow bicubic (a = -0.5, as MATLAB) to `scale` x size."""
    h, w = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.BICUBIC))
