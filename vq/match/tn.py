"""Temporal Network alignment (Tan et al., 2009; the VCSL benchmark's TN baseline).

Nodes are each query frame's top-k most similar reference frames (above a threshold);
an edge joins (i, j) to (i', j') when both times move forward within `max_step` frames.
The longest weighted path through this DAG (dynamic programming over query order) is a
copied segment; its nodes are removed and the search repeats for further segments.
"""

from __future__ import annotations

import numpy as np

from vq.match.segments import Segment, frame_span, suppress


class TemporalNetwork:
    def __init__(
        self,
        frame_threshold: float = 0.55,
        top_k: int = 5,
        max_step: int = 4,
        min_frames: int = 2,
        max_segments: int = 8,
    ):
        self.frame_threshold, self.top_k, self.max_step = frame_threshold, top_k, max_step
        self.min_frames, self.max_segments = min_frames, max_segments

    def __call__(
        self,
        sim: np.ndarray,
        q_times: np.ndarray,
        r_times: np.ndarray,
        step: float,
        ref_step: float | None = None,
    ) -> list[Segment]:
        """`step` and `ref_step`: the query's and the reference's sampling intervals."""
        ref_step = step if ref_step is None else ref_step
        n, m = sim.shape
        if n == 0 or m == 0:
            return []
        k = min(self.top_k, m)
        cols = np.argsort(-sim, axis=1)[:, :k]  # (n, k) candidate reference frames
        vals = np.take_along_axis(sim, cols, axis=1)
        alive = vals >= self.frame_threshold
        segments = []
        for _ in range(self.max_segments):
            # A query denser than the reference may stay on one reference frame for a step.
            best, prev = self._longest_paths(cols, vals, alive, min_dj=1 if step >= ref_step else 0)
            end = np.unravel_index(int(np.argmax(best)), best.shape)
            if not np.isfinite(best[end]) or best[end] <= 0:
                break
            path = [end]
            while prev[path[-1]][0] >= 0:
                path.append(tuple(prev[path[-1]]))
            path.reverse()
            for i, c in path:
                alive[i, c] = False
            if len(path) < self.min_frames:
                continue
            qi = [p[0] for p in path]
            rj = [int(cols[p]) for p in path]
            score = float(np.mean([vals[p] for p in path]))
            q0, q1 = frame_span(q_times, qi[0], qi[-1], step)
            segments.append(
                Segment(q0, q1, float(r_times[min(rj)]), float(r_times[max(rj)] + ref_step), score)
            )
        return suppress(segments)

    def _longest_paths(self, cols, vals, alive, min_dj: int = 1):
        n, k = cols.shape
        best = np.where(alive, vals, -np.inf)
        prev = np.full((n, k, 2), -1, np.int64)
        for i in range(1, n):
            lo = max(0, i - self.max_step)
            if not alive[i].any():
                continue
            pi = np.arange(lo, i)
            pb = best[lo:i]  # (p, k)
            pc = cols[lo:i]
            # edge (p, c') -> (i, c) if reference time advances within max_step frames
            dj = cols[i][None, None, :] - pc[:, :, None]  # (p, k', k)
            ok = (dj >= min_dj) & (dj <= self.max_step) & np.isfinite(pb)[:, :, None]
            cand = np.where(ok, pb[:, :, None], -np.inf)
            flat = cand.reshape(-1, k)
            arg = np.argmax(flat, axis=0)
            gain = flat[arg, np.arange(k)]
            better = alive[i] & np.isfinite(gain) & (gain + vals[i] > best[i])
            best[i] = np.where(better, gain + vals[i], best[i])
            prev[i, better, 0] = pi[arg[better] // k]
            prev[i, better, 1] = arg[better] % k
        return best, prev
