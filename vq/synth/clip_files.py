"""The quality set's clip files: uint8 ``(T, H, W, 3)`` clips, exactly as they were saved.

Two formats, chosen by the file's suffix:

* ``.npy``, raw: chain versions, memory-mapped in training, where a batch's random
  fragments touch a few pixels of a clip and a decode of the whole would cost more than
  the step's model work;
* ``.mkv``, FFV1 (lossless, intra-only) in Matroska: ladder rungs. A rung is a decoded
  encode scaled back to the clip's size, smooth enough that FFV1 keeps it in about a
  quarter of the raw bytes (4.1-4.2x on this set's rungs, 2.5-13x on chain versions), and a
  rung is read whole (one decode, about 0.06 s for 32 frames at 288x192 on 2 cores). The set's
  rungs alone were 20 GB raw: more than these machines' free disk beside the clips.

RGB goes in as ``bgr0`` (FFV1 codes it as planes without a colour transform that loses
anything), so a clip comes back bit-exact; `save_clip` checks this on every write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vq.errors import MediaError
from vq.fsutil import atomic_path

COMPRESSED = ".mkv"


def save_clip(path: Path, clip: np.ndarray) -> None:
    """Write `clip` to `path` (format by suffix), atomically: a stopped build leaves no
    half-written clip for a resumed one to trust."""
    clip = np.ascontiguousarray(clip)
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"a clip is uint8 (T, H, W, 3), got {clip.dtype} {clip.shape}")
    with atomic_path(path) as tmp:
        if path.suffix == COMPRESSED:
            _write_ffv1(Path(tmp), clip)
            if not np.array_equal(_read_ffv1(Path(tmp)), clip):  # lossless or nothing
                raise MediaError(f"{path}: FFV1 did not round-trip the clip exactly")
        else:
            with open(tmp, "wb") as f:
                np.save(f, clip)


def load_clip(path: Path, mmap: bool = False) -> np.ndarray:
    """The clip saved at `path`; an ``.npy`` memory-mapped with `mmap` (read-only)."""
    if path.suffix == COMPRESSED:
        return _read_ffv1(path)
    return np.load(path, mmap_mode="r" if mmap else None)


def _write_ffv1(path: Path, clip: np.ndarray) -> None:
    import av

    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=25)  # the rate is nominal: the set records fps
        stream.width, stream.height, stream.pix_fmt = clip.shape[2], clip.shape[1], "bgr0"
        for frame in clip:
            image = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="bgr0")
            out.mux(stream.encode(image))
        out.mux(stream.encode())


def _read_ffv1(path: Path) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as f:
            frames = [frame.to_ndarray(format="rgb24") for frame in f.decode(video=0)]
    except av.FFmpegError as e:
        raise MediaError(f"{path}: cannot read the clip ({e})") from e
    if not frames:
        raise MediaError(f"{path}: no frames")
    return np.stack(frames)
