"""One decode for the three jobs of an upload: copy detection, quality, enhancement.

`vq run --score [--enhance DIR]`. Each job wants different frames from the same video:

* copy detection, a grid (the libraries' rate, at most 512 px, any frame within half an
  interval, the loop filter optional: the keyframe and reference-frame shortcuts apply);
* quality (KVQ), one window of the model's consecutive frames per segment, at native
  resolution with the loop filter on (a shortcut adds the very blocking it looks for);
* enhancement, every frame at native resolution, in order.

`UploadJob` plans the sampling once per video. Without enhancement the grid and the
windows are two `Request`s served by one pass of the decoder (`decode_requests`: seeks
where both allow, the loop filter on because one consumer needs it). With enhancement the
video is decoded once from start to end for the enhancer, and the same frames are offered
to a `Picker` on the way, which keeps the grid's and the windows' samples. Then each job
runs on its share, and the record is `vq run`'s with `quality` (the `vq score` record)
and `enhanced` (the output path) added.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vq.errors import UsageError, VqError
from vq.pipelines.dedup import Decoded, Dedup, Staged, StagedJob, VideoRecord
from vq.stages.quality import DEFAULT_VIEWS


@dataclass
class QualityOptions:
    """`vq run --score`: the quality model and how a video is cut for it (as `vq score`)."""

    model: str | None = None  # None: the default quality model
    precision: str = "fp32"
    segment: float = 2.0
    max_segments: int = 30
    views: int = DEFAULT_VIEWS


@dataclass
class EnhanceOptions:
    """`vq run --enhance DIR`: where enhanced videos go, and how (as `vq enhance`)."""

    out: Path
    model: str | None = None  # None: the default enhancement model
    precision: str = "fp32"
    codec: str = "h264"
    crf: int = 18


class UploadJob(StagedJob):
    """Copy detection with quality and/or enhancement fed by the same decode."""

    def __init__(
        self,
        dedup: Dedup,
        backend: str = "auto",
        quality: QualityOptions | None = None,
        enhance: EnhanceOptions | None = None,
    ):
        if enhance is not None and dedup.config.deadline is not None:
            raise UsageError("--deadline does not go with --enhance: enhancement decodes every frame")
        self.dedup, self.quality, self.enhance = dedup, quality, enhance
        self.scorer = self.enhancer = None
        self._taken: set[Path] = set()
        try:
            if quality is not None:
                from vq.stages.quality import QualityScorer

                self.scorer = QualityScorer(
                    quality.model, backend=backend, precision=quality.precision, views=quality.views
                ).open()
            if enhance is not None:
                from vq.stages.enhance import Enhancer

                enhance.out.mkdir(parents=True, exist_ok=True)
                self.enhancer = Enhancer(enhance.model, backend=backend, precision=enhance.precision).open()
        except BaseException:
            self.close()
            raise

    def stage(self, path: Path | str, query: bool = True) -> Staged:
        """One decode for every job, then everything that does not touch a library:
        copy detection's preparation, the quality score, the enhanced file."""
        from vq.media import open_video
        from vq.pipelines.score import plan_quality, score_decoded

        dedup = self.dedup
        fps = dedup.fps if query else dedup.ingest_fps
        t0 = time.perf_counter()
        plan = enhanced = None
        with open_video(path) as video:
            if self.scorer is not None:
                q = self.quality
                plan = plan_quality(video.info, self.scorer.frames, q.segment, q.max_segments)
            others = [plan.request()] if plan is not None else []
            if self.enhancer is not None:
                decoded, served, enhanced = self._decode_enhancing(video, path, fps, others)
            else:
                decoded, served = dedup.decode_open(video, fps, others)
        staged = dedup.prepare_staged(decoded, query, t0, path)
        # Scored before copy detection ingests: a scorer that fails outright (not a
        # bad-input error) fails the video first, so library and records never disagree.
        if plan is not None:
            if served is None:  # the fallback: no windows were decoded
                staged.extra["quality"] = {"status": "skipped", "reason": "decoding passed --deadline"}
            else:
                try:
                    quality = score_decoded(path, plan, served[0], self.scorer)
                    quality["model"] = self.scorer.name
                except VqError as e:
                    quality = {"status": "error", "error": str(e)}
                staged.extra["quality"] = quality
        if enhanced is not None:
            staged.extra["enhanced"] = enhanced
        return staged

    def complete(
        self,
        path: Path | str,
        staged: Staged,
        metadata: dict[str, Any] | None = None,
        ingest: bool = True,
        name: str | None = None,
        query: bool = True,
    ) -> VideoRecord:
        """Copy detection's matching and ingest (`Dedup.complete`), with the other jobs'
        results added to the record."""
        record = self.dedup.complete(path, staged, metadata, ingest, name, query)
        quality, enhanced = staged.extra.get("quality"), staged.extra.get("enhanced")
        record.quality = quality
        if record.timings:
            if quality is not None and quality["status"] == "ok":
                record.timings["quality"] = quality["timings"]["model_s"]
            if enhanced is not None:
                record.timings["enhance"] = enhanced["seconds"]["enhance"]
            record.timings["total"] = time.perf_counter() - staged.started
        if enhanced is not None:
            record.enhanced = enhanced["output"]
        return record

    def _decode_enhancing(self, video: Any, path: Path | str, fps: float, others: list) -> tuple:
        """Every frame once, for the enhancer; the grid and the windows picked on the way."""
        from vq.media.sampling import picked_frames, picker_for
        from vq.pipelines.enhance import enhance_open, output_path

        requests = [self.dedup.request(video, fps), *others]
        picker = picker_for(video, requests)
        # A name no earlier video of this or another run has taken (a restarted worker
        # forgets what it wrote; the disk does not).
        dst = output_path(
            Path(str(path)), self.enhance.out, self.enhancer.scale, self._taken, ".mp4", fresh=True
        )
        e = self.enhance
        enhanced = enhance_open(video, path, dst, self.enhancer, e.codec, e.crf, picker=picker)
        picker.finish()
        frames, *served = picked_frames(video, requests, picker, {"strategy": "every frame (enhance)"})
        if len(frames) == 0:
            dst.unlink(missing_ok=True)  # no record will name it
            raise VqError(f"{path}: no frames decoded")
        return Decoded(frames, video.info.duration, "main"), served, enhanced

    def close(self) -> None:
        for stage in (self.scorer, self.enhancer):
            if stage is not None:
                stage.close()
        self.scorer = self.enhancer = None
