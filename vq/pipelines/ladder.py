"""The ladder job (`vq ladder`): encode an upload at several (height, CRF) rungs, score
each as a viewer sees it with the no-reference quality model, and pick what to ship.

The seed's two uses of the quality score at pre-encode time:

1. **Per-title rung choice.** Every rung is encoded with a fast preset (the search),
   decoded, scaled back to the display size and scored by KVQ on a few windows of
   consecutive frames; at each height the scores are made non-increasing in CRF
   (`monotone_in_crf`: the model's noise, not the encoder, makes them rise; the record
   keeps `raw_score`). The (kbps, score) points give the convex hull
   (`vq.ladder.rd.upper_hull`); the rung shipped is the cheapest hull point within
   `max_drop` of the best rung, or within `max_drop` of the full-height rung at
   `match_crf` (a fixed ladder's quality at fewer bits), or that reaches a target score,
   or the best within a bitrate budget, or where one more score point would cost more
   than `kbps_per_point` (one price for a catalogue: the dynamic optimizer's Lagrangian
   form). No pristine reference is needed,
   which is what VMAF-driven searches (ab-av1, Av1an) need and uploads do not have.
   The default drop, like the client margin below, is in the model's score units: it
   comes from the model's card (`tuned_settings`), where `vq eval ladder` tuned it.
2. **Device-cloud post-processing.** With `client_post`, the next hull rung down is scored
   again after the phone's post-processing (`vq.ladder.client`); if it beats the chosen
   rung by `client_margin`, it ships instead and the record says the bandwidth saved (the
   evaluation, `reference=True`, scores every cheaper hull rung, to replay the decision
   for each rule's choice).

The search covers the first `max_seconds` of the video; with `out`, the shipped rung is
re-encoded over the whole video at the final (slower) preset, audio kept. With
`reference=True` (the evaluation) every rung and post-processed rung also gets VMAF
and VMAF NEG (`vq.eval.metrics.vmaf.VMAF_MODELS`: no credit for sharpening) against the
source on the same windows.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import MediaError, ModelError, UsageError
from vq.ladder.client import CLIENT_MODES, ClientPost, to_display
from vq.ladder.rd import choose_rung, client_decision, full_height_rung, monotone_in_crf, upper_hull
from vq.pipelines.score import segment_windows
from vq.preprocess.resize import resize
from vq.stages.quality import DEFAULT_VIEWS, QualityScorer

CODECS = ("h264", "hevc", "av1")
# CRF grids from "transparent" to "visibly coarse" per encoder (SVT-AV1's scale runs to 63).
DEFAULT_CRFS = {"h264": [18, 23, 28, 33, 38], "hevc": [20, 25, 30, 35, 40], "av1": [27, 35, 43, 51, 59]}
SEARCH_PRESETS = {"h264": "veryfast", "hevc": "veryfast", "av1": "10"}
FINAL_PRESETS = {"h264": "medium", "hevc": "medium", "av1": "6"}
# Settings in a quality model's score units, for a model whose card has no `ladder` section
# of its own (`tuned_settings`): the drop `vq eval ladder` tuned for the first `vq-kvq`
# (2026-12-01, BENCHMARKS.md), and a margin that ships any post-processed rung that ties.
DEFAULT_MAX_DROP = 0.015
DEFAULT_CLIENT_MARGIN = 0.0
SOURCE_MEMORY = 2 << 30  # bytes of decoded source frames the search may hold


@dataclass
class LadderOptions:
    codec: str = "h264"
    heights: list[int] = field(default_factory=list)  # empty: source, 2/3 and 1/2 of it
    crfs: list[int] = field(default_factory=list)  # empty: DEFAULT_CRFS[codec]
    target_score: float | None = None
    max_kbps: float | None = None
    max_drop: float | None = None
    match_crf: int | None = None  # max_drop counts from the full-height rung at this CRF
    kbps_per_point: float | None = None  # a price: the kbps one score point is worth
    client_post: list[str] = field(default_factory=list)
    client_margin: float | None = None  # None: the model's tuned margin (`tuned_settings`)
    client_model: str | None = None
    max_seconds: float = 10.0
    segment: float = 5.0  # seconds of video per scored window
    views: int = DEFAULT_VIEWS  # fragment placements averaged per window (QualityScorer)
    jobs: int = 0  # rungs encoded at once; 0: one per core
    search_preset: str | None = None
    final_preset: str | None = None
    model: str | None = None  # the KVQ model
    backend: str = "auto"
    precision: str = "fp32"
    reference: bool = False  # also VMAF against the source (evaluation)

    def checked(self) -> LadderOptions:
        if self.codec not in CODECS:
            raise UsageError(f"--codec must be one of {', '.join(CODECS)} (got {self.codec!r})")
        given = [x is not None for x in self._rules()]
        if sum(given) > 1:
            raise UsageError(
                "give one of --target-score, --max-kbps, --max-drop and --kbps-per-point, not both"
            )
        if self.match_crf is not None and any(given) and self.max_drop is None:
            raise UsageError(
                "--match-crf goes with --max-drop, not with --target-score, --max-kbps or --kbps-per-point"
            )
        if not any(given) and self.match_crf is not None:
            self.max_drop = 0.0  # matching a fixed ladder's rung: as good as it, by the model
        # With no rule at all, the drop is the model's tuned one: `with_model_settings`.
        if self.max_drop is not None and self.max_drop < 0 and self.match_crf is None:
            raise UsageError(
                "--max-drop must be >= 0 (a negative drop asks for better than --match-crf's rung)"
            )
        if self.max_kbps is not None and self.max_kbps <= 0:
            raise UsageError("--max-kbps must be > 0")
        if self.kbps_per_point is not None and not 0 < self.kbps_per_point < math.inf:
            raise UsageError("--kbps-per-point must be a finite price > 0")
        if any(h < 16 for h in self.heights):
            raise UsageError("--heights must be >= 16 px")
        lo, hi = (0, 63) if self.codec == "av1" else (0, 51)
        if any(not lo <= c <= hi for c in self.crf_grid()):
            raise UsageError(f"{self.codec} CRFs run from {lo} to {hi}")
        if self.views < 1:
            raise UsageError("--views must be >= 1")
        bad = [m for m in self.client_post if m not in CLIENT_MODES]
        if bad:  # before any rung is encoded, not after
            raise UsageError(f"unknown client post-processing {bad} (choose from {', '.join(CLIENT_MODES)})")
        if self.max_seconds <= 0 or self.segment <= 0:
            raise UsageError("--max-seconds and --segment must be > 0")
        if self.client_margin is not None and not self.client_post:
            raise UsageError("--client-margin goes with --client-post")
        return self

    def _rules(self) -> tuple[float | None, ...]:
        """The rung-choice rules, of which at most one is given (none: the model's drop)."""
        return (self.target_score, self.max_kbps, self.max_drop, self.kbps_per_point)

    def with_model_settings(self, card: Any) -> tuple[LadderOptions, dict[str, Any]]:
        """These options with the drop (when no rule was given) and the client margin (when
        client post-processing was asked for without one) filled from the quality model's
        card (`tuned_settings`), and what was filled in: {name: value, ..., "from": where}
        ({} when nothing was; the card is then not read)."""
        wanted = []
        if all(x is None for x in self._rules()):
            wanted.append("max_drop")
        if self.client_post and self.client_margin is None:
            wanted.append("client_margin")
        if not wanted:
            return self, {}
        tuned, source = tuned_settings(card)
        filled = {k: tuned[k] for k in wanted}
        if "client_margin" in wanted:
            # A margin tuned for other client modes or another number of views is still the
            # best there is, but the record says so (built-in values record neither).
            other = []
            if tuned.get("client_post") not in (None, sorted(self.client_post)):
                other.append("client post-processing")
            if tuned.get("views") not in (None, self.views):
                other.append("views")
            if other:
                source += f" (tuned with other {' and '.join(other)})"
        return replace(self, **filled), {**filled, "from": source}

    def crf_grid(self) -> list[int]:
        """The CRFs every height is encoded at: the given (or default) grid and `match_crf`."""
        grid = set(self.crfs or DEFAULT_CRFS[self.codec])
        return sorted(grid if self.match_crf is None else grid | {self.match_crf})


def ladder_section(
    max_drop: float,
    client_margin: float,
    views: int,
    client_post: list[str],
    tuning: list[str],
    met: dict[str, bool],
) -> dict[str, Any]:
    """The card's `ladder` section that `tuned_settings` reads (`vq eval ladder --card`):
    the tuned values, what they were tuned with (views, client modes, videos), and whether
    each met its goal on those videos (False: the grid's dearest end, the best it could do)."""
    return {
        "max_drop": float(max_drop),
        "client_margin": float(client_margin),
        "views": int(views),
        "client_post": sorted(client_post),
        "tuning": list(tuning),
        "met": dict(met),
    }


def tuned_settings(card: Any) -> tuple[dict[str, Any], str]:
    """(the card's `ladder` section, values checked, where it comes from) for a quality model.

    The drop and the client margin are in the model's own score units, so they belong to
    the model: `vq eval ladder --card` tunes them on videos beside the held-out ones and
    writes `ladder_section` into the card (a new model, a new tuning). A card without one
    gets the built-in values; a malformed one is an error, not a silent fallback."""
    if "ladder" not in card.extra:
        return {"max_drop": DEFAULT_MAX_DROP, "client_margin": DEFAULT_CLIENT_MARGIN}, "built-in default"
    section = card.extra["ladder"]
    values = [section.get(k) if isinstance(section, dict) else None for k in ("max_drop", "client_margin")]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ModelError(
            f"model '{card.name}': its card's ladder section needs finite max_drop and client_margin"
        )
    if values[0] < 0:
        raise ModelError(f"model '{card.name}': its card's ladder.max_drop must be >= 0")
    return {**section, "max_drop": float(values[0]), "client_margin": float(values[1])}, f"{card.name} card"


def default_heights(source_height: int) -> list[int]:
    """The source height, two thirds and half of it (even sizes), tallest first."""
    return sorted({_even(source_height * f) for f in (1.0, 2 / 3, 0.5)}, reverse=True)


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def rung_size(display: tuple[int, int], height: int) -> tuple[int, int]:
    """(w, h) of a rung `height` px tall with the display's aspect ratio, even for 4:2:0."""
    w, h = display
    return _even(w * height / h), _even(height)


@dataclass
class Source:
    frames: np.ndarray  # uint8 (T, H, W, 3), display orientation
    fps: float
    display: tuple[int, int]
    info: Any


def load_source(path: Path, max_seconds: float) -> Source:
    """The first `max_seconds` of `path`, decoded at display size (bounded in memory)."""
    from vq.media import open_video
    from vq.media.sampling import iter_frames

    with open_video(path) as video:
        info = video.info
        fps = float(info.fps or 25.0)
        frame_bytes = max(1, info.width * info.height * 3)
        limit = max(1, min(round(max_seconds * fps), SOURCE_MEMORY // frame_bytes))
        frames = []
        for _t, frame in iter_frames(video):
            frames.append(frame)
            if len(frames) >= limit:
                break
    if not frames:
        raise MediaError(f"{path}: no decodable video frames")
    return Source(np.stack(frames), fps, (frames[0].shape[1], frames[0].shape[0]), info)


def window_indices(n_frames: int, fps: float, window: int, segment: float) -> np.ndarray:
    """(windows, window) frame indices: one window of consecutive frames per segment."""
    duration = n_frames / fps
    spans = segment_windows(duration, fps, window, segment, max_segments=1000)
    idx = np.stack([np.clip(np.round(times * fps).astype(int), 0, n_frames - 1) for _, _, times in spans])
    return idx


def encode_rung(
    frames: np.ndarray,
    fps: float,
    codec: str,
    crf: int,
    size: tuple[int, int],
    preset: str,
    threads: int,
    keep: np.ndarray,
) -> tuple[int, np.ndarray, float]:
    """Scale, encode and decode one rung: (bytes written, decoded frames at `keep`, seconds).

    Not `encode_roundtrip`: that pads the width to a multiple of 64 and runs one thread
    (bit-exact degradations), which would change the very bitrate a ladder measures."""
    import av

    from vq.media.encode import write_video

    t0 = time.perf_counter()
    scaled = frames if (frames.shape[2], frames.shape[1]) == size else resize(frames, size, "bicubic")
    with tempfile.TemporaryDirectory(prefix="vq-ladder-") as tmp:
        path = Path(tmp) / "rung.mp4"
        write_video(path, scaled, fps, codec=codec, crf=crf, preset=preset, threads=threads)
        nbytes = path.stat().st_size
        wanted = set(int(i) for i in keep)
        decoded: dict[int, np.ndarray] = {}
        count = 0
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                count += 1
                if i in wanted:
                    decoded[i] = frame.to_ndarray(format="rgb24")
    if count != len(frames):
        raise MediaError(f"{codec} rung {size[1]}p crf {crf} decoded {count} of {len(frames)} frames")
    return nbytes, np.stack([decoded[int(i)] for i in keep]), time.perf_counter() - t0


def _identity(items: Iterable, total: int, description: str) -> Iterable:
    return items


def run_ladder(
    path: Path,
    opts: LadderOptions,
    out: Path | None = None,
    track: Callable[[Iterable, int, str], Iterable] = _identity,
) -> dict[str, Any]:
    """The whole ladder decision for one video, as one JSON-able record."""
    opts.checked()
    started = time.perf_counter()
    source = load_source(path, opts.max_seconds)
    n, fps, display = len(source.frames), source.fps, source.display
    heights = sorted(set(opts.heights or default_heights(display[1])), reverse=True)
    crfs = opts.crf_grid()
    clock = dict.fromkeys(("encode_s", "score_s", "post_s", "vmaf_s"), 0.0)
    clock["decode_s"] = time.perf_counter() - started

    with QualityScorer(
        opts.model, backend=opts.backend, precision=opts.precision, views=opts.views
    ) as scorer:
        scorer.open()
        opts, defaults = opts.with_model_settings(scorer.artifact.card)
        windows = window_indices(n, fps, scorer.frames, opts.segment)
        keep = windows.ravel()
        reference = to_display(source.frames[keep], display) if opts.reference else None

        def score(display_frames: np.ndarray) -> tuple[float, dict[str, float]]:
            """The KVQ score, and with a reference, VMAF and VMAF NEG (rounded)."""
            t0 = time.perf_counter()
            clips = display_frames.reshape(len(windows), scorer.frames, *display_frames.shape[1:])
            scores, _ = scorer.score_windows(clips)
            clock["score_s"] += time.perf_counter() - t0
            if reference is None:
                return float(np.mean(scores)), {}
            from vq.eval.metrics.vmaf import vmaf_scores

            t1 = time.perf_counter()
            values = vmaf_scores(display_frames, reference, fps=fps, models=("vmaf", "vmaf_neg"))
            clock["vmaf_s"] += time.perf_counter() - t1
            return float(np.mean(scores)), {k: round(float(np.mean(v)), 3) for k, v in values.items()}

        grid = [(h, c) for h in heights for c in crfs]
        jobs = opts.jobs or os.cpu_count() or 1
        jobs = max(1, min(jobs, len(grid)))
        threads = max(1, (os.cpu_count() or 1) // jobs)
        preset = opts.search_preset or SEARCH_PRESETS[opts.codec]
        rungs: list[dict[str, Any]] = []
        decoded: list[np.ndarray] = []
        with ThreadPoolExecutor(jobs) as pool:
            futures = [
                pool.submit(
                    encode_rung,
                    source.frames,
                    fps,
                    opts.codec,
                    c,
                    rung_size(display, h),
                    preset,
                    threads,
                    keep,
                )
                for h, c in grid
            ]
            for (h, c), future in track(zip(grid, futures, strict=True), len(grid), "rungs"):
                nbytes, frames, seconds = future.result()
                clock["encode_s"] += seconds
                quality, full_reference = score(to_display(frames, display))
                w, hh = rung_size(display, h)
                rung = {
                    "height": hh,
                    "width": w,
                    "crf": c,
                    "kbps": round(nbytes * 8 / (n / fps) / 1000, 2),
                    "score": round(quality, 4),
                    **full_reference,
                }
                rungs.append(rung)
                decoded.append(frames)

        kbps = [r["kbps"] for r in rungs]
        smoothed = monotone_in_crf(
            [r["score"] for r in rungs], [r["height"] for r in rungs], [r["crf"] for r in rungs]
        )
        for r, value in zip(rungs, smoothed, strict=True):
            r["raw_score"], r["score"] = r["score"], round(float(value), 4)
        scores = [r["score"] for r in rungs]
        hull = upper_hull(kbps, scores)
        for i, r in enumerate(rungs):
            r["on_hull"] = i in hull
        anchor = None if opts.match_crf is None else full_height_rung(rungs, opts.match_crf)
        chosen, why = choose_rung(
            kbps,
            scores,
            hull,
            opts.target_score,
            opts.max_kbps,
            opts.max_drop,
            anchor,
            kbps_per_point=opts.kbps_per_point,
        )
        record: dict[str, Any] = {
            "path": str(path),
            "status": "ok",
            "codec": opts.codec,
            "display": list(display),
            "searched_seconds": round(n / fps, 3),
            "windows": len(windows),
            "preset": {"search": preset, "final": opts.final_preset or FINAL_PRESETS[opts.codec]},
            "model": scorer.name,
            "target": {
                k: v
                for k, v in (
                    ("score", opts.target_score),
                    ("max_kbps", opts.max_kbps),
                    ("max_drop", opts.max_drop),
                    ("match_crf", opts.match_crf),
                    ("kbps_per_point", opts.kbps_per_point),
                )
                if v is not None
            },
            "defaults": defaults,  # the settings filled in from the model's card, and whence
            "rungs": rungs,
            "hull": hull,
            "chosen": {"rung": chosen, "why": why, **rungs[chosen]},
        }
        shipped = chosen
        if opts.client_post:
            cheaper = sorted((i for i in hull if kbps[i] < kbps[chosen]), key=lambda i: kbps[i])
            if not opts.reference:  # only the next rung down can ship (`client_decision`)
                cheaper = cheaper[-1:]
            post_scores: dict[str, dict[int, float]] = {}
            with ClientPost(opts.client_post, opts.client_model, opts.backend) as client:
                for mode in client.modes:
                    for i in track(cheaper, len(cheaper), f"client {mode}"):
                        t0 = time.perf_counter()
                        shown = client.apply(mode, decoded[i], display)
                        clock["post_s"] += time.perf_counter() - t0
                        quality, full_reference = score(shown)
                        post_scores.setdefault(mode, {})[i] = round(quality, 4)
                        rungs[i].setdefault("post", {})[mode] = {"score": round(quality, 4), **full_reference}
            decision = client_decision(kbps, scores, hull, chosen, post_scores, opts.client_margin)
            record["client"] = {"modes": client.modes, "margin": opts.client_margin, "decision": decision}
            if decision is not None:
                shipped = decision["ship"]
        record["shipped"] = {"rung": shipped, **{k: v for k, v in rungs[shipped].items() if k != "post"}}
        if shipped != chosen:
            record["shipped"]["post"] = record["client"]["decision"]["post"]
    if out is not None:
        record["output"] = write_final(path, out, opts, rungs[shipped], source)
    clock["total_s"] = time.perf_counter() - started
    record["timings"] = {k: round(v, 3) for k, v in clock.items()}
    return record


def write_final(path: Path, out: Path, opts: LadderOptions, rung: dict[str, Any], source: Source) -> dict:
    """Re-encode the whole video at the shipped rung with the final preset, audio kept."""
    from vq.media import open_video
    from vq.media.encode import write_video
    from vq.media.sampling import iter_frames

    preset = opts.final_preset or FINAL_PRESETS[opts.codec]
    size = (rung["width"], rung["height"])
    t0 = time.perf_counter()
    with open_video(path) as video:

        def scaled():
            for t, frame in iter_frames(video):
                yield t, frame if (frame.shape[1], frame.shape[0]) == size else resize(frame, size, "bicubic")

        write_video(
            out,
            scaled(),
            fps=source.fps,
            codec=opts.codec,
            crf=rung["crf"],
            preset=preset,
            timed=True,
            audio_from=path if source.info.has_audio else None,
        )
    from vq.media import probe

    info = probe(out)
    seconds = float(info.duration or 0.0)
    kbps = out.stat().st_size * 8 / seconds / 1000 if seconds else None
    return {
        "path": str(out),
        "preset": preset,
        "size": [info.width, info.height],
        "duration": seconds,
        "kbps": None if kbps is None else round(kbps, 2),
        "encode_s": round(time.perf_counter() - t0, 3),
    }
