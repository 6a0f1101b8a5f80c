"""The copy-detection job: decode once, embed, query every library, align, filter, ingest.

One `Dedup` holds the embedders and the open libraries (the main library and downstream
ones such as copyright or blocklist, each with its own sampling, index and thresholds;
a library may have companions: the same videos under another embedding model, whose
finds are that library's matches).
`process(path)` runs the named steps in order and returns a `VideoRecord`:

1. `decode`   sample frames at the libraries' rate (or the seed's timeout fallback);
2. `prepare`  content box, blank-frame filter, embeddings (crop, and whole frame);
3. `match`    per library: coarse candidates, similarity matrix, alignment, filters;
4. `ingest`   add the video to the library it belongs in.

Any bad input becomes an error record and leaves every library untouched; the record's
`to_json()` is the line `vq run` writes.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vq.audio.landmarks import Fingerprint
from vq.errors import DeadlineExceeded, VqError
from vq.fsutil import is_url
from vq.index.audio import AudioHit, fit_to_clips
from vq.index.library import Library, LibraryConfig
from vq.index.store import LibraryError
from vq.match import ALIGNERS, FILTERS
from vq.match import coarse as coarse_stage
from vq.match.align import best_line, offset_vote
from vq.match.motion import keep_moving_together, segment_motion
from vq.match.pixels import MIN_FRAMES as MIN_PIXEL_FRAMES
from vq.match.pixels import (
    PixelMotion,
    PixelRules,
    judge_by_pixels,
    pixel_line,
    segment_pixels,
    thumbnails,
    trim_to_agreement,
)
from vq.match.segments import (
    Segment,
    best_references,
    centre_between_samples,
    extend_over_blanks,
    only_new,
    overlap,
)
from vq.match.thresholds import Thresholds
from vq.media.frames import Frames
from vq.media.sampling import Request, sample_times
from vq.preprocess.content_box import MIN_FRAME_STD, ContentBox, detect_content_box, informative_frames
from vq.stages.embed import DECODE_MAX_SIDE


@dataclass
class DedupConfig:
    coarse: str = "vote"  # vote | mean
    k: int = 10
    top_n: int = 5
    # Also align any video nearest to this many query frames, beyond the top N by votes
    # (look-alike references must not crowd a short copy out: `vq.match.coarse.vote`).
    min_nearest: int = 2
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
    # Judge look-alikes by the two sides' pixels where the library keeps thumbnails
    # (`vq.match.pixels`; the library's `min_pixels` and neighbours); False: the embedding only.
    pixels: bool = True
    # ... and then also align up to `look_alikes` references whose mean vector lies within
    # `look_alike_cosine` of a chosen one's (`vq.match.coarse.look_alikes`; the cosine on
    # `vq-embed`'s scale: other clips of one fixed camera 0.96-0.99, other references < 0.96).
    look_alikes: int = 8
    look_alike_cosine: float = 0.95
    query_fps: float | None = None  # query sampling rate for every library (None: each library's own)
    min_frame_std: float = MIN_FRAME_STD  # frames flatter than this are neither stored nor queried
    # The soundtrack as evidence (`vq.index.audio`): fingerprinted, stored and matched beside
    # the picture; up to `audio_seconds` of it (the fallback: its first `fallback_seconds`).
    audio: bool = True
    audio_seconds: float = 600.0
    # A query's first `audio_speed_seconds` of sound are also searched with each speed of
    # `vq.audio.landmarks.SPEED_GRID` (0.90-1.10x) undone: a soundtrack sped up or slowed
    # shares no landmarks with its source otherwise. 20 more fingerprints of that much
    # sound (BENCHMARKS.md: the cost); 0 turns it off.
    audio_speed_seconds: float = 20.0
    # The learned fingerprint (`vq train audiofp`) stored beside the landmarks and asked to
    # confirm a landmark lead too weak to decide alone (`Thresholds.audio_learned`); None: off.
    audio_model: str | None = "vq-audiofp"


class FrameEmbedder(Protocol):
    """What Dedup needs from an embedder: `Embedder`, or a baseline such as PDQ."""

    name: str
    fingerprint: str
    dim: int
    matching: Thresholds  # the thresholds a library for these vectors starts with

    def embed_frames(self, frames: np.ndarray, box: Any = None) -> np.ndarray: ...


# -- records ------------------------------------------------------------------------------------


@dataclass
class LibraryMatch:
    """One reference video a query copies, in one library, with the aligned segments."""

    library: str
    ref_id: str
    ref_path: str | None
    score: float
    segments: list[Segment]
    ref_metadata: dict[str, Any] = field(default_factory=dict)
    similarity: dict[str, Any] | None = None  # the evidence a reviewer sees (`similarity_evidence`)
    evidence: list[str] = field(default_factory=list)  # what found it: "picture", "audio"
    # The sound's evidence (`vq.index.audio.AudioHit.to_json`): agreeing landmarks, their
    # share of the query's, the chance of that by luck, the speed it was found at.
    audio: dict[str, Any] | None = None
    # With companions: the embedding models whose picture found it (None: no companions).
    models: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "library": self.library,
            "ref_id": self.ref_id,
            "ref_path": self.ref_path,
            "score": self.score,
            "segments": [s.to_json() for s in self.segments],
            "ref_metadata": self.ref_metadata,
        }
        if self.evidence:
            out["evidence"] = self.evidence
        if self.audio is not None:
            out["audio"] = self.audio
        if self.models is not None:
            out["models"] = self.models
        if self.similarity is not None:
            out["similarity"] = self.similarity
        return out


EVIDENCE_SIDE = 64  # the similarity matrix a record carries is max-pooled to this many bins a side


def similarity_evidence(sim: np.ndarray, times: np.ndarray, ref_times: np.ndarray) -> dict[str, Any]:
    """The query x reference frame similarity a match was aligned on, small enough for a
    JSON record: max-pooled to at most `EVIDENCE_SIDE` bins a side (a copied run stays
    visible), each bin named by its first frame's time, values as uint8 (similarity x 255,
    negatives at 0), base64, row-major (rows: query)."""
    import base64

    rows = np.unique(np.linspace(0, len(times), min(EVIDENCE_SIDE, len(times)), endpoint=False).astype(int))
    cols = np.unique(
        np.linspace(0, len(ref_times), min(EVIDENCE_SIDE, len(ref_times)), endpoint=False).astype(int)
    )
    pooled = np.maximum.reduceat(np.maximum.reduceat(sim, rows, axis=0), cols, axis=1)
    values = np.round(np.clip(pooled, 0.0, 1.0) * 255).astype(np.uint8)
    return {
        "query_times": [round(float(t), 3) for t in times[rows]],
        "ref_times": [round(float(t), 3) for t in ref_times[cols]],
        "values": base64.b64encode(values.tobytes()).decode("ascii"),
    }


def decode_evidence(evidence: dict[str, Any]) -> np.ndarray:
    """`similarity_evidence`'s matrix back as float (query bins, reference bins) in [0, 1]."""
    import base64

    shape = (len(evidence["query_times"]), len(evidence["ref_times"]))
    values = np.frombuffer(base64.b64decode(evidence["values"]), np.uint8)
    return values.reshape(shape).astype(np.float32) / 255.0


