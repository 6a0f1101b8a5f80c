"""The copy-detection benchmark: build edited copies of source clips, run the pipeline, score.

`build_benchmark` turns a folder of source videos into:

* **references** (in `clips/`, with the non-reference clips): clips of the sources, the
  videos "uploaded earlier";
* **queries** (`queries/`), each with ground-truth segments:
  - `full`: a reference under one edit (every spatial family in turn);
  - `stacked`: a reference under three edits (a frame + an overlay + a photometric change);
  - `speed`: a reference played 0.75-2x, plus one light edit;
  - `partial`: a stretch of a reference spliced between stretches of non-reference clips;
  - `non_copy`: clips never ingested, edited the same ways; those cut from a video that
    also gave references are *look-alikes* (same scene, another moment).

Sources are cut into `clip_seconds` clips, 2 s apart; a video's clips alternate between
reference and non-reference so that look-alikes exist. `screen_clips` then drops clips no
ground truth could label: blank ones, and non-references showing the same picture as a
reference (a test card, a static shot running on, a source that contains another).

`run_method` ingests the references into a fresh library and queries every query with
the production `Dedup` pipeline; `score` turns the matches into video-level P/R/F1, VSC
2022 segment µAP and VCSL segment F1 (`vq.eval.metrics.retrieval`). The PDQ baseline runs through
the same library, voting and alignment, with PDQ's reference threshold; on the audio suite,
Chromaprint matches the same queries' soundtracks (`vq.eval.dedup_audio.run_chromaprint`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from vq import synth
from vq.errors import MediaError, UsageError
from vq.eval.base import Evaluator, Report, Table, Ui, backend_option, model_option
from vq.eval.metrics.retrieval import Match, segment_ap, vcsl_f1, video_prf
from vq.fsutil import atomic_write_text
from vq.media.sources import video_files

BENCHMARK_VERSION = 4  # the classic suite, unchanged since it was measured
HELDOUT_VERSION = 1
MIN_CLIP = 3.0  # seconds: shorter clips are only used as filler and non-copies
GUARD = 2.0  # seconds left out between consecutive clips of one video
# The spatial families as the classic suite drew them (new families must not move its draws).
CLASSIC_FAMILIES = (
    "border",
    "letterbox",
    "blur_fill",
    "crop",
    "scale",
    "picture_in_picture",
    "template",
    "live_stream",
    "screen_recording",
    "watermark",
    "bullet_comments",
    "color",
    "blur",
    "noise",
    "flip",
    "rotate",
    "reencode",
)
LIGHT = ("border", "color", "watermark", "reencode", "bullet_comments", "blur", "noise")
FRAMES = ("border", "letterbox", "blur_fill", "picture_in_picture", "template", "live_stream", "crop")
OVERLAYS = ("watermark", "bullet_comments")
PHOTOMETRIC = ("color", "blur", "noise", "reencode")


@dataclass
class Clip:
    id: str
    path: str
    source: str
    start: float
    end: float
    role: str  # ref | other
    size: tuple[int, int] = (0, 0)


@dataclass
class Query:
    id: str
    path: str
    kind: str  # full | stacked | speed | partial | non_copy
    families: list[str]
    truth: list[dict[str, Any]] = field(default_factory=list)  # ref_id + four times
    look_alike: bool = False


@dataclass
class Benchmark:
    params: dict[str, Any]
    clips: list[Clip]
    queries: list[Query]

    @property
    def refs(self) -> list[Clip]:
        return [c for c in self.clips if c.role == "ref"]

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "clips": [asdict(c) for c in self.clips],
            "queries": [asdict(q) for q in self.queries],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Benchmark:
        clips = [Clip(**{**c, "size": tuple(c["size"])}) for c in data["clips"]]
        return cls(data["params"], clips, [Query(**q) for q in data["queries"]])

    def truth(self) -> list[Match]:
        return [
            Match(q.id, t["ref_id"], t["query_start"], t["query_end"], t["ref_start"], t["ref_end"])
            for q in self.queries
            for t in q.truth
        ]


# -- building ----------------------------------------------------------------------------------------


def _even_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(w, h))
    return max(16, int(w * scale) // 2 * 2), max(16, int(h * scale) // 2 * 2)


def _pieces(duration: float, clip_seconds: float, guard: float) -> list[tuple[float, float]]:
    """Clips of `clip_seconds` separated by `guard` seconds: a shot running across a cut
    would otherwise put the same picture on both sides of a reference/non-reference line."""
    pieces = []
    start = 0.0
    while start + clip_seconds <= duration + 1e-6:
        pieces.append((start, start + clip_seconds))
        start += clip_seconds + guard
    if duration - start >= MIN_CLIP or not pieces:
        pieces.append((start if pieces else 0.0, duration))
    return pieces


def plan_clips(
    files: list[Path], clip_seconds: float, max_side: int, warn: Callable[[str], None]
) -> list[Clip]:
    from vq.media import probe

    clips: list[Clip] = []
    singles: list[Clip] = []
    for path in files:
        try:
            info = probe(path)
        except MediaError as e:
            warn(f"skipped {path.name}: {e}")
            continue
        duration = info.duration or 0.0
        if duration < 1.0:
            warn(f"skipped {path.name}: {duration:.1f} s is too short")
            continue
        size = _even_size(info.width, info.height, max_side)
        pieces = _pieces(duration, clip_seconds, GUARD)
        stem = path.stem.replace(" ", "_")
        made = [
            Clip(f"{stem}@{a:.0f}", "", str(path), a, b, "ref" if k % 2 == 0 else "other", size)
            for k, (a, b) in enumerate(pieces)
        ]
        for clip in made:
            if clip.end - clip.start < MIN_CLIP:
                clip.role = "other"
        if len(made) == 1 and made[0].role == "ref":
            singles.append(made[0])
        clips.extend(made)
    for k, clip in enumerate(singles):  # one-clip videos: alternately references and others
        clip.role = "ref" if k % 2 == 0 else "other"
    return clips


def screen_clips(clips: list[Clip], warn: Callable[[str], None], same_picture: float = 0.9) -> list[Clip]:
    """Drop clips that would make the ground truth wrong: blank clips (nothing to match), and
    clips showing the same picture as a kept reference (a static scene continuing past a cut,
    a source that contains another source). Pixel-level test: 16x16 grey thumbnails at 1 fps,
    zero-mean cosine >= `same_picture` between any two frames."""
    from vq.eval.baselines import thumbnail_descriptor
    from vq.media import open_video
    from vq.preprocess.content_box import informative_frames

    kept: list[Clip] = []
    ref_thumbs: list[tuple[str, np.ndarray]] = []
    for clip in sorted(clips, key=lambda c: c.role != "ref"):  # references first
        with open_video(clip.path) as video:
            frames = video.sample(fps=1.0, max_side=160)
        useful = informative_frames(frames.images)
        if not useful.any():
            warn(f"dropped {clip.id}: no informative frames (blank)")
            continue
        thumbs = thumbnail_descriptor(list(frames.images[useful]))
        twin = next((rid for rid, t in ref_thumbs if float((thumbs @ t.T).max()) >= same_picture), None)
        if twin is not None:
            warn(f"dropped {clip.id}: shows the same picture as reference {twin}")
            continue
        kept.append(clip)
        if clip.role == "ref":
            ref_thumbs.append((clip.id, thumbs))
    order = {c.id: k for k, c in enumerate(clips)}
    return sorted(kept, key=lambda c: order[c.id])


SUITES = ("heldout", "classic", "audio")
NEGATIVE_KINDS = ("non_copy", "look_alike", "silent", "music_free", "unrelated")  # no copy in them
# Kinds scored together as well as alone. "sound alone": every query whose picture shows no
# copy (the sound-kept and sped copies, and the negatives): a kind's own µAP cannot see a
# method's false alarms on other queries (Chromaprint flags every room-tone negative), a
# pool's can.
POOLS = {"sound alone": ("sound_kept", "sound_sped", "silent", "music_free", "unrelated")}


def build_benchmark(
    sources: list[Path],
    work: Path,
    *,
    suite: str = "classic",
    seed: int = 0,
    clip_seconds: float = 6.0,
    fps: float = 10.0,
    max_side: int = 480,
    warn: Callable[[str], None] = lambda m: None,
    progress: Callable[[Any, int, str], Any] | None = None,
    audio: list[Path] | None = None,
) -> Benchmark:
    """Render references and queries under `work` (reused when the same parameters built it).

    `suite="classic"` is the benchmark as first measured (kept unchanged as a regression
    check); `"heldout"` is the one meant for sources the embedding never saw: partial copies
    of 3-5 s inside other footage, strong colour grades, and only truly identical pictures
    screened out, so other moments of a fixed-camera scene stay in as look-alike non-copies;
    `"audio"` gives the references soundtracks from the `audio` recordings and asks about
    the sound (`vq.eval.dedup_audio`).
    """
    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r} (choose from {', '.join(SUITES)})")
    if (suite == "audio") != bool(audio):
        raise UsageError("--audio DIR (recordings) goes with --suite audio, and only with it")
    files = video_files(sources)
    params = {
        "version": BENCHMARK_VERSION,
        "sources": [str(p.resolve()) for p in files],
        "seed": seed,
        "clip_seconds": clip_seconds,
        "fps": fps,
        "max_side": max_side,
    }
    if suite != "classic":  # the classic parameters stay as they were (cached benchmarks)
        params.update(suite=suite, version=HELDOUT_VERSION)
    if suite == "audio":
        from vq.eval.dedup_audio import AUDIO_SUITE_VERSION, heard_by
        from vq.pipelines.dedup import DedupConfig

        params["audio"] = [str(Path(p).resolve()) for p in audio or []]
        params["audio_version"] = AUDIO_SUITE_VERSION
        params["audio_heard"] = heard_by(DedupConfig().audio_model)
    manifest = work / "benchmark.json"
    if manifest.exists():
        try:
            cached = Benchmark.from_json(json.loads(manifest.read_text()))
            if cached.params == params and all(Path(q.path).exists() for q in cached.queries):
                return cached
        except (ValueError, KeyError, TypeError):
            pass
    for sub in ("clips", "queries"):
        shutil.rmtree(work / sub, ignore_errors=True)
        (work / sub).mkdir(parents=True, exist_ok=True)

    track = progress or (lambda items, total, desc: items)
    clips = plan_clips(files, clip_seconds, max_side, warn)
    for clip in track(clips, len(clips), "cutting clips"):
        clip.path = str(work / "clips" / f"{clip.id}.mp4")
        synth.render(
            clip.source, clip.path, [synth.Trim(clip.start, clip.end)], fps=fps, size=clip.size, audio=False
        )
    clips = screen_clips(clips, warn, same_picture=0.9 if suite == "classic" else 0.99)
    refs = [c for c in clips if c.role == "ref"]
    others = [c for c in clips if c.role == "other"]
    if not refs or not others:
        raise UsageError(
            f"need videos giving at least one reference and one non-reference clip of ≥ {MIN_CLIP:.0f} s "
            f"(got {len(refs)} and {len(others)} from {len(files)} files)"
        )
    rng = np.random.default_rng(seed)
    backgrounds = [synth.BackgroundVideo(c.path, c.size, fps=fps) for c in others[:3]]

    if suite == "audio":
        from vq.eval.audio import load_recordings
        from vq.eval.base import QuietUi
        from vq.eval.dedup_audio import audio_query_jobs, unheard_first

        recordings = unheard_first(load_recordings(list(audio or []), 60.0, QuietUi()), params["audio_heard"])
        unheard = sum(name not in params["audio_heard"] for name, _ in recordings)
        if unheard < len(refs):
            warn(
                f"{len(refs) - unheard} of {len(refs)} references carry a recording the learned audio "
                "fingerprint trained on (add unheard music: scripts/gather_audio.py --packages)"
            )
        jobs = audio_query_jobs(refs, others, recordings, rng, work, fps, Query)
    else:
        jobs = _query_jobs(suite, refs, others, rng, backgrounds, work, fps)
    queries = [job() for job in track(jobs, len(jobs), "rendering queries")]
    bench = Benchmark(params, clips, queries)
    atomic_write_text(manifest, json.dumps(bench.to_json(), indent=1) + "\n")
    return bench


def _query_jobs(suite, refs, others, rng, backgrounds, work, fps) -> list[Callable[[], Query]]:
    """Per reference: two single edits (every spatial family in turn), a stack (frame +
    overlay + photometric), a speed change, a partial copy; the held-out suite makes the
    partial copy 3-5 s inside 3-5 s of other footage on each side and adds a strong colour
    grade. Three edited versions of every non-reference. (The draw order of the classic
    suite is kept exactly: its benchmark is rebuilt identically from the same seed.)"""
    heldout = suite == "heldout"
    jobs: list[Callable[[], Query]] = []
    families = list(synth.SPATIAL_FAMILIES if heldout else CLASSIC_FAMILIES)
    rng.shuffle(families)
    cycle = iter(families * (2 * len(refs) // len(families) + 2))
    ref_videos = {c.source for c in refs}
    for ref in refs:
        for _ in range(2):
            jobs.append(_copy_job(ref, "full", [next(cycle)], rng, backgrounds, work))
        stack = [str(rng.choice(FRAMES)), str(rng.choice(OVERLAYS)), str(rng.choice(PHOTOMETRIC))]
        jobs.append(_copy_job(ref, "stacked", stack, rng, backgrounds, work))
        jobs.append(_copy_job(ref, "speed", ["speed", str(rng.choice(LIGHT))], rng, backgrounds, work))
        if heldout:
            jobs.append(_partial_job(ref, others, rng, work, fps, span=(3.0, 5.0), host=(3.0, 5.0)))
            jobs.append(_copy_job(ref, "graded", ["grade", str(rng.choice(LIGHT))], rng, backgrounds, work))
        else:
            jobs.append(_partial_job(ref, others, rng, work, fps))
    for other in others:
        look_alike = other.source in ref_videos
        variants = (
            [str(rng.choice(LIGHT))],
            [str(rng.choice(FRAMES)), str(rng.choice(OVERLAYS))],
            ["grade", "crop"] if heldout else [str(rng.choice(PHOTOMETRIC)), "crop"],
        )
        for fam in variants:
            jobs.append(_non_copy_job(other, fam, rng, backgrounds, work, look_alike))
    return jobs


def _edits(families: list[str], rng, size: tuple[int, int], backgrounds) -> list[synth.Edit]:
    out: list[synth.Edit] = []
    for fam in families:
        background = backgrounds[int(rng.integers(len(backgrounds)))] if backgrounds else None
        edit = synth.random_edit(fam, rng, size, background=background)
        out.append(edit)
        if not isinstance(edit, synth.TEMPORAL):
            _, size = edit.map_box((0, 0, *size), size)
    return out


def _copy_job(ref: Clip, kind: str, families: list[str], rng, backgrounds, work: Path):
    edits = _edits(families, rng, ref.size, backgrounds)
    qid = f"{kind}-{ref.id}-{'+'.join(families)}"

    def job() -> Query:
        path = work / "queries" / f"{qid}.mp4"
        record = synth.render(ref.path, path, edits, audio=False)
        truth = [
            {"ref_id": ref.id, "query_start": q0, "query_end": q1, "ref_start": r0, "ref_end": r1}
            for q0, q1, r0, r1 in record.segments
        ]
        return Query(qid, str(path), kind, families, truth)

    return job


def _partial_job(
    ref: Clip,
    others: list[Clip],
    rng,
    work: Path,
    fps: float,
    span: tuple[float, float] | None = None,
    host: tuple[float, float] = (1.5, 3.0),
):
    """A stretch of `ref` between stretches of two non-references: 50-80 % of the clip
    (classic) or `span` seconds; the host pieces last `host` seconds each."""
    length = ref.end - ref.start
    if span is None:
        copied = max(MIN_CLIP, length * float(rng.uniform(0.5, 0.8)))
    else:
        copied = float(rng.uniform(*span))
    span = min(copied, length)
    a = float(rng.uniform(0, length - span))
    before, after = (others[int(i)] for i in rng.choice(len(others), 2))
    b_len, a_len = (float(rng.uniform(*host)) for _ in range(2))
    b_len = min(b_len, before.end - before.start)
    a_len = min(a_len, after.end - after.start)
    family = str(rng.choice(LIGHT))
    edits = _edits([family], rng, ref.size, [])
    qid = f"partial-{ref.id}-{family}"

    def job() -> Query:
        path = work / "queries" / f"{qid}.mp4"
        pieces = [(before.path, 0.0, b_len), (ref.path, a, a + span), (after.path, 0.0, a_len)]
        record = synth.splice(pieces, path, edits, fps=fps, size=ref.size)
        q0, q1, r0, r1 = record.segments[1]
        truth = [{"ref_id": ref.id, "query_start": q0, "query_end": q1, "ref_start": r0, "ref_end": r1}]
        return Query(qid, str(path), "partial", [family], truth)

    return job


def _non_copy_job(clip: Clip, families: list[str], rng, backgrounds, work: Path, look_alike: bool):
    edits = _edits(families, rng, clip.size, backgrounds)
    qid = f"non_copy-{clip.id}-{'+'.join(families)}"

    def job() -> Query:
        path = work / "queries" / f"{qid}.mp4"
        synth.render(clip.path, path, edits, audio=False)
        return Query(qid, str(path), "non_copy", families, [], look_alike)

    return job


# -- running and scoring -----------------------------------------------------------------------------


def run_method(
    bench: Benchmark,
    embedder: Any,
    library_dir: Path,
    *,
    fps: float,
    query_fps: float | None = None,
    thresholds: Any = None,
    config: Any = None,
    progress: Callable[[Any, int, str], Any] | None = None,
) -> dict[str, Any]:
    """Ingest the references into a fresh library at `library_dir` (storing `fps`,
    matching queries at `query_fps`, deciding with `thresholds`, default the model's),
    query every query. `embedder` may be a list: the library's, then one companion
    library's per further embedder (each with its own model's thresholds)."""
    from contextlib import ExitStack
    from dataclasses import replace

    from vq.index.library import COMPANIONS, Library, LibraryConfig
    from vq.pipelines.dedup import Dedup

    embedders = list(embedder) if isinstance(embedder, (list, tuple)) else [embedder]
    shutil.rmtree(library_dir, ignore_errors=True)
    track = progress or (lambda items, total, desc: items)
    label = "+".join(e.name for e in embedders)
    records = []
    with ExitStack() as stack:
        libs = []
        for k, e in enumerate(embedders):
            lib_config = LibraryConfig(
                model=e.name,
                model_sha256=e.fingerprint,
                dim=e.dim,
                fps=fps,
                query_fps=query_fps,
                thresholds=thresholds or _matching_at(e, fps),
                name="main" if k == 0 else f"main+{e.name}",
                companion_of=None if k == 0 else "main",
            )
            root = library_dir if k == 0 else library_dir / COMPANIONS / e.name
            libs.append(stack.enter_context(Library.create(root, lib_config)))
        dedup = Dedup(embedders, libs, config)
        # References are ingested whole (a library holds main-path vectors); only the queries
        # meet the deadline.
        ingest = Dedup(embedders, libs, replace(config, deadline=None)) if config else dedup
        for ref in track(bench.refs, len(bench.refs), f"{label}: ingesting"):
            rec = ingest.process(ref.path, name=ref.id, query=False)
            if rec.status != "ok":
                raise UsageError(f"reference {ref.id} failed: {rec.error}")
        for q in track(bench.queries, len(bench.queries), f"{label}: querying"):
            records.append(dedup.process(q.path, name=q.id, ingest=False).to_json())
    return {"records": records}


def _matching_at(embedder: Any, fps: float) -> Any:
    """The thresholds a library storing `fps` starts with (as `vq index create` gives it):
    the card's, at that rate, for a model with a card; a baseline's own otherwise."""
    from vq.match.thresholds import Thresholds

    artifact = getattr(embedder, "artifact", None)
    return Thresholds.from_card(artifact.card, fps) if artifact is not None else embedder.matching


def predictions_of(records: list[dict[str, Any]]) -> list[Match]:
    return [
        Match(
            rec["id"],
            m["ref_id"],
            s["query_start"],
            s["query_end"],
            s["ref_start"],
            s["ref_end"],
            s["score"],
        )
        for rec in records
        for m in rec.get("matches", [])
        for s in m["segments"]
    ]


def score(bench: Benchmark, records: list[dict[str, Any]]) -> dict[str, Any]:
    truth = bench.truth()
    preds = predictions_of(records)
    truth_pairs = {m.pair for m in truth}
    pred_pairs = {m.pair for m in preds}
    kinds: dict[str, dict[str, Any]] = {}
    for kind in sorted({q.kind for q in bench.queries}):
        qs = [q for q in bench.queries if q.kind == kind]
        found = sum(any((q.id, t["ref_id"]) in pred_pairs for t in q.truth) for q in qs)
        flagged = sum(any(p[0] == q.id for p in pred_pairs) for q in qs)
        kinds[kind] = {"queries": len(qs), "found": found, "flagged": flagged}
        ids = {q.id for q in qs}
        kind_truth = [m for m in truth if m.query_id in ids]
        if kind_truth:  # the kind's own segment µAP (its queries' truth and predictions only)
            kinds[kind]["segment_uap"] = segment_ap(kind_truth, [m for m in preds if m.query_id in ids])
    looks = [q for q in bench.queries if q.look_alike]
    kinds["look_alike"] = {
        "queries": len(looks),
        "found": 0,
        "flagged": sum(any(p[0] == q.id for p in pred_pairs) for q in looks),
    }
    pools = {}
    for pool, members in POOLS.items():
        ids = {q.id for q in bench.queries if q.kind in members}
        if not set(members) <= set(kinds):
            continue
        pool_truth = [m for m in truth if m.query_id in ids]
        pool_preds = [m for m in preds if m.query_id in ids]
        pools[pool] = {
            "queries": len(ids),
            "video": video_prf({m.pair for m in pool_truth}, {m.pair for m in pool_preds}),
            "segment_uap": segment_ap(pool_truth, pool_preds),
        }
    timings = [r["timings"]["total"] for r in records if r.get("timings")]
    return {
        "video": video_prf(truth_pairs, pred_pairs),
        "segment_uap": segment_ap(truth, preds),
        "vcsl": vcsl_f1(truth, preds),
        "kinds": kinds,
        "pools": pools,
        "errors": [r["id"] for r in records if r["status"] != "ok"],
        "seconds_per_query": float(np.median(timings)) if timings else None,
    }


def evaluate(
    bench: Benchmark,
    methods: dict[str, Any],
    work: Path,
    *,
    fps: float,
    query_fps: float | None = None,
    config: Any = None,
    progress: Callable[[Any, int, str], Any] | None = None,
    calibrate_decision: bool = False,
) -> dict[str, Any]:
    """Run every method (name -> embedder) and score it. With `calibrate_decision` each
    method runs with loose thresholds (its frame threshold, segments down to the lowest
    score tried, no cross-reference suppression) and its report adds the (min_score,
    ref_margin) that does best here (`calibration`); the scores reported stay those of the
    loose run, so nothing tuned here passes for a measurement."""
    from dataclasses import replace

    report: dict[str, Any] = {}
    for name, embedder in methods.items():
        t0 = time.perf_counter()
        loose = None
        if calibrate_decision:
            base = embedder.matching
            loose = replace(base, min_score=min(base.frame, MIN_SCORES[0]), ref_margin=REF_MARGINS[-1])
            if base.min_motion > -1.0:  # judge every segment, drop none: each records its agreement
                loose = replace(loose, min_motion=LOOSE_MOTION)
        run = run_method(
            bench,
            embedder,
            work / f"library-{name}",
            fps=fps,
            query_fps=query_fps,
            thresholds=loose,
            config=config,
            progress=progress,
        )
        report[name] = score(bench, run["records"])
        if calibrate_decision:
            report[name]["calibration"] = calibrate(bench, run["records"])
        report[name]["seconds"] = time.perf_counter() - t0
        report[name]["records"] = run["records"]
    return report


# -- calibrating the library's decision ----------------------------------------------------------

MIN_SCORES = tuple(round(0.70 + 0.01 * k, 2) for k in range(30))  # 0.70 .. 0.99
REF_MARGINS = (0.0, 0.01, 0.02, 0.03, 0.05, 1.0)  # 1.0: no cross-reference suppression
# The look-alike test's cut (`vq.match.motion`; -1: off). The loose run judges every
# segment at LOOSE_MOTION, which keeps them all, so each cut can be replayed from its
# records. (A segment only its reversed direction would pass is not replayed: the loose
# run keeps it forwards.)
MIN_MOTIONS = (-1.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
LOOSE_MOTION = -0.999


def decide(
    records: list[dict[str, Any]], min_score: float, ref_margin: float, min_motion: float = -1.0
) -> list[dict[str, Any]]:
    """`records` as a library with these thresholds would have reported them (from a run
    whose thresholds were looser: lowest segment score, no cross-reference suppression,
    every segment's motion agreement recorded; one without it is kept, as the library
    keeps a segment it cannot judge)."""
    from vq.match.segments import Segment, best_references

    def stands(s: dict[str, Any]) -> bool:
        return s["score"] >= min_score and (s.get("motion") is None or s["motion"] >= min_motion)

    out = []
    for rec in records:
        by_ref: dict[str, list[Segment]] = {}
        for m in rec.get("matches", []):
            kept = [Segment(**s) for s in m["segments"] if stands(s)]
            if kept:
                by_ref[m["ref_id"]] = kept
        matches = [
            {"ref_id": ref, "score": max(s.score for s in segs), "segments": [s.to_json() for s in segs]}
            for ref, segs in best_references(by_ref, ref_margin).items()
        ]
        out.append({**rec, "matches": matches})
    return out


def calibrate(bench: Benchmark, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The (min_score, ref_margin, min_motion) that maximises video F1 on this benchmark
    (ties: the stricter score, then the smaller margin, then the stricter cut), with the
    whole grid for the report. The cut is searched only where the records carry agreements."""
    judged = any("motion" in s for r in records for m in r.get("matches", []) for s in m["segments"])
    grid = []
    for margin, min_score, min_motion in product(REF_MARGINS, MIN_SCORES, MIN_MOTIONS if judged else (-1.0,)):
        result = score(bench, decide(records, min_score, margin, min_motion))
        grid.append(
            {
                "min_score": min_score,
                "ref_margin": margin,
                "min_motion": min_motion,
                "f1": result["video"]["f1"],
                "precision": result["video"]["precision"],
                "recall": result["video"]["recall"],
                "segment_uap": result["segment_uap"],
                "look_alikes_flagged": result["kinds"]["look_alike"]["flagged"],
            }
        )
    best = max(grid, key=lambda g: (round(g["f1"], 6), g["min_score"], -g["ref_margin"], g["min_motion"]))
    return {"best": best, "grid": grid}


