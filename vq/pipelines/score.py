"""The quality job (`vq score`): a 1-5 score per video, per segment, with its key frames.

A video is cut into segments of `segment` seconds (at most `max_segments`, spread evenly
over a long video, and fewer where the decoded windows would pass `WINDOW_MEMORY`); from
the middle of each, one window of the model's `frames` consecutive frames is decoded at
native resolution with the loop filter on (a decoder shortcut would add the very blocking
the model looks for). The video's score is the mean of its segments' scores; the record
also gives each segment's score, the key frames the model attended to (as times), and
where the time went. A bad input gives an error record and the batch goes on.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import MediaError, UsageError, VqError
from vq.media.frames import nearest
from vq.stages.quality import DEFAULT_VIEWS, QualityScorer

WINDOW_MEMORY = 2 << 30  # bytes of decoded windows per video, at most


def segment_windows(
    duration: float, fps: float, frames: int, segment: float, max_segments: int
) -> list[tuple[float, float, np.ndarray]]:
    """(start, end, frame times) per segment: the video split into equal segments of about
    `segment` s (at most `max_segments`), `frames` consecutive frame times centred in each
    (clamped inside the video)."""
    span = frames / fps
    count = max(1, min(max_segments, round(duration / segment)))
    edges = np.linspace(0.0, duration, count + 1)
    out = []
    for a, b in itertools.pairwise(edges):
        first = float(np.clip((a + b) / 2 - span / 2, 0.0, max(0.0, duration - span)))
        out.append((float(a), float(min(b, duration)), first + np.arange(frames) / fps))
    return out


@dataclass
class QualityPlan:
    """What the quality job decodes from one video: a window of the model's consecutive
    frames per segment, at native resolution, with the loop filter on."""

    windows: list[tuple[float, float, np.ndarray]]  # (start, end, frame times)

    @property
    def times(self) -> np.ndarray:
        return np.concatenate([w[2] for w in self.windows])

    def request(self):
        """The plan as one consumer of a shared decode (`vq.media.sampling.Request`)."""
        from vq.media.sampling import Request

        return Request(np.unique(self.times), exact=True, fast=False)

    def cut(self, path: Path | str, decoded: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The windows out of `decoded` (`Frames` holding the plan's times, as served by
        one decode): uint8 (windows, frames, H, W, 3), the decoded frames' times, and the
        index of the frame each planned time took."""
        images, got = decoded.images, np.asarray(decoded.times)
        if len(images) == 0:
            raise MediaError(f"{path}: no frames decoded")
        # Each requested time takes its nearest decoded frame (a short video repeats frames).
        pick = nearest(got, self.times)
        return images[pick].reshape(len(self.windows), -1, *images.shape[1:]), got, pick


def plan_quality(info: Any, frames: int, segment: float = 2.0, max_segments: int = 30) -> QualityPlan:
    """Segment windows for a video described by `info` (a `VideoInfo`)."""
    fps = float(info.fps or 25.0)
    duration = float(info.duration or 0.0) or frames / fps
    # Windows are decoded at native size, all at once: bound their memory (4K: 5).
    window_bytes = frames * max(1, info.width) * max(1, info.height) * 3
    max_segments = max(1, min(max_segments, WINDOW_MEMORY // window_bytes))
    return QualityPlan(segment_windows(duration, fps, frames, segment, max_segments))


def score_decoded(path: Path | str, plan: QualityPlan, decoded: Any, scorer: QualityScorer) -> dict[str, Any]:
    """The `vq score` record of one video from its decoded windows (`decoded`: `Frames`
    holding the plan's times, as served by one decode)."""
    clips, got, pick = plan.cut(path, decoded)
    windows = plan.windows
    t0 = time.perf_counter()
    scores, keys = scorer.score_windows(clips)
    model_s = time.perf_counter() - t0
    key_times = sorted(
        {
            round(float(got[pick.reshape(len(windows), -1)[i, k]]), 3)
            for i in range(len(windows))
            for k in keys[i]
        }
    )
    return {
        "path": str(path),
        "status": "ok",
        "score": round(float(np.mean(scores)), 4),
        "segments": [
            {"start": round(a, 3), "end": round(b, 3), "score": round(float(s), 4)}
            for (a, b, _), s in zip(windows, scores, strict=True)
        ],
        "key_frames": key_times,
        "size": [int(clips.shape[3]), int(clips.shape[2])],
        "timings": {"model_s": round(model_s, 4)},
    }


def score_video(
    path: Path, scorer: QualityScorer, segment: float = 2.0, max_segments: int = 30
) -> dict[str, Any]:
    from vq.media import open_video

    t0 = time.perf_counter()
    with open_video(path) as video:
        plan = plan_quality(video.info, scorer.frames, segment, max_segments)
        [decoded] = video.sample_many([plan.request()])
    decode_s = time.perf_counter() - t0
    record = score_decoded(path, plan, decoded, scorer)
    record["timings"] = {"decode_s": round(decode_s, 4), **record["timings"]}
    return record


class ScoreWorker:
    """The per-process half of `score_files`: the model opened once, one record per path."""

    def __init__(
        self,
        model: Any,
        backend: str,
        precision: str,
        segment: float,
        max_segments: int,
        views: int = DEFAULT_VIEWS,
    ):
        self.scorer = QualityScorer(model, backend=backend, precision=precision, views=views).open()
        self.segment, self.max_segments = segment, max_segments

    def __call__(self, path: Path) -> dict[str, Any]:
        try:
            record = score_video(path, self.scorer, self.segment, self.max_segments)
        except VqError as e:
            record = {"path": str(path), "status": "error", "error": str(e)}
        # What the score depends on besides the pixels: the model, and the views averaged.
        record["model"], record["views"] = self.scorer.name, self.scorer.views
        return record

    def close(self) -> None:
        self.scorer.close()


def score_files(
    paths: Iterable[Path],
    model: Any = None,
    backend: str = "auto",
    precision: str = "fp32",
    segment: float = 2.0,
    max_segments: int = 30,
    timeout: float | None = None,
    views: int = DEFAULT_VIEWS,
) -> Iterator[dict[str, Any]]:
    """One record per input; a file that cannot be scored is an error record. With a
    `timeout` (seconds per video) the videos run in a worker process under
    `vq.pipelines.watchdog`, so one that stalls the decoder or kills the process gets an
    error record and the batch goes on; `timeout=None` (or 0) runs here."""
    if segment <= 0 or max_segments < 1:
        raise UsageError("segment must be > 0 s and max_segments >= 1")
    from vq.pipelines.watchdog import Stalled, run_items

    if views < 1:
        raise UsageError("views must be >= 1")
    args = (model, backend, precision, segment, max_segments, views)
    for result in run_items(paths, ScoreWorker, args, timeout=timeout):
        if isinstance(result, Stalled):
            error = f"{result.item}: {result.describe()}"
            yield {"path": str(result.item), "status": "error", "error": error, "views": views}
        else:
            yield result