@dataclass
class VideoRecord:
    """What `vq run` reports for one video (`to_json` is the JSONL line)."""

    id: str
    path: str
    status: str = "ok"
    error: str | None = None
    mode: str | None = None  # "main", or "fallback" when decoding passed the deadline
    duration: float | None = None
    frames: int | None = None
    informative_frames: int | None = None
    content_box: dict[str, Any] | None = None
    matches: list[LibraryMatch] = field(default_factory=list)
    ingested: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    quality: dict[str, Any] | None = None  # `vq run --score`: the `vq score` record
    enhanced: str | None = None  # `vq run --enhance`: the enhanced video's path

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "path": self.path,
            "matches": [m.to_json() for m in self.matches],
            "timings": self.timings,
        }
        if self.mode is not None:
            out["mode"] = self.mode
        if self.frames is not None:
            out.update(
                duration=self.duration,
                frames=self.frames,
                informative_frames=self.informative_frames,
                content_box=self.content_box,
                ingested=self.ingested,
            )
        if self.quality is not None:
            out["quality"] = self.quality
        if self.enhanced is not None:
            out["enhanced"] = self.enhanced
        out["status"] = self.status
        if self.error is not None:
            out["error"] = self.error
        return out


# -- intermediate results of the steps ------------------------------------------------------------


@dataclass
class Decoded:
    frames: Frames
    duration: float | None
    mode: str  # main | fallback


@dataclass
class Staged:
    """A decoded and prepared video, ready for matching (`Dedup.stage`)."""

    decoded: Decoded
    prepared: Prepared
    started: float  # perf_counter() when decoding began
    decode_s: float
    extra: dict[str, Any] = field(default_factory=dict)  # other jobs' results (quality, enhanced)
    audio: Fingerprint | None = None  # the soundtrack's landmarks; None: no (usable) sound
    # A query's opening sound with each other speed undone: (speed, landmarks), for matching.
    audio_speeds: tuple[tuple[float, Fingerprint], ...] = ()
    audio_vectors: np.ndarray | None = None  # the learned fingerprint's window vectors

    def without_pixels(self) -> Staged:
        """This video as `complete` needs it, without the decoded images: small enough to
        send from the process that staged it to the library's writer (`vq.pipelines.backfill`)."""
        from dataclasses import replace

        frames = self.decoded.frames
        bare = Frames(np.zeros((0, 1, 1, 3), np.uint8), frames.times, frames.stats)
        return replace(self, decoded=replace(self.decoded, frames=bare))


@dataclass
class Prepared:
    box: ContentBox | None
    images_kept: int
    times: np.ndarray  # of the informative frames
    vectors: np.ndarray  # (N, D), cropped to the content box (the first embedder's)
    whole: np.ndarray | None  # (N, D) of the whole frames, for a cropped query
    timings: dict[str, float] = field(default_factory=dict)  # content_box, embed
    # Every embedder's (vectors, whole), by model fingerprint (companion libraries).
    by_model: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    # Luma thumbnails of the informative frames (`vq.match.pixels`): the crop, then the
    # whole frame for a cropped query (the views `vectors` and `whole` were embedded from).
    thumbs: list[np.ndarray] = field(default_factory=list)

    def of(self, fingerprint: str) -> tuple[np.ndarray, np.ndarray | None]:
        """(vectors, whole) of the embedder with this fingerprint."""
        return self.by_model.get(fingerprint, (self.vectors, self.whole))