def save_matching(artifact: Any, best: dict[str, Any], how: str, fps: float | None = None) -> None:
    """Record a calibrated decision in the model card's `matching` block (read by `vq index
    create` for new libraries; the look-alike cut also for the library rate `fps` it was
    calibrated at, where the card gives cuts per rate). Cards are not checksummed: nothing
    else changes."""
    import json as _json

    from vq.models import CARD_FILE

    path = artifact.root / CARD_FILE
    card = _json.loads(path.read_text())
    matching = dict(card.get("matching") or {})
    earlier = matching.get("how")
    matching.update(min_score=best["min_score"], ref_margin=best["ref_margin"])
    if best.get("min_motion", -1.0) > -1.0:
        matching["min_motion"] = best["min_motion"]
        if fps is not None and matching.get("min_motion_at_fps"):
            matching["min_motion_at_fps"] = {**matching["min_motion_at_fps"], f"{fps:g}": best["min_motion"]}
    matching["how"] = f"{earlier}; then {how}" if earlier else how
    card["matching"] = matching
    try:
        atomic_write_text(path, _json.dumps(card, indent=2) + "\n")
    except OSError as e:
        raise UsageError(
            f"cannot write {path} ({e.strerror}); copy the model folder somewhere writable"
        ) from None


def summary(bench: Benchmark) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for q in bench.queries:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    return {
        "references": len(bench.refs),
        "reference_seconds": round(sum(c.end - c.start for c in bench.refs), 1),
        "queries": len(bench.queries),
        "kinds": kinds,
        "look_alikes": sum(q.look_alike for q in bench.queries),
        "truth_segments": len(bench.truth()),
    }


