"""Quality stage: score uint8 clips on the 1-5 scale with a `kvq` model on any backend.

A model sees windows of `frames` consecutive frames as fragments (native-resolution
mini-patches: `vq.preprocess.fragments`). One view is 16 mini-patches, a few percent of a
720p frame, so one view's score depends on where they fall (the standard deviation
across 16 views of one clip is 0.12 on the 1-5 scale for the shipped `vq-kvq`, averaged
over the 840 held-out bench clips; about 0.5 for the model of 2026-12-01). A score is
the mean over `views` placements, as FAST-VQA and DOVER average test-time samples:
``views=1`` takes the cell centres; ``views=K`` takes K placements drawn from seeds 1..K,
the same for every clip of one size, so two encodes of one video are compared patch for
patch and a score never changes from run to run. View k is also shown in the k-th of the
8 flips and quarter turns (`dihedral`, as training shows its groups): with no extra model
runs, the mean over turned views tracks VMAF better than the mean over upright ones
(held-out SROCC +0.008 and +0.007 on `vq-kvq`, on two disjoint sets of 8 placements;
BENCHMARKS.md).
The model also returns each frame's KL divergence from the window (its key-frame
statistic, averaged over the views); the stage reports the frames it attended to.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vq.errors import UsageError
from vq.models import Artifact
from vq.preprocess.fragments import cut_settings, dihedral, fragments, thumbnail
from vq.preprocess.normalize import to_model_input
from vq.stages.base import Stage

# Placements averaged per window by default. Four turned views score the held-out bench as
# eight do (SROCC 0.773 vs 0.777, in-chain rank accuracy 0.887 vs 0.885, rung tau 0.866 vs
# 0.860) and pick the same ladder rungs, at half the model's work (BENCHMARKS.md, 2026-12-05).
DEFAULT_VIEWS = 4

# How the stage turns a model's outputs into a score, for caches of scores to key on (the
# model's own checksum is the other half): 2 turned the views (2026-12-05).
SCORING = 2


class QualityScorer(Stage):
    """Load a quality model once; `score_windows(windows)` per batch of clips."""

    task = "kvq"

    def __init__(
        self,
        model: str | Path | Artifact | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        batch: int = 8,
        views: int = DEFAULT_VIEWS,
    ):
        super().__init__(model, backend, precision)
        if views < 1:
            raise UsageError(f"views must be >= 1 (got {views})")
        self.views = views
        prep = self.artifact.card.preprocessing
        self.frames = int(prep["frames"])
        self.keyframes = int(prep.get("keyframes", 4))
        self.cut = cut_settings(prep)  # how a window is cut into fragments
        self.score_range = tuple(prep.get("score_range", (1.0, 5.0)))
        self.batch = batch

    def score_windows(self, windows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """N uint8 (frames, H, W, 3) windows (one array, or a list of any frame sizes) ->
        (scores (N,), key-frame indices (N, keyframes))."""
        for w in windows:
            if w.dtype != np.uint8 or w.ndim != 4 or w.shape[0] != self.frames or w.shape[-1] != 3:
                raise UsageError(
                    f"a quality window must be uint8 ({self.frames}, H, W, 3), got {w.dtype} {w.shape}"
                )
        # Placement v's positions come from seed v, and its turn from v: the same for every
        # window of one size. One view: the cell centres, upright.
        seeds = [None] if self.views == 1 else list(range(1, self.views + 1))
        # A context cell is the same in every view of a window: shrunk once per window.
        thumbs = [thumbnail(w, self.cut["patch"]) if self.cut["context"] else None for w in windows]
        frags = np.stack(
            [
                dihedral(
                    fragments(w, rng=None if v is None else np.random.default_rng(v), thumb=t, **self.cut),
                    view_turn(v),
                )
                for v in seeds
                for w, t in zip(windows, thumbs, strict=True)
            ]
        )
        # Made float batch by batch: all views at once would be ~0.5 GB of float32.
        parts = [
            self.run({"clip": to_model_input(frags[i : i + self.batch], self.artifact.card.preprocessing)})
            for i in range(0, len(frags), self.batch)
        ]
        out = {name: np.concatenate([p[name] for p in parts]) for name in ("score", "frame_kl")}
        n = len(windows)
        score = out["score"].reshape(len(seeds), n).mean(axis=0)
        kl = out["frame_kl"].reshape(len(seeds), n, -1).mean(axis=0)
        # Key frames: largest KL first, ties to the earlier frame (the model's own rule).
        order = np.argsort(-kl, axis=1, kind="stable")[:, : self.keyframes]
        return score.astype(np.float64), order


def view_turn(seed: int | None) -> int:
    """The flip / quarter turn (`dihedral`) of the view drawn from `seed` (None: the
    centred view, upright): views 1..8 take the 8 turns in order, and so on round."""
    return 0 if seed is None else (seed - 1) % 8