class StagedJob(ABC):
    """A job in two halves: `stage(path, query)` (decode and everything that touches no
    library: may run several at once) then `complete(path, staged, ...)` (matching and
    ingest: one video at a time). `Dedup` and `vq.pipelines.upload.UploadJob` are two."""

    def process(
        self,
        path: str | Path,
        metadata: dict[str, Any] | None = None,
        ingest: bool = True,
        name: str | None = None,
        query: bool = True,
    ) -> VideoRecord:
        """Match `path` (a file or a URL) against the libraries (if `query`), then add it
        (if `ingest`); a bad input is an error record."""
        path = source_of(path)
        try:
            staged = self.stage(path, query)
        except VqError as e:
            return VideoRecord(id=name or video_id(path), path=str(path), status="error", error=str(e))
        return self.complete(path, staged, metadata, ingest, name, query)

    @abstractmethod
    def stage(self, path: Path | str, query: bool = True) -> Staged:
        """Decode and everything that touches no library."""

    @abstractmethod
    def complete(
        self,
        path: Path | str,
        staged: Staged,
        metadata: dict[str, Any] | None = None,
        ingest: bool = True,
        name: str | None = None,
        query: bool = True,
    ) -> VideoRecord:
        """Match and ingest a staged video: its record."""


class Dedup(StagedJob):
    def __init__(
        self,
        embedder: FrameEmbedder | Sequence[FrameEmbedder],
        libraries: list[Library],
        config: DedupConfig | None = None,
        ingest: list[str] | None = None,
        ingest_fps: float | None = None,
    ):
        """`embedder`: one, or one per model the libraries use (the first is the main
        library's). A library's companions ingest whenever it does."""
        self.embedders = [embedder] if not isinstance(embedder, Sequence) else list(embedder)
        self.embedder = self.embedders[0]
        self.libraries = libraries
        self.config = config or DedupConfig()
        self.ingest_into = set(
            ingest if ingest is not None else [libraries[0].config.name] if libraries else []
        )
        models = {e.fingerprint: e for e in self.embedders}
        for lib in libraries:
            if lib.config.model_sha256 not in models:
                names = ", ".join(e.name for e in self.embedders)
                raise VqError(
                    f"library '{lib.config.name}' was built with model {lib.config.model} "
                    f"({lib.config.model_sha256[:12]}…), not {names}"
                )
        # One decode serves every library: its ingest grid and (when querying) its query grid.
        self.fps = max((max(lib.config.fps, self.query_rate(lib)) for lib in libraries), default=0.5)
        # With no libraries (a worker that only stages, `vq.pipelines.backfill`), `ingest_fps`.
        self.ingest_fps = max((lib.config.fps for lib in libraries), default=ingest_fps or 0.5)

    def query_rate(self, lib: Library) -> float:
        """Frames per second a query is matched at in `lib`."""
        return self.config.query_fps or lib.config.query_fps or lib.config.fps

    # -- the job ---------------------------------------------------------------------------------

    def stage(self, path: Path | str, query: bool = True) -> Staged:
        """Decode and prepare (content box, embeddings): the half of a job that never
        touches a library, so a service may run several at once (`vq.serve`)."""
        from vq.media import open_video

        t0 = time.perf_counter()
        with open_video(path) as video:
            decoded, _ = self.decode_open(video, self.fps if query else self.ingest_fps)
        return self.prepare_staged(decoded, query, t0, path)

    def prepare_staged(
        self, decoded: Decoded, query: bool, started: float, path: Path | str | None = None
    ) -> Staged:
        """`stage` after decoding (for a caller that decoded once for several jobs,
        `vq.pipelines.upload`); `started` is when decoding began; `path` gives the sound."""
        t1 = time.perf_counter()
        prepared = self.prepare(decoded, whole_frame=query)
        t2 = time.perf_counter()
        audio, speeds, vectors = (
            self.sound(path, decoded.mode, query) if path is not None else (None, (), None)
        )
        prepared.timings["audio"] = time.perf_counter() - t2
        return Staged(
            decoded,
            prepared,
            started,
            decode_s=t1 - started,
            audio=audio,
            audio_speeds=speeds,
            audio_vectors=vectors,
        )

    def sound(
        self, path: Path | str, mode: str, query: bool = True
    ) -> tuple[Fingerprint | None, tuple[tuple[float, Fingerprint], ...], np.ndarray | None]:
        """The soundtrack's landmark fingerprint, or None: audio off, no audio stream, or
        one that will not decode (the picture is still matched; never an error); the
        learned fingerprint's vectors (None: `audio_model` off). For a query, also its
        opening's landmarks with the other speeds undone."""
        from vq.audio.landmarks import RATE, SPEED_GRID, fingerprint, speed_fingerprints
        from vq.errors import MediaError
        from vq.media.audio import decode_audio

        cfg = self.config
        if not cfg.audio:
            return None, (), None
        seconds = cfg.fallback_seconds if mode == "fallback" else cfg.audio_seconds
        try:
            samples = decode_audio(path, RATE, max_seconds=seconds)
        except MediaError:
            return None, (), None
        if not len(samples):
            return None, (), None
        fp = fingerprint(samples)
        if not len(fp.hashes):  # nothing that counts as sound (silence, room tone)
            return fp, (), None
        vectors = self.fingerprinter.vectors(samples) if self.fingerprinter is not None else None
        if not query or cfg.audio_speed_seconds <= 0:
            return fp, (), vectors
        opening = samples[: int(cfg.audio_speed_seconds * RATE)]
        others = tuple(s for s in SPEED_GRID if s != 1.0)
        return fp, tuple(speed_fingerprints(opening, others)), vectors

    @property
    def audio_model_sha(self) -> str | None:
        """sha256 of the learned fingerprint's graph (stored with its vectors, checked on use)."""
        stage = self.fingerprinter
        return None if stage is None else stage.card.files["fp32"]["sha256"]

    @cached_property
    def fingerprinter(self):
        """The learned audio fingerprint's stage (`audio_model`), loaded on first use."""
        if not self.config.audio_model:
            return None
        from vq.stages.audio_fingerprint import AudioFingerprinter

        return AudioFingerprinter(self.config.audio_model, backend="ort-cpu").open()

    def complete(
        self,
        path: Path | str,
        staged: Staged,
        metadata: dict[str, Any] | None = None,
        ingest: bool = True,
        name: str | None = None,
        query: bool = True,
    ) -> VideoRecord:
        """Match a staged video against the libraries (if `query`) and add it (if
        `ingest`): the half that reads and writes libraries, one video at a time."""
        record = VideoRecord(id=name or video_id(path), path=str(path))
        decoded, prepared = staged.decoded, staged.prepared
        meta = dict(metadata or {})
        record.mode = decoded.mode
        meta.setdefault("duration", decoded.duration)
        record.duration = decoded.duration
        record.frames = len(decoded.frames)
        record.informative_frames = prepared.images_kept
        record.content_box = prepared.box.to_json() if prepared.box is not None else None
        try:
            t2 = time.perf_counter()
            if query:
                record.matches = self.match(
                    decoded, prepared, meta, staged.audio, staged.audio_speeds, staged.audio_vectors
                )
            t3 = time.perf_counter()
            if ingest and decoded.mode == "main":
                record.ingested = self.ingest(
                    record.id, path, decoded, prepared, meta, staged.audio, staged.audio_vectors
                )
            t4 = time.perf_counter()
        except VqError as e:
            record.status, record.error = "error", str(e)
            return record
        record.timings = {
            "decode": staged.decode_s,
            "content_box": prepared.timings["content_box"],
            "embed": prepared.timings["embed"],
            "audio": prepared.timings.get("audio", 0.0),
            "match": t3 - t2,
            "ingest": t4 - t3,
            "total": t4 - staged.started,
        }
        return record

    # -- steps -------------------------------------------------------------------------------------

    def request(self, video: Any, fps: float) -> Request:
        """Copy detection's share of a decode: the grid at `fps`, any frame within half an
        interval, at most `DECODE_MAX_SIDE` px, the loop filter optional."""
        return Request(sample_times(video, fps=fps), fps=fps, max_side=DECODE_MAX_SIDE, fast=True)

    def decode_open(
        self, video: Any, fps: float, others: Sequence[Request] = ()
    ) -> tuple[Decoded, list[Frames] | None]:
        """Decode an open video at `fps`, serving `others` (other jobs' requests) in the same
        pass. Past `deadline`: the fallback snapshots, and None for the others."""
        cfg = self.config
        deadline = time.monotonic() + cfg.deadline if cfg.deadline is not None else None
        try:
            frames, *rest = video.sample_many([self.request(video, fps), *others], deadline=deadline)
            mode, served = "main", rest
        except DeadlineExceeded:
            frames = video.sample(
                count=cfg.fallback_frames, within=cfg.fallback_seconds, max_side=DECODE_MAX_SIDE
            )
            mode, served = "fallback", None
        if len(frames) == 0:
            raise VqError(f"{video.path}: no frames decoded")
        return Decoded(frames, video.info.duration, mode), served

    def prepare(self, decoded: Decoded, whole_frame: bool = True) -> Prepared:
        """Content box (once per video), blank-frame filter, embeddings. A wrong crop loses
        a copy outright, so a cropped query is also embedded as the whole frame (the better
        of the two similarities counts); references store only their crop."""
        cfg = self.config
        images = decoded.frames.images
        t0 = time.perf_counter()
        box = detect_content_box(images) if cfg.crop else None
        keep = informative_frames(images, box, cfg.min_frame_std)
        images, times = images[keep], decoded.frames.times[keep]
        t1 = time.perf_counter()
        cropped = box is not None and box.method != "full"
        as_whole = whole_frame and cropped and cfg.whole_frame  # also the whole frame's view
        by_model = {}
        for embedder in self.embedders:
            vectors = embedder.embed_frames(images, box)
            by_model[embedder.fingerprint] = (vectors, embedder.embed_frames(images) if as_whole else None)
        thumbs = [thumbnails(images, box), *([thumbnails(images)] if as_whole else [])]
        timings = {"content_box": t1 - t0, "embed": time.perf_counter() - t1}
        vectors, whole = by_model[self.embedder.fingerprint]
        return Prepared(box, int(keep.sum()), times, vectors, whole, timings, by_model, thumbs)

    def match(
        self,
        decoded: Decoded,
        prepared: Prepared,
        meta: dict[str, Any],
        audio: Fingerprint | None = None,
        audio_speeds: tuple[tuple[float, Fingerprint], ...] = (),
        audio_vectors: np.ndarray | None = None,
    ) -> list[LibraryMatch]:
        """Matches in every library: picture, then sound (a blank video with no sound
        matches nothing)."""
        out: list[LibraryMatch] = []
        if not len(prepared.vectors):
            for lib in self.libraries:
                if lib.config.companion_of is None:  # a companion holds no sound
                    out.extend(self._add_audio(lib, [], audio, meta, audio_speeds, audio_vectors))
            return out
        times, frames = prepared.times, decoded.frames
        for lib in self.libraries:
            q_fps = self.query_rate(lib)
            sel = _on_grid(times, q_fps) if decoded.mode == "main" else np.arange(len(times))
            vectors, whole = prepared.of(lib.config.model_sha256)
            views = [vectors[sel]] + ([whole[sel]] if whole is not None else [])
            step = 1.0 / q_fps
            # (start, first picture, end of last picture, end): for blank lead-ins and tails
            span = (
                0.0,
                times[sel][0],
                times[sel][-1] + step,
                max(decoded.duration or 0.0, frames.times[-1] + step),
            )
            thumbs = [t[sel] for t in prepared.thumbs]
            found = self._match_library(
                lib, views, times[sel], span, meta, step, sparse=decoded.mode != "main", thumbs=thumbs
            )
            if lib.config.companion_of is None:
                found = self._add_audio(lib, found, audio, meta, audio_speeds, audio_vectors)
            out.extend(found)
        return with_companions(out, [lib.config for lib in self.libraries])

    def _add_audio(
        self,
        lib: Library,
        found: list[LibraryMatch],
        audio: Fingerprint | None,
        meta: dict[str, Any],
        speeds: tuple[tuple[float, Fingerprint], ...] = (),
        vectors: np.ndarray | None = None,
    ) -> list[LibraryMatch]:
        """The picture's matches in `lib`, marked where the sound agrees, plus the references
        only the sound finds (a new picture over a kept soundtrack). A sound match scores its
        confidence, one minus the chance of that much agreement by luck (`AudioHit`), so a
        soundtrack found beyond doubt ranks above a picture that only looks alike; a
        picture segment the sound confirms takes it too. Sound never enters the picture's
        reference margin. The record's `evidence` says which found what, `audio` what the
        sound saw, and a segment only the sound found says so (`by_sound`)."""
        for m in found:
            m.evidence = ["picture"]
        if audio is None:
            return found
        t = lib.config.thresholds
        learned = vectors is not None and t.audio_learned > 0
        # One lookup: down to the leads' floor when the learned fingerprint may confirm them.
        floor = min(t.audio_votes, t.audio_lead_votes) if learned else t.audio_votes
        heard = lib.audio_search(audio, int(floor), 0.0 if learned else t.audio_score)
        hits = [h for h in heard if h.votes >= t.audio_votes and h.score >= t.audio_score]
        hits += lib.audio_search_speeds(
            speeds, int(t.audio_votes), t.audio_score, skip={h.video for h in hits}
        )
        if learned:
            known = {h.video for h in hits}
            hits += confirmed_leads(lib, audio, vectors, known, self.audio_model_sha, heard)
        by_id = {m.ref_id: m for m in found}
        out = list(found)
        for hit in hits:
            video = lib.videos[hit.video]
            segments = [
                replace(fit_to_clips(seg, audio.seconds, video.duration), by_sound=True)
                for seg in hit.segments
            ]
            if video.name in by_id:  # one reference, one set of segments: the picture's, and
                both = by_id[video.name]  # the stretches only the sound found
                both.evidence.append("audio")
                both.audio = hit.to_json()
                both.score = max(both.score, hit.confidence)
                heard = [_confirmed(p, segments, hit.confidence) for p in both.segments]
                both.segments = sorted(heard + only_new(segments, heard), key=lambda s: s.query_start)
                continue
            if not segments:
                continue
            match = self._library_match(lib, hit.video, segments)
            match.evidence = ["audio"]
            match.audio = hit.to_json()
            if self._passes_filters(lib, meta, match):
                out.append(match)
        return sorted(out, key=lambda m: -m.score)

    def ingest(
        self,
        name: str,
        path: Path,
        decoded: Decoded,
        prepared: Prepared,
        meta: dict[str, Any],
        audio: Fingerprint | None = None,
        audio_vectors: np.ndarray | None = None,
    ) -> bool:
        """Add the video to the libraries it goes into (once: a known name is skipped)."""
        added = False
        for lib in self.libraries:
            into = (lib.config.companion_of or lib.config.name) in self.ingest_into
            if into and lib.write and lib.video_by_name(name) is None:
                sel = _on_grid(prepared.times, lib.config.fps)
                sound = lib.config.companion_of is None  # the sound is stored once, in the library
                lib.add_video(
                    name,
                    prepared.of(lib.config.model_sha256)[0][sel],
                    prepared.times[sel],
                    path=str(path),
                    duration=decoded.duration,
                    metadata=meta,
                    audio=audio if sound else None,
                    audio_vectors=audio_vectors if sound else None,
                    audio_model=self.audio_model_sha if sound else None,
                    thumbs=prepared.thumbs[0][sel] if prepared.thumbs else None,
                )
                added = True
        return added

    def _match_library(
        self,
        lib: Library,
        views: list[np.ndarray],
        times: np.ndarray,
        span: tuple[float, float, float, float],
        meta: dict[str, Any],
        step: float,
        sparse: bool = False,
        thumbs: list[np.ndarray] | None = None,
    ) -> list[LibraryMatch]:
        """Match one query (one or two views of its frames: crop, whole frame; sampled every
        `step` seconds; `thumbs`: the same views' thumbnails) in `lib`. `sparse`: the frames
        are the fallback's snapshots, matched by offset voting."""
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
            candidates = [
                vid for vid, _ in coarse_stage.vote(lib, views, cfg.k, cfg.top_n, min_nearest=cfg.min_nearest)
            ]
        thresholds = lib.config.thresholds
        pixels = cfg.pixels and bool(thumbs) and not sparse and thresholds.min_pixels > -1.0
        if pixels and cfg.look_alikes > 0:  # the pixels can tell them apart: align them all
            alike = coarse_stage.look_alikes(lib, candidates, cfg.look_alike_cosine, cfg.look_alikes)
            # ... those stored with thumbnails: the vectors alone cannot tell them apart
            candidates += [vid for vid in alike if lib.thumbs_of(vid) is not None]
        aligner = ALIGNERS.get(cfg.aligner)(frame_threshold=thresholds.frame)
        ref_step = 1.0 / lib.config.fps
        found: dict[int, list[Segment]] = {}
        evidence: dict[int, dict[str, Any]] = {}
        for vid in candidates:
            ref, ref_times = lib.vectors_of(vid)
            sim = np.max([view @ ref.T for view in views], axis=0)
            if sparse:
                segments = offset_vote(sim, times, ref_times, thresholds.frame, tolerance=2 * ref_step)
            else:
                segments = aligner(sim, times, ref_times, step, ref_step)
            segments = [s for s in segments if s.score >= thresholds.min_score]
            refit = partial(best_line, sim, times, ref_times, step, ref_step)
            by_pixels: list[Segment] = []
            if pixels and segments:
                by_pixels, segments = self._judge_by_pixels(
                    lib, vid, segments, (views, thumbs), times, (ref, ref_times, sim), step, refit
                )
            if thresholds.min_motion > -1.0 and not sparse:
                segments = keep_moving_together(
                    segments,
                    views,
                    times,
                    ref,
                    ref_times,
                    thresholds.min_motion,
                    thresholds.motion_floor,
                    sim,
                    thresholds.frame,
                    refit=refit,
                    moving_query=thresholds.moving_query,
                )
            # A line the pixels re-placed may cover a segment the vectors kept: one report.
            segments = sorted(by_pixels + only_new(segments, by_pixels), key=lambda s: s.query_start)
            if segments:
                video = lib.videos[vid]
                r_end = max(video.duration or 0.0, ref_times[-1] + ref_step)
                r_span = (0.0, ref_times[0], ref_times[-1] + ref_step, r_end)
                segments = [extend_over_blanks(s, span, r_span, max(step, ref_step)) for s in segments]
                if not sparse:  # the fallback's snapshots are not a grid
                    segments = [centre_between_samples(s, span, r_span, step) for s in segments]
                found[vid] = segments
                evidence[vid] = similarity_evidence(sim, times, ref_times)
        # Filters first (a reference the uploader owns, a match too short to report must
        # not knock out another reference), then the margin across what is left.
        passed: dict[int, LibraryMatch] = {}
        for vid, segments in found.items():
            match = self._library_match(lib, vid, segments)
            if self._passes_filters(lib, meta, match):
                passed[vid] = match
        kept = best_references({vid: m.segments for vid, m in passed.items()}, thresholds.ref_margin)
        out = [self._library_match(lib, vid, segments, evidence[vid]) for vid, segments in kept.items()]
        return sorted(out, key=lambda m: -m.score)

    @staticmethod
    def _judge_by_pixels(
        lib: Library,
        vid: int,
        segments: list[Segment],
        query: tuple[list[np.ndarray], list[np.ndarray]],
        times: np.ndarray,
        reference: tuple[np.ndarray, np.ndarray, np.ndarray],
        step: float,
        refit: Any,
    ) -> tuple[list[Segment], list[Segment]]:
        """(kept, undecided) by the two sides' pixels (`vq.match.pixels.judge_by_pixels`);
        `query`: the query's (vector views, thumbnail views); `reference`: the reference's
        (vectors, times) and the query x reference similarity. All undecided where the
        reference was stored without thumbnails; a line along which the reference is a
        still to the embedding (`vq.match.motion`: its vectors move less than
        `motion_floor`) is not judged by pixels either. A test card holds still but for a
        counter or noise that changes every frame, and a copy sampled one frame off does
        not reproduce that."""
        ref_thumbs = lib.thumbs_of(vid)
        if ref_thumbs is None:
            return [], segments
        views, thumbs = query
        ref, ref_times, sim = reference
        t = lib.config.thresholds
        search_frames = max(MIN_PIXEL_FRAMES, math.ceil(t.pixel_search_seconds / step - 1e-6))
        rules = PixelRules(t.min_pixels, t.pixel_confirm, t.pixel_floor, t.pixel_search, search_frames)
        line = (thumbs, times, ref_thumbs, ref_times)
        on_line = {"sim": sim, "frame": t.frame}

        def measure(segment: Segment) -> PixelMotion | None:
            motion = segment_motion(views, times, ref, ref_times, segment, sim, t.frame)
            if motion is not None and motion.change < t.motion_floor:
                return None
            return segment_pixels(*line, segment, **on_line)

        return judge_by_pixels(
            segments,
            measure,
            rules,
            refit,
            search=lambda segment, speeds, frames: pixel_line(
                *line, segment, **on_line, step=step, min_frames=frames, speeds=speeds
            ),
            trim=partial(trim_to_agreement, *line, **on_line, step=step),
        )

    def _passes_filters(self, lib: Library, meta: dict[str, Any], match: LibraryMatch) -> bool:
        """The run's filter rules, else the library's (`[filters]`), over the match's JSON
        shape (what plugin filters read)."""
        rules = self.config.filters if self.config.filters is not None else lib.config.filters
        view = match.to_json()
        return all(FILTERS.get(rule)(meta, view, **args) for rule, args in rules.items())

    @staticmethod
    def _library_match(
        lib: Library, vid: int, segments: list[Segment], similarity: dict[str, Any] | None = None
    ) -> LibraryMatch:
        video = lib.videos[vid]
        return LibraryMatch(
            library=lib.config.name,
            ref_id=video.name,
            ref_path=video.path,
            score=float(max(s.score for s in segments)),
            segments=segments,
            ref_metadata=video.metadata,
            similarity=similarity,
        )


