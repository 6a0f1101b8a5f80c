"""Batch enhancement of image files: one JSON-able record per input, errors included."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vq.errors import VqError
from vq.images import read_rgb, write_png
from vq.stages.enhance import Enhancer


def output_path(src: Path, out_dir: Path, scale: int, taken: set[Path]) -> Path:
    """`<stem>_x<scale>.png` in `out_dir`, numbered if two inputs share a stem."""
    path = out_dir / f"{src.stem}_x{scale}.png"
    n = 1
    while path in taken:
        path = out_dir / f"{src.stem}_x{scale}-{n}.png"
        n += 1
    taken.add(path)
    return path


def enhance_files(
    paths: Iterable[str | Path], out_dir: str | Path, enhancer: Enhancer
) -> Iterator[dict[str, Any]]:
    """Enhance each image into `out_dir`; yields a record per input, never raises per item."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    taken: set[Path] = set()
    for src in map(Path, paths):
        record: dict[str, Any] = {"path": str(src)}
        start = time.perf_counter()
        try:
            image = read_rgb(src)
            t_read = time.perf_counter()
            result = enhancer.enhance(image)
            t_model = time.perf_counter()
            dst = write_png(output_path(src, out_dir, enhancer.scale, taken), result)
            record.update(
                status="ok",
                output=str(dst),
                size_in=list(image.shape[1::-1]),
                size_out=list(result.shape[1::-1]),
                seconds={
                    "read": t_read - start,
                    "enhance": t_model - t_read,
                    "write": time.perf_counter() - t_model,
                },
            )
        except VqError as e:
            record.update(status="error", error=str(e))
        yield record