# -- the `vq eval dedup` harness -------------------------------------------------------------------


@dataclass
class DedupOptions:
    sources: list[Path] = field(metadata={"help": "Source videos (folders or files).", "required": True})
    work: Path = field(
        metadata={"help": "Where the benchmark and its libraries are built.", "required": True}
    )
    model: str | None = model_option()
    companion: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Run the model with a companion library under this model (as vq index create "
            "--companion; repeatable): one method, both models' finds. Default: as a new library of the "
            "model gets (vq-embed: vq-embed-luma; with --calibrate none); none: the model alone."
        },
    )
    backend: str = backend_option()
    suite: str = field(
        default="heldout",
        metadata={
            "help": "heldout (3-5 s partial copies, strong grades, look-alikes), classic (as first run) "
            "or audio (soundtrack kept / replaced, reversed, silent; needs --audio)."
        },
    )
    audio: list[Path] = field(
        default_factory=list,
        metadata={"help": "Recordings for --suite audio (scripts/gather_audio.py)."},
    )
    fps: float | None = field(
        default=None,
        metadata={"help": "Library sampling rate (default: the product's; classic suite: 2)."},
    )
    query_fps: float | None = field(
        default=None,
        metadata={"help": "Query sampling rate (default: the product's rule; classic suite: = --fps)."},
    )
    aligner: str = field(default="diagonal", metadata={"help": "diagonal (the seed's) or tn."})
    coarse: str = field(default="vote", metadata={"help": "vote or mean."})
    min_nearest: int = field(
        default=2,  # DedupConfig.min_nearest (not imported here: the CLI stays light)
        metadata={"help": "vote: also align videos nearest to this many query frames (0: top N only)."},
    )
    pixels: bool = field(
        default=True,  # DedupConfig.pixels
        metadata={
            "help": "Judge look-alikes by the libraries' frame thumbnails too (--no-pixels: embeddings only)."
        },
    )
    baselines: str = field(
        default="pdq",
        metadata={"help": "Comma list: pdq (picture), chromaprint (sound; --suite audio), or '' for none."},
    )
    pdq_bits: int = field(
        default=31,
        metadata={"help": "PDQ match distance in bits of 256 (31: PDQ's reference operating point)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for the edits."})
    clip_seconds: float = field(default=6.0, metadata={"help": "Length of the reference clips."})
    deadline: float | None = field(
        default=None,
        metadata={
            "help": "Seconds of decoding before a query takes the timeout fallback (0: every query does; "
            "as vq run --deadline)."
        },
    )
    sound: bool = field(default=True, metadata={"help": "Match soundtracks too (--no-sound: picture only)."})
    calibrate: bool = field(
        default=False,
        metadata={"help": "Also find the segment-score threshold and reference margin that do best here."},
    )
    save_thresholds: bool = field(
        default=False,
        metadata={
            "help": "With --calibrate: write them into the model's card (matching), for new libraries."
        },
    )


