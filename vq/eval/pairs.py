"""Pair evaluation of frame descriptors: can they tell an edited copy from a different frame?

The copy-detection seed scores its embedding on a pair test set (30k pairs): positives
are the same picture before and after editing, negatives are different pictures. Here
the pairs are generated from held-out images and video frames (never trained on; the
hold-out is drawn per frame, so a held-out frame's video may have given other frames to
training — `vq eval dedup --suite heldout` is the test on whole unseen videos):

* positives: a source against an edited copy of itself, for every edit family and for
  hard combinations (crop + border, border + picture-in-picture + comments, ...);
* negatives: a source against edited copies of other sources, and look-alikes: frames
  of the same video a few seconds apart (same scene, different moment).

Every method sees the same input, the runtime's preprocessing (content-box crop of each
image), and scores a pair with a similarity. Reported per family and overall: ROC-AUC,
the best-threshold balanced accuracy, and TPR at 1 % FPR (the operating point a
platform runs at: few false accusations). Methods: the model, PDQ (Facebook's perceptual
hash, Hamming similarity), a 16x16 grey thumbnail, and a random-init network of the
model's architecture (what the training added).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import UsageError
from vq.eval.base import Evaluator, Report, Table, Ui, backend_option, model_option, precision_option
from vq.eval.baselines import cosine, pdq_descriptor, pdq_similarity, thumbnail_descriptor
from vq.eval.metrics.retrieval import best_accuracy, roc_auc, tpr_at_fpr
from vq.preprocess.content_box import crop_to_box, detect_content_box
from vq.synth import apply_spatial, random_edit, track_box

# family name -> chain of edit families applied to make the copy
EVAL_FAMILIES: dict[str, tuple[str, ...]] = {
    "border": ("border",),
    "letterbox": ("letterbox",),
    "blur_fill": ("blur_fill",),
    "crop": ("crop",),
    "scale": ("scale",),
    "flip": ("flip",),
    "rotate": ("rotate",),
    "color": ("color",),
    "blur": ("blur",),
    "noise": ("noise",),
    "reencode": ("reencode",),
    "watermark": ("watermark",),
    "bullet_comments": ("bullet_comments",),
    "picture_in_picture": ("picture_in_picture",),
    "template": ("template",),
    "screen_recording": ("screen_recording",),
    "live_stream": ("live_stream",),
    "crop+border": ("crop", "border"),
    "crop+scale": ("crop", "scale"),
    "border+pip+text": ("border", "picture_in_picture", "bullet_comments"),
}
HARD_FAMILIES = ("picture_in_picture", "template", "screen_recording", "crop+border")


@dataclass
class PairSet:
    left: list[np.ndarray]  # references (original sources)
    right: list[np.ndarray]  # queries (edited)
    label: np.ndarray  # 1 = copy, 0 = different
    family: list[str]  # edit family of the query ("look-alike" for those negatives)


def make_pairs(
    sources: list[tuple[str, np.ndarray]], seed: int = 0, negatives_per_source: int = 6
) -> PairSet:
    """Positive and negative pairs from (name, image) sources; deterministic in `seed`."""
    if len(sources) < 3:
        raise UsageError(f"pair evaluation needs at least 3 held-out sources, got {len(sources)}")
    rng = np.random.default_rng(seed)
    backgrounds = [img for _, img in sources]
    left, right, label, family = [], [], [], []

    def edited(image: np.ndarray, chain: tuple[str, ...]) -> np.ndarray:
        h, w = image.shape[:2]
        edits = []
        for fam in chain:
            _, size = track_box(edits, (w, h))
            bg = backgrounds[int(rng.integers(len(backgrounds)))] if fam == "picture_in_picture" else None
            edits.append(random_edit(fam, rng, size, background=bg))
        return apply_spatial(edits, image, float(rng.uniform(0, 5)))

    names = list(EVAL_FAMILIES)
    for i, (_, image) in enumerate(sources):
        for fam, chain in EVAL_FAMILIES.items():
            left.append(image)
            right.append(edited(image, chain))
            label.append(1)
            family.append(fam)
        for _ in range(negatives_per_source):
            j = int(rng.integers(len(sources) - 1))
            j += j >= i
            fam = names[int(rng.integers(len(names)))]
            left.append(image)
            right.append(edited(sources[j][1], EVAL_FAMILIES[fam]))
            label.append(0)
            family.append(fam)
    # Look-alikes: frames of one video at least 2 s apart ("clip.mp4@12.000" names).
    by_video: dict[str, list[tuple[float, np.ndarray]]] = {}
    for name, image in sources:
        if "@" in name:
            video, t = name.rsplit("@", 1)
            by_video.setdefault(video, []).append((float(t), image))
    for frames in by_video.values():
        frames.sort(key=lambda x: x[0])
        for (ta, a), (tb, b) in itertools.pairwise(frames):
            if tb - ta >= 2.0:
                fam = names[int(rng.integers(len(names)))]
                left.append(a)
                right.append(edited(b, EVAL_FAMILIES[fam]))
                label.append(0)
                family.append("look-alike")
    return PairSet(left, right, np.asarray(label), family)


# -- scoring ------------------------------------------------------------------------------------


def crop(image: np.ndarray) -> np.ndarray:
    """The runtime's preprocessing for a single image: its content box."""
    return crop_to_box(image, detect_content_box(image[None]))


