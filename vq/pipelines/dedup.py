"""The copy-detection job: decode once, embed, query every library, align, filter, ingest.

One `Dedup` holds the embedder and the open libraries (the main library and downstream
ones such as copyright or blocklist, each with its own sampling, index and thresholds).
`process(path)` returns the JSON-able record `vq run` writes: matches per library with
aligned segments, per-stage timings, and a status; any bad input becomes an error record
and leaves every library untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vq.errors import DeadlineExceeded, VqError
from vq.index.library import Library
from vq.match import ALIGNERS, FILTERS
from vq.match import coarse as coarse_stage
from vq.match.align import offset_vote
from vq.match.segments import extend_over_blanks
from vq.preprocess.content_box import MIN_FRAME_STD, detect_content_box, informative_frames
from vq.stages.embed import DECODE_MAX_SIDE


@dataclass
class DedupConfig:
    coarse: str = "vote"  # vote | mean
    k: int = 10
    top_n: int = 5
    mean_threshold: float = 0.5
    aligner: str = "diagonal"  # a registry name: diagonal | tn
    filters: dict[str, dict[str, Any]] | None = None  # None: each library's own [filters]
    crop: bool = True
    # The seed's "timeout fallback": when decoding for the main path passes `deadline`
    # seconds, match `fallback_frames` snapshots spread over the first `fallback_seconds`
    # instead (a few seeks), report that, and do not ingest (the library holds main-path
    # vectors only; the video is left for a later main pass).
    deadline: float | None = None
    fallback_frames: int = 30
    fallback_seconds: float = 300.0
    whole_frame: bool = True  # also match a cropped query as the whole frame
    min_frame_std: float = MIN_FRAME_STD  # frames flatter than this are neither stored nor queried


class FrameEmbedder(Protocol):
    """What Dedup needs from an embedder: `Embedder`, or a baseline such as PDQ."""

    name: str
    fingerprint: str
    dim: int
    matching: dict[str, float]  # the thresholds a library for these vectors starts with

    def embed_frames(self, frames: np.ndarray, box: Any = None) -> np.ndarray: ...


class Dedup:
    def __init__(
        self,
        embedder: FrameEmbedder,
        libraries: list[Library],
        config: DedupConfig | None = None,
        ingest: list[str] | None = None,
    ):
        self.embedder = embedder
        self.libraries = libraries
        self.config = config or DedupConfig()
        self.ingest_into = set(
            ingest if ingest is not None else [libraries[0].config.name] if libraries else []
        )
        for lib in libraries:
            if lib.config.model_sha256 != embedder.fingerprint:
                raise VqError(
                    f"library '{lib.config.name}' was built with model {lib.config.model} "
                    f"({lib.config.model_sha256[:12]}…), not {embedder.name}"
                )
        self.fps = max((lib.config.fps for lib in libraries), default=0.5)

    def process(
        self,
        path: str | Path,
        metadata: dict[str, Any] | None = None,
        ingest: bool = True,
        name: str | None = None,
        query: bool = True,
    ) -> dict[str, Any]:
        """Match `path` against the libraries (if `query`), then add it (if `ingest`)."""
        from vq.media import open_video

        path = Path(path)
        record: dict[str, Any] = {
            "id": name or str(path.resolve()),
            "path": str(path),
            "matches": [],
            "timings": {},
        }
        meta = dict(metadata or {})
        cfg = self.config
        t0 = time.perf_counter()
        try:
            mode = "main"
            with open_video(path) as video:
                info = video.info
                deadline = time.monotonic() + cfg.deadline if cfg.deadline is not None else None
                try:
                    frames = video.sample(fps=self.fps, max_side=DECODE_MAX_SIDE, deadline=deadline)
                except DeadlineExceeded:
                    mode = "fallback"
                    frames = video.sample(
                        count=cfg.fallback_frames, within=cfg.fallback_seconds, max_side=DECODE_MAX_SIDE
                    )
            record["mode"] = mode
            t1 = time.perf_counter()
            if len(frames) == 0:
                raise VqError(f"{path}: no frames decoded")
            box = detect_content_box(frames.images) if self.config.crop else None
            keep = informative_frames(frames.images, box, self.config.min_frame_std)
            images, times = frames.images[keep], frames.times[keep]
            t2 = time.perf_counter()
            vectors = self.embedder.embed_frames(images, box)
            # A wrong crop loses the copy outright, so a cropped query is also matched as the
            # whole frame (the better of the two similarities counts). References store only
            # their crop: the library stays one vector per frame.
            cropped = box is not None and box.method != "full"
            whole = self.embedder.embed_frames(images) if query and cropped and cfg.whole_frame else None
            t3 = time.perf_counter()
            meta.setdefault("duration", info.duration)
            record.update(
                duration=info.duration,
                frames=len(frames),
                informative_frames=int(keep.sum()),
                content_box=box.to_json() if box is not None else None,
            )
            for lib in self.libraries if query and len(vectors) else []:  # a blank video matches nothing
                sel = _on_grid(times, lib.config.fps) if mode == "main" else np.arange(len(times))
                views = [vectors[sel]] + ([whole[sel]] if whole is not None else [])
                step = 1.0 / lib.config.fps
                # (start, first picture, end of last picture, end): for blank lead-ins and tails
                span = (
                    0.0,
                    times[sel][0],
                    times[sel][-1] + step,
                    max(info.duration or 0.0, frames.times[-1] + step),
                )
                record["matches"].extend(
                    self._match(lib, views, times[sel], span, meta, sparse=mode != "main")
                )
            t4 = time.perf_counter()
            record["ingested"] = False
            if ingest and mode == "main":
                for lib in self.libraries:
                    if lib.config.name in self.ingest_into and lib.write:
                        sel = _on_grid(times, lib.config.fps)
                        if lib.video_by_name(record["id"]) is None:
                            lib.add_video(
                                record["id"],
                                vectors[sel],
                                times[sel],
                                path=str(path),
                                duration=info.duration,
                                metadata=meta,
                            )
                            record["ingested"] = True
            t5 = time.perf_counter()
            record["timings"] = {
                "decode": t1 - t0,
                "content_box": t2 - t1,
                "embed": t3 - t2,
                "match": t4 - t3,
                "ingest": t5 - t4,
                "total": t5 - t0,
            }
            record["status"] = "ok"
        except VqError as e:
            record.update(status="error", error=str(e))
        return record

    def _match(
        self,
        lib: Library,
        views: list[np.ndarray],
        times: np.ndarray,
        span: tuple[float, float, float, float],
        meta: dict[str, Any],
        sparse: bool = False,
    ) -> list[dict]:
        """Match one query (one or two views of its frames: crop, whole frame) in `lib`.
        `sparse`: the frames are the fallback's snapshots, matched by offset voting."""
        cfg = self.config
        if cfg.coarse == "mean":
            candidates = list(
                dict.fromkeys(
                    vid
                    for view in views
                    for vid, _ in coarse_stage.mean_vector(lib, view, cfg.mean_threshold, cfg.top_n)
                )
            )
        else:
            candidates = [vid for vid, _ in coarse_stage.vote(lib, views, cfg.k, cfg.top_n)]
        threshold = lib.config.thresholds.get("frame", 0.55)
        min_score = lib.config.thresholds.get("min_score", 0.0)
        rules = cfg.filters if cfg.filters is not None else lib.config.filters
        aligner = ALIGNERS.get(cfg.aligner)(frame_threshold=threshold)
        step = 1.0 / lib.config.fps
        out = []
        for vid in candidates:
            ref, ref_times = lib.vectors_of(vid)
            sim = np.max([view @ ref.T for view in views], axis=0)
            if sparse:
                segments = offset_vote(sim, times, ref_times, threshold, tolerance=2 * step)
            else:
                segments = aligner(sim, times, ref_times, step)
            segments = [s for s in segments if s.score >= min_score]
            if not segments:
                continue
            video = lib.videos[vid]
            r_end = max(video.duration or 0.0, ref_times[-1] + step)
            r_span = (0.0, ref_times[0], ref_times[-1] + step, r_end)
            segments = [extend_over_blanks(s, span, r_span, step) for s in segments]
            match = {
                "library": lib.config.name,
                "ref_id": video.name,
                "ref_path": video.path,
                "score": float(max(s.score for s in segments)),
                "segments": [s.to_json() for s in segments],
                "ref_metadata": video.metadata,
            }
            if all(FILTERS.get(name)(meta, match, **args) for name, args in rules.items()):
                out.append(match)
        return sorted(out, key=lambda m: -m["score"])


def _on_grid(times: np.ndarray, fps: float) -> np.ndarray:
    """Indices of the frames that fall on a library's sampling grid (one per 1/fps seconds)."""
    if len(times) == 0:
        return np.zeros(0, int)
    slots = np.floor(times * fps + 1e-6).astype(int)
    _, first = np.unique(slots, return_index=True)
    return np.sort(first)