# Seconds the learned fingerprint's offset may differ from the landmarks': its windows sit
# on a 0.5 s grid (a quarter second of rounding) and its match takes the best within one
# window of the line (another 0.5 s).
LEAD_OFFSET = 0.75
MAX_LEADS = 20  # weak leads checked per query and library


def with_companions(matches: list[LibraryMatch], configs: list[LibraryConfig]) -> list[LibraryMatch]:
    """`matches` with each companion library's folded into its library's: one match per
    reference, the segments of every model (a segment mostly covered by a better-scoring
    one is dropped: the same stretch found twice), `models` saying which found it. The
    two models' scores are not on one scale, so no reference margin is applied across
    them; rival references of one stretch are settled by agreement (`settle_across_models`)."""
    parent = {c.name: c.companion_of for c in configs if c.companion_of}
    if not parent:
        return matches
    model = {c.name: c.model for c in configs}
    merged: dict[tuple[str, str], LibraryMatch] = {}
    for m in matches:
        home = parent.get(m.library, m.library)
        found_by = [model[m.library]] if m.evidence != ["audio"] else []
        key = (home, m.ref_id)
        if key not in merged:
            merged[key] = replace(m, library=home, models=found_by)
            continue
        into = merged[key]
        best_first = sorted(into.segments + m.segments, key=lambda s: -s.score)
        kept: list[Segment] = []
        for seg in best_first:
            kept += only_new([seg], kept)
        into.segments = sorted(kept, key=lambda s: s.query_start)
        into.score = max(into.score, m.score)
        into.models = list(dict.fromkeys(into.models + found_by))
        into.evidence = list(dict.fromkeys(into.evidence + m.evidence))
        into.audio = into.audio or m.audio
        into.similarity = into.similarity or m.similarity
    return settle_across_models(sorted(merged.values(), key=lambda m: -m.score))


