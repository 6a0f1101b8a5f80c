"""Calibration inputs for int8: real images or video windows, prepared exactly as the
runtime prepares them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from vq.errors import UsageError
from vq.images import IMAGE_SUFFIXES
from vq.models import TensorSpec
from vq.preprocess.normalize import to_model_input


def video_files(paths: list[str | Path]) -> list[Path]:
    """Video files named in `paths` (files, folders walked, globs), as every job expands
    its inputs (`vq.fsutil.expand_inputs`)."""
    from vq.fsutil import expand_inputs
    from vq.media import VIDEO_SUFFIXES

    suffixes = frozenset(VIDEO_SUFFIXES)
    files = [
        p for p in expand_inputs([str(p) for p in paths], suffixes) if Path(p).suffix.lower() in suffixes
    ]
    if not files:
        raise UsageError(f"no calibration videos in {', '.join(map(str, paths))}")
    return files


def clip_feeds(
    paths: list[str | Path],
    spec: TensorSpec,
    preprocessing: dict,
    count: int = 128,
    batch: int = 8,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """`count` fragment clips in batches, for a video model whose input is a window of
    consecutive frames cut into fragments (`preprocessing["fragments"]`, the quality model).

    Each clip is what `vq.stages.quality` feeds: `frames` consecutive frames at a random
    moment of a video, decoded and cut by the quality job's own plan (`QualityPlan`: exact
    frames, loop filter on, a short video repeats its frames), cut into mini-patches at a
    random placement on the codec grid, in a random flip or quarter turn. The windows are
    shared out among the videos in turn, so a few long ones do not crowd out the rest, and
    each video is opened once and decoded `batch` windows a pass (bounded memory).
    """
    from vq.media import open_video
    from vq.pipelines.score import QualityPlan
    from vq.preprocess.fragments import cut_settings, dihedral, fragments

    files = video_files(paths)
    frames = int(preprocessing["frames"])
    cut = cut_settings(preprocessing)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    per_video = np.bincount(np.arange(count) % len(files), minlength=len(files))
    clips: list[np.ndarray] = []
    for path, n in zip((files[i] for i in order), per_video, strict=True):
        if not n:
            continue
        with open_video(path) as video:
            fps = float(video.info.fps or 25.0)
            room = max(0.0, float(video.info.duration or 0.0) - (frames + 1) / fps)
            for part in np.array_split(rng.uniform(0.0, room, n), -(-n // batch)):
                plan = QualityPlan([(a, a + frames / fps, a + np.arange(frames) / fps) for a in part])
                [decoded] = video.sample_many([plan.request()])
                for window in plan.cut(path, decoded)[0]:
                    clips.append(dihedral(fragments(window, rng=rng, **cut), int(rng.integers(8))))
                    if len(clips) == batch:
                        yield {spec.name: to_model_input(np.stack(clips), preprocessing)}
                        clips = []
    if clips:
        yield {spec.name: to_model_input(np.stack(clips), preprocessing)}


def image_files(folders: list[str | Path]) -> list[Path]:
    files = sorted(
        p
        for f in map(Path, folders)
        if f.is_dir()
        for p in f.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise UsageError(f"no calibration images under {', '.join(map(str, folders))}")
    return files


def image_feeds(
    folders: list[str | Path],
    spec: TensorSpec,
    preprocessing: dict,
    count: int = 256,
    batch: int = 8,
    crop: int = 64,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """`count` preprocessed images in batches, for a single-image-input model.

    Fixed-size inputs get the whole image resized (antialiased bilinear, as the runtime);
    symbolic H/W inputs get random `crop` px crops, which covers the value range the
    activations see without the cost of whole frames.
    """
    files = image_files(folders)
    rng = np.random.default_rng(seed)
    fixed = all(isinstance(d, int) for d in spec.shape[1:3])
    emitted = 0
    while emitted < count:
        frames = []
        for _ in range(min(batch, count - emitted)):
            with Image.open(files[int(rng.integers(len(files)))]) as im:
                im = im.convert("RGB")
                if fixed:
                    im = im.resize((spec.shape[2], spec.shape[1]), Image.BILINEAR, reducing_gap=None)
                    frames.append(np.asarray(im))
                else:
                    arr = np.asarray(im)
                    y = int(rng.integers(max(1, arr.shape[0] - crop + 1)))
                    x = int(rng.integers(max(1, arr.shape[1] - crop + 1)))
                    frames.append(arr[y : y + crop, x : x + crop])
        if not fixed:
            h = min(f.shape[0] for f in frames)
            w = min(f.shape[1] for f in frames)
            frames = [f[:h, :w] for f in frames]
        emitted += len(frames)
        yield {spec.name: to_model_input(np.stack(frames), preprocessing)}


def sampler_feeds(
    folders: list[str | Path],
    inputs: list[TensorSpec],
    preprocessing: dict,
    count: int = 256,
    batch: int = 8,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Feeds for a generative sampler-step graph (``image``, ``x``, ``t``) on the inputs
    the sampler will actually see: high-quality crops of the images are shrunk (bicubic)
    to the graph's low-quality tile, and ``x_t = (1 - t) z + t r`` at the times the sampler
    visits, ``r`` the crop's own residual over the upsampled tile (so the late steps of a
    teacher see the heavy-tailed residual, not only Gaussian noise; a one-step student
    sees t = 0, pure noise)."""
    from vq.preprocess.resize import resize

    specs = {s.name: s for s in inputs}
    side = int(preprocessing["tile"])
    scale = int(preprocessing.get("upscale", 1))
    residual_scale = float(preprocessing.get("residual_scale", 1.0))
    steps = int(preprocessing.get("sampler", {}).get("steps", 1))
    rng = np.random.default_rng(seed)
    raw = {"scale": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "color": "RGB"}
    big = side * scale
    crops = image_feeds(
        folders, TensorSpec("image", "float32", ("B", "H", "W", 3)), raw, count, batch, crop=big, seed=seed
    )
    for feed in crops:
        hq = feed["image"]
        short_h, short_w = max(0, big - hq.shape[1]), max(0, big - hq.shape[2])
        if short_h or short_w:  # an image smaller than a tile: pad it, as the runtime does
            hq = np.pad(hq, ((0, 0), (0, short_h), (0, short_w), (0, 0)), mode="symmetric")
        hq = np.clip(np.rint(hq), 0, 255).astype(np.uint8)
        lq = resize(hq, (side, side), "bicubic") if scale > 1 else hq
        up = resize(lq, (big, big), "bilinear") if scale > 1 else lq
        r = (hq.astype(np.float32) - up.astype(np.float32)) / 255.0 / residual_scale
        n = len(hq)
        t = (rng.integers(0, steps, n) / steps).astype(np.float32)
        z = rng.standard_normal([n, *specs["x"].shape[1:]], dtype=np.float32)
        yield {
            "image": to_model_input(lq, preprocessing),
            "x": (1.0 - t)[:, None, None, None] * z + t[:, None, None, None] * r,
            "t": t,
        }
