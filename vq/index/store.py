"""What the library's parts share, below all of them: the library's error, faiss (an
extra), its IVF helpers and the readers of segment files. `vq.index.library`,
`vq.index.shards` and `vq.index.cluster` import this; it imports none of them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vq.audio.landmarks import Fingerprint
from vq.errors import MissingExtraError, VqError


class LibraryError(VqError):
    exit_code = 7


def load_faiss():
    try:
        import faiss
    except ImportError as e:
        raise MissingExtraError("the dedup library (faiss)", "cpu", e) from e
    return faiss


def float_index(dim: int, factory: str):
    """An empty inner-product index of `factory` over float vectors, without polysemous
    training. faiss's factory turns that on for PQ codes; it only relabels the codes so
    that Hamming distance can pre-filter a search, which nothing here does, and it cost
    50-95 s per training on 2 cores whatever the library's size (`benchmarks/pq_training.py`).
    Search results are those of the same index trained without it."""
    faiss = load_faiss()
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    for part in (index, ivf_of(index)):
        if hasattr(part, "do_polysemous_training"):
            part.do_polysemous_training = False
    return index


def set_nprobe(index, nprobe: int) -> None:
    if hasattr(index, "nprobe"):
        index.nprobe = nprobe
    else:
        ivf = ivf_of(index)
        if ivf is not None:
            ivf.nprobe = nprobe


def ivf_of(index):
    try:
        return load_faiss().extract_index_ivf(index)
    except RuntimeError:
        return None


def _read_npz(path: Path, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()):
    """A segment file's `required` arrays and those of `optional` it has; anything
    unreadable -- missing, truncated, not an npz, a required key gone -- is one
    `LibraryError` line."""
    try:
        with np.load(path) as f:
            return {k: f[k] for k in required} | {k: f[k] for k in optional if k in f.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise LibraryError(f"{path}: unreadable {what} ({e}); the library needs repair") from None


def read_audio(path: Path, n: int) -> Fingerprint:
    f = _read_npz(path, "audio segment", ("hashes", "times"))
    fp = Fingerprint(f["hashes"].astype(np.int64), f["times"].astype(np.int32), 0.0)
    if len(fp.hashes) != n:
        raise LibraryError(f"{path}: holds {len(fp.hashes)} audio hashes, the catalog says {n}")
    return fp


def read_audio_vectors(path: Path, model: str | None = None) -> np.ndarray | None:
    """The learned fingerprint's vectors in a video's audio file (None: stored without
    them, or recorded as another model's than sha256 `model`)."""
    f = _read_npz(path, "audio segment", (), ("vectors", "model"))
    if "vectors" not in f or (model and "model" in f and str(f["model"]) != model):
        return None
    return f["vectors"].astype(np.float32)


def read_thumbnails(path: Path, n: int) -> np.ndarray | None:
    """The frame thumbnails a segment file keeps beside its vectors (`vq.match.pixels`);
    None for a segment stored without them (libraries made before them)."""
    f = _read_npz(path, "segment", (), ("thumbs",))
    if "thumbs" not in f:
        return None
    if len(f["thumbs"]) != n:
        raise LibraryError(f"{path}: holds {len(f['thumbs'])} thumbnails, the catalog says {n}")
    return f["thumbs"]


def read_segment(path: Path, n: int) -> dict[str, np.ndarray]:
    out = _read_npz(path, "segment", ("vectors", "times"))
    if len(out["vectors"]) != n:
        raise LibraryError(f"{path}: holds {len(out['vectors'])} vectors, the catalog says {n}")
    return out