def agrees_better(a: Segment, b: Segment) -> bool:
    """Do `a`'s changes agree with its reference's better than `b`'s with its? Correlations,
    so on one scale for every model: by the pixels (`vq.match.pixels`) where both were
    judged by them, else by the vectors (`vq.match.motion`) where both were; a judged
    segment above an unjudged one (a still reference gives the tests nothing to judge)."""
    for field_name in ("pixels", "motion"):
        x, y = getattr(a, field_name), getattr(b, field_name)
        if x is not None and y is not None:
            return x > y
    return (a.pixels, a.motion) != (None, None) and (b.pixels, b.motion) == (None, None)


def settle_across_models(matches: list[LibraryMatch]) -> list[LibraryMatch]:
    """Where references that different models found (each by one model only) claim the
    same stretch of the query, it goes to the one whose changes agree better with the
    query's: two models' cosines are not on one scale, their agreements are. A segment
    losing its stretch is dropped, and a match left with none."""
    dropped: set[tuple[int, int]] = set()
    for i, a in enumerate(matches):
        for j in range(i + 1, len(matches)):
            b = matches[j]
            if a.library != b.library or not a.models or not b.models or set(a.models) & set(b.models):
                continue  # not two models' rival finds
            for k, sa in enumerate(a.segments):
                for n, sb in enumerate(b.segments):
                    shared = overlap(sa.query_start, sa.query_end, sb.query_start, sb.query_end)
                    if sa.by_sound or sb.by_sound or shared <= 0.5 * min(sa.seconds, sb.seconds):
                        continue
                    if agrees_better(sb, sa):
                        dropped.add((i, k))
                    elif agrees_better(sa, sb):
                        dropped.add((j, n))
    if not dropped:
        return matches
    out = []
    for i, m in enumerate(matches):
        kept = [seg for k, seg in enumerate(m.segments) if (i, k) not in dropped]
        if len(kept) == len(m.segments):
            out.append(m)
        elif kept:
            out.append(replace(m, segments=kept, score=float(max(seg.score for seg in kept))))
    return sorted(out, key=lambda m: -m.score)


