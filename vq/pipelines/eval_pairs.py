"""Pair evaluation of frame descriptors: can they tell an edited copy from a different frame?

The copy-detection seed scores its embedding on a pair test set (30k pairs): positives
are the same picture before and after editing, negatives are different pictures. Here
the pairs are generated from held-out images and video frames (never trained on):

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vq.errors import MissingExtraError, UsageError
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


# -- descriptors ---------------------------------------------------------------------------------


def crop(image: np.ndarray) -> np.ndarray:
    """The runtime's preprocessing for a single image: its content box."""
    return crop_to_box(image, detect_content_box(image[None]))


def pdq_descriptor(images: list[np.ndarray]) -> np.ndarray:
    try:
        import pdqhash
    except ImportError as e:
        raise MissingExtraError("the PDQ baseline", "eval", e) from e
    return np.stack([pdqhash.compute(np.ascontiguousarray(im))[0].astype(np.float32) for im in images])


def pdq_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1.0 - np.mean(a != b, axis=1)  # 1 - Hamming distance / 256


class PdqFrames:
    """PDQ hashes as frame vectors for the copy-detection pipeline: bits mapped to ±1/16,
    so that inner product = 1 - 2 * Hamming / 256 and faiss search ranks by Hamming."""

    name = fingerprint = "pdq"
    dim = 256

    def __init__(self, bits: int = 31):
        # A frame match within `bits` of 256 (31 is PDQ's reference operating point), as
        # the cosine of the ±1/16 vectors.
        cosine = 1.0 - 2.0 * bits / 256
        self.matching = {"frame": cosine, "min_score": cosine}

    def embed_frames(self, frames: np.ndarray, box: Any = None) -> np.ndarray:
        if box is not None:
            frames = frames[:, box.y0 : box.y1, box.x0 : box.x1]
        if len(frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        bits = pdq_descriptor(list(frames))
        return (bits * 2.0 - 1.0) / 16.0


def thumbnail_descriptor(images: list[np.ndarray]) -> np.ndarray:
    """16x16 grey thumbnail, zero-mean and unit-norm: the simplest pixel fingerprint."""
    out = []
    for im in images:
        t = np.asarray(Image.fromarray(im).convert("L").resize((16, 16), Image.BOX), np.float32).ravel()
        t -= t.mean()
        out.append(t / (np.linalg.norm(t) + 1e-6))
    return np.stack(out)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


# -- metrics ---------------------------------------------------------------------------------------


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg), ties counted half."""
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks over ties
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inverse, ranks)
    ranks = (sums / counts)[inverse]
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float = 0.01) -> float:
    """Share of positives above the threshold that lets at most `fpr` of negatives through."""
    threshold = np.quantile(neg, 1.0 - fpr, method="higher")
    return float(np.mean(pos > threshold))


def best_accuracy(pos: np.ndarray, neg: np.ndarray) -> float:
    """Best balanced accuracy over thresholds: (TPR + TNR) / 2."""
    thresholds = np.unique(np.concatenate([pos, neg]))
    tpr = (pos[None, :] >= thresholds[:, None]).mean(axis=1)
    tnr = (neg[None, :] < thresholds[:, None]).mean(axis=1)
    return float(np.max((tpr + tnr) / 2))


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


def load_holdout(workdir: str | Path) -> list[str]:
    """The held-out source names recorded by `vq train embed` in its workdir."""
    import json

    config = json.loads((Path(workdir) / "config.json").read_text())
    names = (config.get("data") or {}).get("holdout")
    if not names:
        raise UsageError(f"{workdir}: no held-out list in config.json (train with --holdout > 0)")
    return names
