"""The review page's pictures, drawn with matplotlib (Agg, no display): PNG bytes.

* `similarity_heatmap`: the query x reference frame similarity a match was aligned on
  (the record's pooled evidence), with each aligned segment drawn over it as a line from
  its start to its end: a copy is a bright diagonal run, and the line should sit on it.
* `quality_timeline`: the quality score of each segment over the video, on the 1-5 scale
  with its words, and the key frames the model attended to.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

QUALITY_WORDS = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def _edges(times: list[float]) -> np.ndarray:
    """Bin edges from bin start times (the last bin as wide as the one before)."""
    t = np.asarray(times, np.float64)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    return np.append(t, t[-1] + step)


def similarity_heatmap(
    matrix: np.ndarray, query_times: list[float], ref_times: list[float], segments: list[dict]
) -> bytes:
    """PNG: similarity (rows: upload time, columns: reference time) with the segments."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    mesh = ax.pcolormesh(_edges(ref_times), _edges(query_times), matrix, cmap="viridis", vmin=0.0, vmax=1.0)
    for s in segments:
        ends = [s["ref_end"], s["ref_start"]] if s.get("reversed") else [s["ref_start"], s["ref_end"]]
        ax.plot(ends, [s["query_start"], s["query_end"]], color="#ff3b30", lw=2.5)
    ax.invert_yaxis()  # time runs down the upload axis, as in a table
    ax.set_xlabel("reference (s)")
    ax.set_ylabel("upload (s)")
    fig.colorbar(mesh, ax=ax, label="similarity")
    return _png(fig)


def quality_timeline(segments: list[dict], key_frames: list[float], score: float) -> bytes:
    """PNG: each segment's score as a step over time, the video's score, the key frames."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 2.2))
    starts = [s["start"] for s in segments]
    ax.stairs(
        [s["score"] for s in segments], [*starts, segments[-1]["end"]], color="#0a84ff", lw=2, baseline=None
    )
    ax.axhline(score, color="#555", ls="--", lw=1, label=f"video {score:.2f}")
    if key_frames:  # a rug along the top: where the model looked
        ax.plot(key_frames, [4.85] * len(key_frames), "|", color="#ff9f0a", ms=9, mew=1.5, label="key frames")
    ax.set_ylim(1.0, 5.0)
    ax.set_yticks(list(QUALITY_WORDS), [f"{k} {w}" for k, w in QUALITY_WORDS.items()])
    ax.set_xlabel("time (s)")
    ax.legend(loc="lower right", fontsize=7)
    return _png(fig)
