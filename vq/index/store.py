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


def read_audio(path: Path, n: int) -> Fingerprint:
    try:
        with np.load(path) as f:
            fp = Fingerprint(f["hashes"].astype(np.int64), f["times"].astype(np.int32), 0.0)
    except (OSError, ValueError, KeyError) as e:
        raise LibraryError(f"{path}: unreadable audio segment ({e}); the library needs repair") from None
    if len(fp.hashes) != n:
        raise LibraryError(f"{path}: holds {len(fp.hashes)} audio hashes, the catalog says {n}")
    return fp


def read_audio_vectors(path: Path, model: str | None = None) -> np.ndarray | None:
    """The learned fingerprint's vectors in a video's audio file (None: stored without
    them, or recorded as another model's than sha256 `model`)."""
    try:
        with np.load(path) as f:
            if "vectors" not in f.files:
                return None
            if model and "model" in f.files and str(f["model"]) != model:
                return None
            return f["vectors"].astype(np.float32)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise LibraryError(f"{path}: unreadable audio segment ({e}); the library needs repair") from None


def read_segment(path: Path, n: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as seg:
            out = {"vectors": seg["vectors"], "times": seg["times"]}
    except (OSError, ValueError, KeyError) as e:
        raise LibraryError(f"{path}: unreadable segment ({e}); the library needs repair") from None
    if len(out["vectors"]) != n:
        raise LibraryError(f"{path}: holds {len(out['vectors'])} vectors, the catalog says {n}")
    return out