def score_report(scores: np.ndarray, pairs: PairSet) -> dict[str, Any]:
    neg = scores[pairs.label == 0]
    fam = np.asarray(pairs.family)
    out: dict[str, Any] = {}

    def block(pos):
        return {
            "pairs": len(pos),
            "roc_auc": roc_auc(pos, neg),
            "accuracy": best_accuracy(pos, neg),
            "tpr_at_1pct_fpr": tpr_at_fpr(pos, neg),
        }

    out["all"] = block(scores[pairs.label == 1])
    hard = np.isin(fam, HARD_FAMILIES) & (pairs.label == 1)
    out["hard"] = block(scores[hard])
    out["families"] = {f: block(scores[(fam == f) & (pairs.label == 1)]) for f in EVAL_FAMILIES}
    out["negatives"] = len(neg)
    # the similarity a library would use as its frame-match threshold at this operating point
    out["threshold_at_1pct_fpr"] = float(np.quantile(neg, 0.99, method="higher"))
    out["negative_quantiles"] = {q: float(np.quantile(neg, float(q))) for q in ("0.5", "0.9", "0.99", "1.0")}
    return out


def evaluate_pairs(
    pairs: PairSet, methods: dict[str, tuple[Callable, Callable]], preprocess: bool = True
) -> dict[str, Any]:
    """Run every (descriptor, similarity) method on the same (cropped) pairs."""
    left = [crop(im) if preprocess else im for im in pairs.left]
    right = [crop(im) if preprocess else im for im in pairs.right]
    # Sources repeat on the left: describe each distinct image once.
    results = {}
    for name, (describe, similarity) in methods.items():
        ids = {id(im): k for k, im in enumerate(pairs.left)}
        uniq = [left[k] for k in sorted(set(ids.values()))]
        index = {k: n for n, k in enumerate(sorted(set(ids.values())))}
        lvec = describe(uniq)
        lvec = lvec[[index[ids[id(im)]] for im in pairs.left]]
        rvec = describe(right)
        results[name] = score_report(similarity(lvec, rvec), pairs)
    return results


# -- the `vq eval pairs` harness -------------------------------------------------------------------

BASELINES = ("pdq", "thumbnail", "random")


@dataclass
class PairsOptions:
    data: list[Path] = field(
        metadata={"help": "Image folders, images, videos (frames at 1 fps).", "required": True}
    )
    holdout: float | None = field(
        default=None, metadata={"help": "Use only the held-out share of --data (as training split it)."}
    )
    model: str | None = model_option()
    backend: str = backend_option()
    precision: str = precision_option()
    baselines: str = field(
        default="pdq,thumbnail,random", metadata={"help": "Comma list: pdq, thumbnail, random."}
    )
    negatives: int = field(default=6, metadata={"help": "Negative pairs per source (plus look-alikes)."})
    seed: int = field(default=0, metadata={"help": "Seed for the edits."})
    crop: bool = field(default=True, metadata={"help": "Content-box crop before every method."})


