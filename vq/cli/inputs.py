"""Expand CLI inputs (files, directories, globs) into a sorted list of paths."""

from __future__ import annotations

import glob
from pathlib import Path

from vq.images import IMAGE_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "expand_inputs"]


def expand_inputs(items: list[str], suffixes: frozenset[str]) -> list[Path]:
    """Files are kept as given (even with an odd suffix: the reader reports them);
    directories are walked for `suffixes`; anything else is treated as a glob. A pattern
    that matches nothing is kept, so the job reports it as missing instead of skipping it."""
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file()))
        elif path.exists() or not glob.has_magic(item):
            out.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            out.extend(matches or [path])
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]
