"""Score `detect_content_box` on generated cases with known boxes.

Each case takes a few frames of a real clip, applies one boxed edit family from
`vq.synth` with random parameters (borders, letterbox, blur fill, picture-in-picture
over another clip, template page, live-stream room, player screen recording) or none,
and compresses the result like a re-upload (JPEG at a random quality). The edits report
where the source picture landed, which is the ground truth.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vq.errors import UsageError
from vq.eval.base import Evaluator, Report, Table, Ui
from vq.media.sources import video_files
from vq.media.video import open_video
from vq.preprocess.content_box import detect_content_box, iou, solid_bars
from vq.synth import BOXED, BackgroundVideo, apply_spatial, random_edit, track_box


@dataclass
class Case:
    family: str
    frames: np.ndarray
    box: tuple[int, int, int, int]


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def make_cases(
    sources: list[str | Path], per_family: int = 6, frames: int = 8, width: int = 320, seed: int = 0
) -> list[Case]:
    rng = np.random.default_rng(seed)
    clips = []
    for src in sources:
        with open_video(src) as video:
            info = video.info
            size = (width, max(16, round(width * info.height / info.width)) // 2 * 2)
            span = min(info.duration or frames, float(frames))
            images = video.sample(count=frames, within=span, size=size).images
        # Sources with their own bars (pillarboxed films, letterboxed trailers) are cut to
        # their picture first, so "no edit" really means "the whole frame is picture".
        box = solid_bars(images)
        clips.append(np.ascontiguousarray(images[:, box[1] : box[3], box[0] : box[2]]))
    backgrounds = [
        BackgroundVideo(src, size=(width * 2, width * 9 // 8), fps=2, seconds=frames) for src in sources
    ]
    cases: list[Case] = []
    for family in ("none", *BOXED):
        for k in range(per_family):
            i = (k + len(cases)) % len(clips)
            clip = clips[i]
            h, w = clip.shape[1:3]
            if family == "none":
                edits = []
            else:
                bg = backgrounds[(i + 1) % len(backgrounds)]
                edits = [random_edit(family, rng, (w, h), background=bg)]
            quality = int(rng.integers(40, 95))
            out = np.stack([_jpeg(apply_spatial(edits, im, float(t)), quality) for t, im in enumerate(clip)])
            box, _ = track_box(edits, (w, h))
            cases.append(Case(family, out, box))
    return cases


def evaluate(cases: list[Case]) -> dict:
    """IoU per case, share of cases with IoU >= 0.9 overall and per family, ms per frame."""
    rows = []
    seconds = 0.0
    n_frames = 0
    for case in cases:
        start = time.perf_counter()
        found = detect_content_box(case.frames)
        seconds += time.perf_counter() - start
        n_frames += len(case.frames)
        rows.append(
            {
                "family": case.family,
                "iou": iou((found.x0, found.y0, found.x1, found.y1), case.box),
                "method": found.method,
            }
        )
    return {**summarize(rows), "ms_per_frame": 1000 * seconds / max(1, n_frames), "rows": rows}


def summarize(rows: list[dict]) -> dict:
    """Share of cases with IoU >= 0.9 and mean IoU, overall and per family, of `evaluate`
    rows (several evaluations' rows can be pooled)."""

    def stats(ious: np.ndarray) -> dict:
        return {"cases": len(ious), "iou_ge_0.9": float(np.mean(ious >= 0.9)), "mean_iou": float(ious.mean())}

    families = sorted({r["family"] for r in rows})
    return {
        **stats(np.array([r["iou"] for r in rows])),
        "per_family": {f: stats(np.array([r["iou"] for r in rows if r["family"] == f])) for f in families},
    }


# -- the `vq eval content-box` harness ----------------------------------------------------------------


@dataclass
class ContentBoxOptions:
    sources: list[Path] = field(metadata={"help": "Source videos the cases are cut from.", "required": True})
    per_family: int = field(default=20, metadata={"help": "Cases per edit family (and for 'none')."})
    seed: list[int] = field(default_factory=lambda: [0], metadata={"help": "Case seeds (repeatable)."})


def run(opts: ContentBoxOptions, ui: Ui) -> Report:
    """Share of cases whose detected box has IoU >= 0.9 with the truth, per boxed family."""
    files = video_files(opts.sources)
    if not files:
        raise UsageError("no source videos given")
    rows: list[dict] = []
    per_seed = {}
    for seed in ui.track(opts.seed, len(opts.seed), "content-box cases"):
        result = evaluate(make_cases(files, per_family=opts.per_family, seed=seed))
        rows += result["rows"]
        per_seed[seed] = {
            "cases": result["cases"],
            "iou_ge_0.9": result["iou_ge_0.9"],
            "ms_per_frame": result["ms_per_frame"],
        }
    report = {**summarize(rows), "per_seed": per_seed}
    table = [{"family": "all", **{k: report[k] for k in ("cases", "iou_ge_0.9", "mean_iou")}}] + [
        {"family": f, **stats} for f, stats in report["per_family"].items()
    ]
    return Report(
        tables=[
            Table(
                "content box",
                [
                    ("family", "family"),
                    ("cases", "cases"),
                    ("iou_ge_0.9", "IoU >= 0.9"),
                    ("mean_iou", "mean IoU"),
                ],
                table,
            )
        ],
        data={"sources": [str(f) for f in files], **report, "rows": rows},
    )


EVALUATOR = Evaluator(
    summary="content-box detection on generated padding, page and picture-in-picture cases (IoU)",
    options=ContentBoxOptions,
    run=run,
)
