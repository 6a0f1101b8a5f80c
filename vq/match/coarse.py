"""Coarse stage: which library videos are worth aligning against the query?

Two modes, as in the copy-detection seed:

* `vote` (its copyright mode): each query frame's top-k nearest library frames vote for
  their videos, once per video per frame; the top-N videos by votes go on to alignment,
  and so does any video that holds the nearest frame of at least `min_nearest` query
  frames (see `vote`);
* `mean` (its dedup mode): the query's mean vector against each video's mean vector,
  with a loose threshold (recall first; the fine stage restores precision).

Either way, `look_alikes` can widen the choice to the references that look like a chosen
one as a whole (other clips of one fixed camera), for a fine stage that can tell them
apart (`vq.match.pixels`).
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
    min_nearest: int = 2,
) -> list[tuple[int, int]]:
    """[(video id, votes)]: the top-N videos by the number of query frames voting, then any
    other video that holds the nearest library frame of at least `min_nearest` query frames
    (0: none added), by votes.

    Why the second rule: look-alike references crowd the vote. Five references cut from one
    fixed camera each collect a vote from every frame of that camera in the query, so a
    3 s copy of another video spliced between two such stretches polls below all five and
    is never aligned, though each of its frames is nearest to it. `vectors` may be several
    views of the same frames (row i of each is frame i): a frame votes once per video
    whichever view found it, and its nearest frame is the best over the views."""
    views = vectors if isinstance(vectors, list) else [vectors]
    if len(views[0]) == 0:
        return []
    scores, ids = library.search(np.concatenate(views), k)
    scores = np.concatenate(np.split(scores, len(views)), axis=1)  # (frames, k * views)
    ids = np.concatenate(np.split(ids, len(views)), axis=1)
    valid = (ids >= 0) & (scores >= min_score)
    if not valid.any():
        return []
    frames = np.broadcast_to(np.arange(len(views[0]))[:, None], ids.shape)[valid]
    videos = library.video_of(ids[valid])
    pairs = np.unique(np.stack([frames, videos], axis=1), axis=0)  # one vote per (frame, video)
    vids, votes = np.unique(pairs[:, 1], return_counts=True)
    order = np.argsort(-votes, kind="stable")
    chosen = order[:top_n]
    if min_nearest > 0:
        has_match = valid.any(axis=1)
        best = np.argmax(np.where(valid, scores, -np.inf), axis=1)[has_match]
        nearest_video = library.video_of(ids[has_match, best])
        held, counts = np.unique(nearest_video, return_counts=True)
        holders = np.isin(vids[order[top_n:]], held[counts >= min_nearest])
        chosen = np.concatenate([chosen, order[top_n:][holders]])
    return [(int(vids[i]), int(votes[i])) for i in chosen]


def look_alikes(library: Library, chosen: list[int], min_cosine: float, limit: int) -> list[int]:
    """Up to `limit` videos not in `chosen` whose mean vector is within `min_cosine` of a
    chosen one's, the closest first.

    Why: to an embedding, every clip of one fixed camera is the same picture, so which of
    them wins a query's votes is luck. On the held-out suite a 4 s copy of `vtest@48`
    between other `vtest` footage voted for `vtest@0` and `vtest@16` only; `vtest@48` was
    never aligned, so nothing could find the copy. Its mean vector is 0.96-0.99 from theirs
    (other references: at most 0.95, most under 0.76)."""
    if not chosen or limit <= 0:
        return []
    ids, means = library.video_means()
    rows = np.flatnonzero(np.isin(ids, chosen))
    if len(rows) == 0:
        return []
    closeness = (means @ means[rows].T).max(axis=1)
    closeness[rows] = -np.inf
    order = np.argsort(-closeness, kind="stable")[:limit]
    return [int(ids[i]) for i in order if closeness[i] >= min_cosine]


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
