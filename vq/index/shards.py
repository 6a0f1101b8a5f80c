"""One shard of a sharded library, and the exact merge of what the shards return.

A sharded library splits its videos across `N` shards by video id (`shard_of`). Every
shard's faiss index is a copy of one **template**: the library's own index, trained once
and emptied (`make_template`), so all shards share one coarse quantizer and one PQ
codebook (faiss's recipe for distributed IVF: train once, add in parallel). A shard
holds its videos' exact (float16) vectors too, and re-scores its own candidates with them.

Why the merge is exact: with one quantizer and one codebook, a vector's approximate
score for a query is the same in its shard as in one index over everything, and the
probed lists are the same. So the single index's shortlist (its `want` best by
approximate score) is the best `want` of the union of every shard's own best `want`
(`merge_shortlists`). Re-ranking that shortlist by the exact scores the shards computed
gives the single-process library's top k; only ties in the approximate score at the
shortlist's edge (bit-identical vectors) may choose differently.

Pure faiss and numpy: `vq.index.cluster` runs `Shard`s as Ray actors; tests run them
in-process too.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vq.fsutil import atomic_path
from vq.index.store import LibraryError, ivf_of, load_faiss, read_segment

TEMPLATE_FILE = "template.faiss"
SHARDS_DIR = "shards"


def shard_of(video_ids: np.ndarray | int, n_shards: int) -> np.ndarray | int:
    """The shard a video lives on: its catalog id modulo the shard count (ids are dense
    and increasing, so shards stay within a video of each other)."""
    return video_ids % n_shards


def make_template(index, root: Path) -> Path:
    """Write an empty copy of the library's trained `index` as the shards' template."""
    faiss = load_faiss()
    template = faiss.clone_index(index)
    template.reset()
    path = root / SHARDS_DIR / TEMPLATE_FILE
    path.parent.mkdir(exist_ok=True)
    with atomic_path(path) as tmp:
        faiss.write_index(template, str(tmp))
    return path


@dataclass
class Shortlist:
    """One shard's (or the merged) candidates per query, best approximate score first:
    `approx` faiss's score, `ids` global vector ids (-1 pads), `exact` the exact inner
    product with the stored vector (-inf for pads and removed videos)."""

    approx: np.ndarray  # (n, c) float32
    ids: np.ndarray  # (n, c) int64
    exact: np.ndarray  # (n, c) float32


def merge_shortlists(parts: list[Shortlist], want: int) -> Shortlist:
    """The best `want` per query across the shards, by approximate score (ties by vector
    id, so the merge does not depend on the shards' order)."""
    approx = np.concatenate([p.approx for p in parts], axis=1)
    ids = np.concatenate([p.ids for p in parts], axis=1)
    exact = np.concatenate([p.exact for p in parts], axis=1)
    approx = np.where(ids >= 0, approx, -np.inf)
    order = np.lexsort((np.where(ids >= 0, ids, np.iinfo(np.int64).max), -approx), axis=1)[:, :want]
    pick = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    return Shortlist(pick(approx), pick(ids), pick(exact))


def top_k_exact(shortlist: Shortlist, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank a shortlist by exact score: (scores, ids) top k per query, -inf / -1 pads.
    Ties by vector id, as `Library.search` breaks them."""
    scores = np.where(shortlist.ids >= 0, shortlist.exact, -np.inf)
    order = np.lexsort((shortlist.ids, -scores), axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, order, axis=1)
    top_ids = np.where(np.isfinite(top_scores), np.take_along_axis(shortlist.ids, order, axis=1), -1)
    if top_scores.shape[1] < k:  # fewer candidates than k in all
        pad = k - top_scores.shape[1]
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        top_ids = np.pad(top_ids, ((0, 0), (0, pad)), constant_values=-1)
    return top_scores.astype(np.float32), top_ids


class Shard:
    """Shard `shard` of `n_shards` of the library at `root`: its videos' vectors in a
    copy of the template index (global vector ids) and their exact vectors. Reads the
    catalog and segment files directly (shared storage on a cluster), read-only;
    `refresh` catches up with the writer.

    The router says what it knows with every call: a search looks only at vector ids
    below the router's `total` and skips the router's removed videos, so a shard that has
    read further than its router (another writer's commits) still answers as the router's
    own single-process library would."""

    def __init__(self, root: str | Path, shard: int, n_shards: int, nprobe: int):
        faiss = load_faiss()
        self.root, self.shard, self.n_shards = Path(root), shard, n_shards
        self.index = faiss.read_index(str(self.root / SHARDS_DIR / TEMPLATE_FILE))
        if not self.index.is_trained:
            raise ValueError(f"{self.root}: shard template is not trained")
        self.nprobe = nprobe if ivf_of(self.index) is not None else 0
        if not self.nprobe:  # Flat: ids need a map
            self.index = faiss.IndexIDMap(self.index)
        self.dim = self.index.d
        self.db = sqlite3.connect(self.root / "catalog.sqlite", timeout=30.0, check_same_thread=False)
        self._n = 0  # vectors held; the buffers below grow geometrically
        self._vectors = np.zeros((1024, self.dim), np.float16)
        self._ids = np.zeros(1024, np.int64)  # global id of each held vector, ascending
        self._starts = np.zeros(0, np.int64)  # first vector id of each held video
        self._videos = np.zeros(0, np.int64)  # and its catalog id
        self._seen = 0  # highest catalog id read
        self.refresh()

    def refresh(self) -> dict[str, int]:
        """Read the videos committed since (a row whose segment file has not arrived yet,
        in a copy being synced, stops the reading until next time)."""
        rows = self.db.execute(
            "SELECT id, first_vector, n_vectors FROM videos WHERE id > ? ORDER BY id", (self._seen,)
        ).fetchall()
        vectors, ids, starts, videos = [], [], [], []
        for vid, first, n in rows:
            if shard_of(vid, self.n_shards) == self.shard and n:
                try:
                    seg = read_segment(self.root / "segments" / f"{first}.npz", n)
                except LibraryError:
                    break
                vectors.append(seg["vectors"])
                ids.append(np.arange(first, first + n, dtype=np.int64))
                starts.append(first)
                videos.append(vid)
            self._seen = vid
        if vectors:  # ids ascend: a later catalog row always starts past the earlier ones
            fresh, fresh_ids = np.concatenate(vectors), np.concatenate(ids)
            self.index.add_with_ids(fresh.astype(np.float32), fresh_ids)
            self._reserve(self._n + len(fresh))
            self._vectors[self._n : self._n + len(fresh)] = fresh
            self._ids[self._n : self._n + len(fresh)] = fresh_ids
            self._n += len(fresh)
            self._starts = np.concatenate([self._starts, starts])  # one entry a video: small
            self._videos = np.concatenate([self._videos, videos])
        return {"videos": len(self._videos), "vectors": self._n, "seen": self._seen}

    def _reserve(self, n: int) -> None:
        """Grow the buffers geometrically (a refresh must not copy the whole shard)."""
        if n <= len(self._ids):
            return
        capacity = max(n, 2 * len(self._ids))
        vectors = np.zeros((capacity, self.dim), np.float16)
        vectors[: self._n] = self._vectors[: self._n]
        ids = np.zeros(capacity, np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._vectors, self._ids = vectors, ids

    def search(self, queries: np.ndarray, want: int, below: int, removed: np.ndarray) -> Shortlist:
        """This shard's best `want` per query by approximate score among vector ids below
        `below`, with exact scores (-inf for the videos in `removed`)."""
        faiss = load_faiss()
        q = np.ascontiguousarray(queries, np.float32)
        held = int(np.searchsorted(self._ids[: self._n], below))
        if held == 0:
            empty = np.zeros((len(q), 0))
            return Shortlist(empty.astype(np.float32), empty.astype(np.int64), empty.astype(np.float32))
        selector = faiss.IDSelectorRange(0, int(below))
        params = (
            faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)
            if self.nprobe
            else faiss.SearchParameters(sel=selector)
        )
        approx, ids = self.index.search(q, min(want, held), params=params)
        valid = ids >= 0
        rows = np.minimum(np.searchsorted(self._ids[:held], np.where(valid, ids, 0)), held - 1)
        exact = np.full(ids.shape, -np.inf, np.float32)
        exact[valid] = np.einsum("nd,ncd->nc", q, self._vectors[rows].astype(np.float32))[valid]
        if len(removed):
            exact[np.isin(self.video_of(np.where(valid, ids, 0)), removed)] = -np.inf
        return Shortlist(approx.astype(np.float32), ids.astype(np.int64), exact)

    def video_of(self, vector_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._starts, vector_ids, side="right") - 1
        return self._videos[np.clip(pos, 0, max(0, len(self._videos) - 1))]

    def video_means(self, below: int, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(video ids, mean vectors, not normalised) of this shard's videos starting below
        vector id `below` and not in `removed`, computed as `Library.video_means` does."""
        bounds = np.append(np.searchsorted(self._ids[: self._n], self._starts), self._n)
        gone = set(removed.tolist())
        keep = [
            i
            for i, (v, start) in enumerate(zip(self._videos, self._starts, strict=True))
            if start < below and v not in gone
        ]
        means = np.zeros((len(keep), self.dim), np.float32)
        for row, i in enumerate(keep):
            means[row] = self._vectors[bounds[i] : bounds[i + 1]].mean(axis=0, dtype=np.float32)
        return self._videos[keep], means
