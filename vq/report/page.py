"""The review page: one self-contained HTML file for a run's records (`vq report`).

The copy-detection seed's output is a hint for human reviewers ("this upload copies that
earlier video, here"); this page is where they read it. Per upload it shows the verdict,
and for each copy found the upload's and the reference's frames side by side at the
matched times, the similarity matrix with the aligned segments drawn on it, the content
box on a frame, and the quality score over time with its key frames; errors are said in
plain words. Cards can be filtered by verdict and library and sorted by match score,
quality or name in the page (a few lines of inline script; no network, images inline).

Rendering is Jinja2 (autoescaped) from `templates/report.html.j2`; pictures come from
`vq.report.figures` (matplotlib) and `vq.report.frames` (decoded thumbnails).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vq.fsutil import atomic_write_text
from vq.report.figures import QUALITY_WORDS, quality_timeline, similarity_heatmap
from vq.report.frames import THUMB_SIDE, data_uri, draw_box, frames_at

MAX_SEGMENT_THUMBS = 3  # pairs of thumbnails per match (the best-scoring segments)

# Error messages as a reviewer should read them: (fragment of the message, plain words).
# Matched against the message less its "path: " prefix (a folder name must not match).
TOO_LONG = "Processing took too long and was stopped; the video was not checked."
NO_PICTURE = "The file has no picture that could be decoded."
DAMAGED = "The file is damaged or not a video."
PLAIN_ERRORS = [
    ("no result after", TOO_LONG),  # the watchdog's per-video --timeout
    ("passed its deadline", TOO_LONG),
    ("no decodable video frame", NO_PICTURE),
    ("no frames decoded", NO_PICTURE),
    ("no video stream", "The file has no video in it."),
    ("empty file", "The file is empty."),
    ("no such file", "The file was not found."),
    ("cannot open", DAMAGED),
    ("invalid data", DAMAGED),
    ("not a video", DAMAGED),
    ("the worker died", "The video made the processing worker fail; it was skipped and the batch went on."),
]


def plain_error(message: str, path: str = "") -> str:
    detail = message[len(path) + 2 :] if path and message.startswith(f"{path}: ") else message
    low = detail.lower()
    for fragment, words in PLAIN_ERRORS:
        if fragment in low:
            return words
    return "The video could not be processed."


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def quality_words(score: float) -> str:
    return QUALITY_WORDS[int(np.clip(round(score), 1, 5))]


def match_view(upload: str, match: dict[str, Any]) -> dict[str, Any]:
    """What the page shows for one match: segments, thumbnail pairs, the heatmap."""
    from vq.pipelines.dedup import decode_evidence

    segments = sorted(match["segments"], key=lambda s: -s["score"])
    shown = segments[:MAX_SEGMENT_THUMBS]
    q_times = [(s["query_start"] + s["query_end"]) / 2 for s in shown]
    r_times = [(s["ref_start"] + s["ref_end"]) / 2 for s in shown]
    ups, up_why = frames_at(upload, q_times)
    refs, ref_why = frames_at(match.get("ref_path"), r_times)
    pairs = [
        {
            "segment": s,
            "upload": data_uri(ups[i]) if ups else None,
            "reference": data_uri(refs[i]) if refs else None,
            "upload_time": q_times[i],
            "ref_time": r_times[i],
        }
        for i, s in enumerate(shown)
    ]
    evidence = match.get("similarity")
    heatmap = None
    if evidence:
        matrix = decode_evidence(evidence)
        heatmap = _png_uri(
            similarity_heatmap(matrix, evidence["query_times"], evidence["ref_times"], match["segments"])
        )
    return {
        **match,
        "segments": segments,
        "pairs": pairs,
        "upload_missing": up_why,
        "reference_missing": ref_why,
        "heatmap": heatmap,
    }


def upload_view(record: dict[str, Any]) -> dict[str, Any]:
    """One card: verdict, facts, matches, content box, quality."""
    from vq.stages.embed import DECODE_MAX_SIDE

    path = record.get("path", "?")
    ok = record.get("status") == "ok"
    matches = record.get("matches", []) if ok else []
    verdict = "error" if not ok else ("copy" if matches else "original")
    view: dict[str, Any] = {
        "path": path,
        "name": Path(path).name,
        "verdict": verdict,
        "error": record.get("error"),
        "plain_error": plain_error(record.get("error") or "", path) if not ok else None,
        "duration": record.get("duration"),
        "libraries": sorted({m["library"] for m in matches}),
        "match_score": max((m["score"] for m in matches), default=0.0),
        "matches": [match_view(path, m) for m in matches],
        "enhanced": record.get("enhanced"),
        "box": None,
        "quality": None,
    }
    box = record.get("content_box")
    if ok and box:
        middle = float(record.get("duration") or 0.0) / 2
        frames, why = frames_at(path, [middle], max_side=DECODE_MAX_SIDE)  # the box's own pixels
        if frames:
            drawn = draw_box(frames[0], box, (frames[0].shape[1], frames[0].shape[0]))
            from PIL import Image

            scale = THUMB_SIDE / max(drawn.shape[:2])
            if scale < 1:
                size = (round(drawn.shape[1] * scale), round(drawn.shape[0] * scale))
                drawn = np.asarray(Image.fromarray(drawn).resize(size, Image.Resampling.LANCZOS))
        view["box"] = {**box, "image": data_uri(drawn) if frames else None, "missing": why, "time": middle}
    quality = record.get("quality")
    if quality is not None:
        q = dict(quality)
        if q.get("status") == "ok":
            q["words"] = quality_words(q["score"])
            q["chart"] = _png_uri(quality_timeline(q["segments"], q.get("key_frames", []), q["score"]))
        view["quality"] = q
    return view


def require_report_extras() -> None:
    """The page needs Jinja2 and matplotlib (the `report` extra; `cpu` and `gpu` bring them)."""
    from vq.errors import MissingExtraError

    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("the review page", "report", e) from e


def render_report(records: Iterable[dict[str, Any]], title: str = "vq review") -> str:
    require_report_extras()
    import jinja2

    from vq.errors import UsageError

    uploads = []
    for n, record in enumerate(records, start=1):
        try:
            uploads.append(upload_view(record))
        except (KeyError, IndexError, TypeError, ValueError) as e:
            where = record.get("path", "?") if isinstance(record, dict) else "?"
            raise UsageError(f"record {n} ({where}): not a vq run record ({type(e).__name__}: {e})") from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vq.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    counts = {v: sum(u["verdict"] == v for u in uploads) for v in ("copy", "original", "error")}
    return env.get_template("report.html.j2").render(
        title=title,
        uploads=uploads,
        counts=counts,
        libraries=sorted({lib for u in uploads for lib in u["libraries"]}),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report(records: Iterable[dict[str, Any]], out: str | Path, title: str = "vq review") -> Path:
    """Render the page and write it atomically (a failure leaves no half-written file)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_report(records, title))
    return out
