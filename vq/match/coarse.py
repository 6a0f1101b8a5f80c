"""Coarse stage: which library videos are worth aligning against the query?

Two modes, as in the copy-detection seed:

* `vote` (its copyright mode): each query frame's top-k nearest library frames vote for
  their videos, once per video per frame; the top-N videos by votes go on to alignment;
* `mean` (its dedup mode): the query's mean vector against each video's mean vector,
  with a loose threshold (recall first; the fine stage restores precision).
"""

from __future__ import annotations

import numpy as np

from vq.index.library import Library


def vote(
    library: Library,
    vectors: np.ndarray | list[np.ndarray],
    k: int = 10,
    top_n: int = 5,
    min_score: float = 0.35,
) -> list[tuple[int, int]]:
    """[(video id, votes)] for the top-N videos by the number of query frames voting.
    `vectors` may be several views of the same frames (row i of each is frame i): a frame
    votes once per video whichever view found it."""
    views = vectors if isinstance(vectors, list) else [vectors]
    if len(views[0]) == 0:
        return []
    scores, ids = library.search(np.concatenate(views), k)
    scores = np.concatenate(np.split(scores, len(views)), axis=1)  # (frames, k * views)
    ids = np.concatenate(np.split(ids, len(views)), axis=1)
    vectors = views[0]
    valid = (ids >= 0) & (scores >= min_score)
    if not valid.any():
        return []
    frames = np.broadcast_to(np.arange(len(vectors))[:, None], ids.shape)[valid]
    videos = library.video_of(ids[valid])
    pairs = np.unique(np.stack([frames, videos], axis=1), axis=0)  # one vote per (frame, video)
    vids, votes = np.unique(pairs[:, 1], return_counts=True)
    order = np.argsort(-votes, kind="stable")[:top_n]
    return [(int(vids[i]), int(votes[i])) for i in order]


def mean_vector(
    library: Library, vectors: np.ndarray, threshold: float = 0.5, top_n: int = 20
) -> list[tuple[int, float]]:
    """[(video id, cosine of mean vectors)] above `threshold`, best first (the seed's dedup
    mode: one vector per video, a loose threshold, then the fine stage decides)."""
    ids, means = library.video_means()
    if len(vectors) == 0 or len(ids) == 0:
        return []
    q = vectors.mean(axis=0)
    q /= np.linalg.norm(q) + 1e-12
    sims = means @ q
    order = np.argsort(-sims)[:top_n]
    return [(int(ids[i]), float(sims[i])) for i in order if sims[i] >= threshold]