def confirmed_leads(
    lib: Library,
    audio: Fingerprint,
    vectors: np.ndarray,
    known: set[int],
    model: str | None = None,
    heard: list[AudioHit] | None = None,
) -> list[AudioHit]:
    """Landmark leads too weak to decide alone (at least `audio_lead_votes` agreeing, not
    `audio_votes`) that the learned fingerprint confirms: the query's window vectors match
    the reference's stored ones at least `audio_learned` well, at the landmarks' offset.
    Two different fingerprints agreeing on one reference and one offset: a noise bed that
    hides most spectral peaks leaves the learned vectors' match standing (BENCHMARKS.md).
    `model`: the sha256 of the model that made `vectors`; another model's stored vectors are
    not compared. `heard`: the query's landmark hits if already looked up (else a lookup)."""
    from vq.stages.audio_fingerprint import match

    t = lib.config.thresholds
    out = []
    if heard is None:
        heard = lib.audio_search(audio, int(t.audio_lead_votes), 0.0)
    leads = [h for h in heard if h.votes >= t.audio_lead_votes and h.video not in known]
    for lead in leads[:MAX_LEADS]:  # the strongest: each costs a file read and a match
        try:
            theirs = lib.audio_vectors(lead.video, model)
        except LibraryError:  # a file gone or damaged under a reader: a lead, not a failure
            continue
        if theirs is None or theirs.shape[1:] != vectors.shape[1:]:  # none, or another model's
            continue
        score, offset = match(vectors, theirs)
        if score >= t.audio_learned and abs(offset - lead.offset) <= LEAD_OFFSET:
            # The learned score is the mean over every query window at that offset: the
            # whole overlap agrees, not only where the few landmarks fell (a short copy
            # inside a long upload does not reach the mean, and is left to the landmarks).
            out.append(replace(lead, learned=score, segments=[whole_overlap(lead, audio.seconds)]))
    return out


