"""Embedded pairs for the hashing head: two edited views of one source, as vectors.

Views are the embedding task's (`vq.train.embed.input_pipeline.make_view`: 1-3
copy-disguise edits, some colour grades), embedded once by the embedding model through
the runtime (what a library stores), and cached by everything that decides them (the
sources, the model's hash, the count, the seed): a re-run trains on the same vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from vq.fsutil import atomic_path
from vq.media.sources import Source
from vq.train.embed.input_pipeline import make_view

CHUNK = 256
log = logging.getLogger("vq.train")


def embedded_pairs(
    sources: list[Source], embedder: str, count: int, seed: int, cache: Path, grade_share: float = 0.3
) -> dict[str, np.ndarray]:
    """{"a", "b": (count, D) float32 unit vectors of two views; "source": (count,) index}."""
    from vq.stages.embed import Embedder

    stage = Embedder(embedder, backend="ort-cpu")
    key = json.dumps(
        [sorted(s.name for s in sources), stage.fingerprint, count, seed, grade_share], separators=(",", ":")
    )
    path = Path(cache) / f"pairs-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path) as f:
            return {k: f[k] for k in ("a", "b", "source")}
    size = stage.size[0]
    backgrounds = [s.image for s in sources[:64]]
    a, b, index = [], [], []
    for start in range(0, count, CHUNK):
        views_a, views_b = [], []
        for row in range(start, min(count, start + CHUNK)):
            rng = np.random.default_rng((seed, row))
            i = int(rng.integers(len(sources)))
            views_a.append(make_view(sources[i].image, rng, size, backgrounds, grade_share=grade_share))
            views_b.append(make_view(sources[i].image, rng, size, backgrounds, grade_share=grade_share))
            index.append(i)
        a.append(stage.embed_frames(np.stack(views_a)))
        b.append(stage.embed_frames(np.stack(views_b)))
        log.info("embedded %d of %d pairs", min(count, start + CHUNK), count)
    out = {"a": np.concatenate(a), "b": np.concatenate(b), "source": np.asarray(index, np.int32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **out)
    return out