def run(opts: PairsOptions, ui: Ui) -> Report:
    """ROC-AUC, accuracy and TPR at 1 % FPR per edit family: model vs PDQ, thumbnail, random init."""
    from vq.media.sources import load_sources
    from vq.stages.embed import Embedder

    chosen = [b.strip() for b in opts.baselines.split(",") if b.strip()]
    unknown = set(chosen) - set(BASELINES)
    if unknown:
        raise UsageError(f"unknown baseline(s) {sorted(unknown)}: choose {', '.join(BASELINES)}")
    split = "holdout" if opts.holdout else "train"
    sources = load_sources(opts.data, opts.holdout or 0.0, split)
    pairs = make_pairs(
        [(s.name, s.image) for s in sources], seed=opts.seed, negatives_per_source=opts.negatives
    )
    positives = int(pairs.label.sum())
    ui.note(f"{len(sources)} sources, {positives} positive and {len(pairs.label) - positives} negative pairs")
    embedder = Embedder(opts.model, backend=opts.backend, precision=opts.precision, crop=False).open()
    methods = {embedder.artifact.name: (embedder.embed_frames_list, cosine)}
    if "pdq" in chosen:
        methods["pdq"] = (pdq_descriptor, pdq_similarity)
    if "thumbnail" in chosen:
        methods["thumbnail"] = (thumbnail_descriptor, cosine)
    with tempfile.TemporaryDirectory() as tmp:
        if "random" in chosen:
            random_model = _random_init(embedder, Path(tmp), ui)
            if random_model is not None:
                methods["random-init"] = (random_model.embed_frames_list, cosine)
        report = evaluate_pairs(pairs, methods, preprocess=opts.crop)

    names = list(methods)
    rows = []
    for family in ["all", "hard", *report[names[0]]["families"]]:
        row: dict[str, Any] = {"family": family}
        for n in names:
            block = report[n][family] if family in ("all", "hard") else report[n]["families"][family]
            row[n] = block["tpr_at_1pct_fpr"]
        rows.append(row)
    summary = [
        {
            "method": n,
            "roc_auc": report[n]["all"]["roc_auc"],
            "accuracy": report[n]["all"]["accuracy"],
            "tpr": report[n]["all"]["tpr_at_1pct_fpr"],
            "hard_tpr": report[n]["hard"]["tpr_at_1pct_fpr"],
        }
        for n in names
    ]
    data = {
        "sources": len(sources),
        "positives": int(pairs.label.sum()),
        "negatives": int((pairs.label == 0).sum()),
        "seed": opts.seed,
        "crop": opts.crop,
        "methods": report,
    }
    return Report(
        tables=[
            Table("pair evaluation", [("family", "TPR @ 1% FPR"), *[(n, n) for n in names]], rows),
            Table(
                "overall",
                [
                    ("method", "method"),
                    ("roc_auc", "ROC-AUC"),
                    ("accuracy", "accuracy"),
                    ("tpr", "TPR@1%FPR"),
                    ("hard_tpr", "hard TPR@1%FPR"),
                ],
                summary,
            ),
        ],
        data=data,
    )


def _random_init(embedder, tmp: Path, ui: Ui):
    """The model's architecture with untrained weights (needs the train extra to build)."""
    from vq.stages.embed import Embedder

    spec = embedder.artifact.card.flax
    if not spec:
        ui.note("random-init baseline skipped: the model card names no architecture")
        return None
    try:
        from vq.export.artifact import export_artifact
        from vq.train.models import create_model
    except ImportError:
        ui.note("random-init baseline skipped: needs the 'train' extra")
        return None
    export_artifact(
        create_model(spec["model"], seed=0, **spec.get("kwargs", {})),
        model_name=spec["model"],
        model_kwargs=spec.get("kwargs", {}),
        out_dir=tmp / "random-init",
        name="random-init",
        task="embed",
    )
    return Embedder(str(tmp / "random-init"), backend="ort-cpu", crop=False)


EVALUATOR = Evaluator(
    summary="single-frame copy detection on edited pairs of held-out sources: model vs PDQ, "
    "thumbnail and random init (ROC-AUC, accuracy, TPR at 1 % FPR per edit family)",
    options=PairsOptions,
    run=run,
)