def whole_overlap(hit: AudioHit, query_seconds: float) -> Segment:
    """All the query a hit's reference can cover at its offset and speed (query time q shows
    reference time offset + speed q; `fit_to_clips` then trims the reference end)."""
    start = min(max(0.0, -hit.offset / hit.speed), query_seconds)
    ref = hit.offset + hit.speed * np.array([start, query_seconds])
    return Segment(start, query_seconds, float(ref[0]), float(ref[1]), hit.confidence)


def _confirmed(seen: Segment, heard: list[Segment], confidence: float) -> Segment:
    """A picture segment the sound also finds (the same stretches of both videos) is as
    sure as the surer of the two."""
    both = any(
        overlap(seen.query_start, seen.query_end, h.query_start, h.query_end) > 0
        and overlap(seen.ref_start, seen.ref_end, h.ref_start, h.ref_end) > 0
        for h in heard
    )
    return replace(seen, score=max(seen.score, confidence)) if both else seen


def source_of(path: Path | str) -> Path | str:
    """A URL stays text (`Path` would fold its double slash); anything else is a `Path`."""
    return str(path) if is_url(str(path)) else Path(path)


def video_id(path: Path | str) -> str:
    """How a library names a video when the caller gives no name: its absolute path, or
    the URL as given."""
    return path if isinstance(path, str) else str(path.resolve())


def _on_grid(times: np.ndarray, fps: float) -> np.ndarray:
    """Indices of the frames that fall on a sampling grid of `fps`: for each slot k, the
    frame nearest k / fps (sampling picks a frame within half an interval either side of
    its target, so a frame just before k / fps belongs to slot k, not k - 1)."""
    if len(times) == 0:
        return np.zeros(0, int)
    slots = np.rint(times * fps).astype(int)
    distance = np.abs(times - slots / fps)
    order = np.lexsort((distance, slots))  # by slot, nearest first
    _, first = np.unique(slots[order], return_index=True)
    return np.sort(order[first])