def run(opts: DedupOptions, ui: Ui) -> Report:
    """Copy-detection benchmark: video P/R/F1, VSC segment µAP, VCSL F1; model vs PDQ."""
    from vq.eval.baselines import PdqFrames
    from vq.match import ALIGNERS
    from vq.pipelines.dedup import DedupConfig
    from vq.stages.embed import Embedder

    chosen = [b.strip() for b in opts.baselines.split(",") if b.strip()]
    if set(chosen) - {"pdq", "chromaprint"}:
        raise UsageError(
            f"unknown baseline(s) {sorted(set(chosen) - {'pdq', 'chromaprint'})}: choose pdq, chromaprint"
        )
    if "chromaprint" in chosen and opts.suite != "audio":
        raise UsageError("the chromaprint baseline matches soundtracks: it goes with --suite audio")
    if "chromaprint" in chosen:
        from vq.eval.audio import Chromaprint

        Chromaprint()  # fails now, in one line, where fpcalc is missing
    if opts.coarse not in ("vote", "mean"):
        raise UsageError(f"--coarse must be vote or mean, not {opts.coarse!r}")
    if opts.min_nearest < 0:
        raise UsageError(f"--min-nearest must be 0 or more, not {opts.min_nearest}")
    ALIGNERS.get(opts.aligner)  # fails early on an unknown name
    from vq.pipelines.library import DEFAULT_FPS, DEFAULT_QUERY_FPS

    if opts.save_thresholds and not opts.calibrate:
        raise UsageError("--save-thresholds needs --calibrate")
    from vq.pipelines.library import companions_asked, default_companions

    asked = companions_asked(opts.companion)
    if asked and opts.calibrate:
        raise UsageError("--calibrate tunes one model's thresholds: run it without --companion")
    classic = opts.suite == "classic"
    fps = opts.fps or (2.0 if classic else DEFAULT_FPS)
    query_fps = opts.query_fps or (fps if classic else max(DEFAULT_QUERY_FPS, fps))
    if fps <= 0 or query_fps <= 0:
        raise UsageError("--fps and --query-fps must be positive")
    if opts.deadline is not None and opts.deadline < 0:
        raise UsageError("--deadline must be >= 0")

    bench = build_benchmark(
        opts.sources,
        opts.work,
        suite=opts.suite,
        seed=opts.seed,
        clip_seconds=opts.clip_seconds,
        warn=lambda message: ui.note(message, warn=True),
        progress=ui.track,
        audio=list(opts.audio) or None,
    )
    info = summary(bench)
    ui.note(
        f"{info['references']} references ({info['reference_seconds']} s), {info['queries']} queries "
        f"{info['kinds']}, {info['look_alikes']} look-alikes"
    )
    embedder = Embedder(opts.model, backend=opts.backend).open()
    methods: dict[str, Any] = {embedder.name: embedder}
    companions = asked  # None: as a new library gets them; one model where thresholds are tuned
    if companions is None:
        companions = () if opts.calibrate else default_companions(embedder.artifact)
    if companions:
        partners = [Embedder(m, backend=opts.backend).open() for m in companions]
        methods = {"+".join(e.name for e in (embedder, *partners)): [embedder, *partners]}
    if "pdq" in chosen:
        methods["pdq"] = PdqFrames(bits=opts.pdq_bits)
    config = DedupConfig(
        coarse=opts.coarse,
        min_nearest=opts.min_nearest,
        pixels=opts.pixels,
        aligner=opts.aligner,
        deadline=opts.deadline,
        audio=opts.sound,
    )
    report = evaluate(
        bench,
        methods,
        opts.work,
        fps=fps,
        query_fps=query_fps,
        config=config,
        progress=ui.track,
        calibrate_decision=opts.calibrate,
    )
    if "chromaprint" in chosen:
        from vq.eval.dedup_audio import run_chromaprint

        t0 = time.perf_counter()
        records = run_chromaprint(bench, ui.track)["records"]
        report["chromaprint"] = score(bench, records) | {"records": records}
        report["chromaprint"]["seconds"] = time.perf_counter() - t0
    calibration_rows = [
        {"method": n, **r["calibration"]["best"]} for n, r in report.items() if "calibration" in r
    ]
    if opts.save_thresholds:
        best = report[embedder.name]["calibration"]["best"]
        save_matching(embedder.artifact, best, f"vq eval dedup --calibrate, seed {opts.seed}", fps)
        where = embedder.artifact.root
        ui.note(
            f"saved min_score {best['min_score']}, ref_margin {best['ref_margin']}, "
            f"min_motion {best.get('min_motion', -1.0)} in {where}"
        )

    rows = [
        {
            "method": name,
            "precision": r["video"]["precision"],
            "recall": r["video"]["recall"],
            "f1": r["video"]["f1"],
            "uap": r["segment_uap"],
            "vcsl_f1": r["vcsl"]["f1"],
            "s_per_query": r["seconds_per_query"],
        }
        for name, r in report.items()
    ]
    kind_rows = []
    for kind in next(iter(report.values()))["kinds"]:
        false_alarms = kind in NEGATIVE_KINDS
        key = "flagged" if false_alarms else "found"
        row: dict[str, Any] = {"kind": f"{kind} (false alarms)" if false_alarms else kind}
        for name, r in report.items():
            row[name] = f"{r['kinds'][kind][key]}/{r['kinds'][kind]['queries']}"
        kind_rows.append(row)
    pool_rows = [
        {
            "pool": f"{pool} ({r['pools'][pool]['queries']} queries)",
            "method": name,
            "f1": r["pools"][pool]["video"]["f1"],
            "uap": r["pools"][pool]["segment_uap"],
        }
        for pool in POOLS
        for name, r in report.items()
        if pool in r.get("pools", {})
    ]
    return Report(
        tables=[
            Table(
                "copy detection",
                [
                    ("method", "method"),
                    ("precision", "video P"),
                    ("recall", "video R"),
                    ("f1", "video F1"),
                    ("uap", "segment µAP"),
                    ("vcsl_f1", "VCSL F1"),
                    ("s_per_query", "s/query (p50)"),
                ],
                rows,
            ),
            Table("per kind", [("kind", "query kind"), *[(n, n) for n in report]], kind_rows),
            *(
                [
                    Table(
                        "pooled kinds",
                        [("pool", "kinds"), ("method", "method"), ("f1", "video F1"), ("uap", "segment µAP")],
                        pool_rows,
                    )
                ]
                if pool_rows
                else []
            ),
            *(
                [
                    Table(
                        "calibrated decision (tuned on this benchmark: check it on another seed)",
                        [
                            ("method", "method"),
                            ("min_score", "min segment score"),
                            ("ref_margin", "reference margin"),
                            ("min_motion", "min motion"),
                            ("f1", "video F1"),
                            ("precision", "video P"),
                            ("recall", "video R"),
                            ("segment_uap", "segment µAP"),
                            ("look_alikes_flagged", "look-alikes flagged"),
                        ],
                        calibration_rows,
                    )
                ]
                if calibration_rows
                else []
            ),
        ],
        data={
            "benchmark": info,
            "params": bench.params,
            "fps": fps,
            "query_fps": query_fps,
            "aligner": opts.aligner,
            "coarse": opts.coarse,
            "min_nearest": opts.min_nearest,
            "pixels": opts.pixels,
            "methods": report,
        },
    )


EVALUATOR = Evaluator(
    summary="copy-detection benchmark built from source clips (full, stacked, speed, partial copies; "
    "look-alike non-copies): video P/R/F1, VSC segment µAP, VCSL F1, model vs PDQ",
    options=DedupOptions,
    run=run,
)
