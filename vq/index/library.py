"""The dedup library: frame vectors of every ingested video, searchable, crash-safe.

Layout of a library directory::

    library.toml      model (name, sha256, dim), sampling fps, index policy, thresholds
    catalog.sqlite    videos (id, name, path, duration, metadata, vector range, removed)
    segments/N.npz    the vectors (float16) and timestamps of one ingest, first vector id N,
                      and a 32x32 luma thumbnail of each frame (`vq.match.pixels`)
    segments/audio-*.npz  a video's audio landmark hashes and times (`vq.index.audio`)
    index.faiss       the search index over all vectors: a derived cache
    .lock             held by the one writer
    companions/M/     a companion library (optional): the same videos under embedding
                      model M, written and matched with this one (`companions_of`)

The catalog and the segment files are the source of truth; the faiss index is rebuilt
from them when missing and caught up when behind. An ingest writes its segment file
atomically, then commits its catalog row in one SQLite transaction, then adds to the
index: a `kill -9` at any point leaves a library that opens with every committed video
intact (an orphaned segment is swept on the next write). One writer at a time holds an
exclusive file lock; a second writer waits up to `lock_timeout` seconds, then fails with
one line. Readers never block.

Within a process (`vq serve`), searches run on several threads while the writer ingests:
a readers-writer lock (`vq.index.rwlock`) covers the in-memory arrays and index, and the
writer holds it only for the in-memory update, never across file writes or the commit. A
library opened read-only catches up with what the writer has committed with `refresh`.

The index follows size, as the copy-detection seed's does at billions of vectors:
exact inner product (`Flat`) while small, IVF-PQ (`IVF{nlist},PQ32`) past
`flat_limit`, trained on the transition and retrained as the library grows 8x; nlist
grows with sqrt(N) up to 1M+ lists. PQ32 codes rank near-duplicates poorly on their own,
so candidates are re-ranked with the exact (float16) vectors kept in the segments:
544 bytes per 256-d vector in all (512 raw + 32 code), measured in benchmarks/index.py.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import sqlite3
import threading
import time
import tomllib
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq.audio.landmarks import Fingerprint
from vq.fsutil import atomic_path, atomic_write_text
from vq.index.audio import AudioHit, AudioIndex
from vq.index.cluster import ClusterConfig, ShardedSearch
from vq.index.rwlock import ReadWriteLock
from vq.index.shards import Shortlist, top_k_exact
from vq.index.store import (
    LibraryError,
    float_index,
    ivf_of,
    load_faiss,
    read_audio,
    read_audio_vectors,
    read_segment,
    read_thumbnails,
    set_nprobe,
)
from vq.match.thresholds import Thresholds

LIBRARY_FILE = "library.toml"
THUMB_CACHE = 256  # videos whose thumbnails `Library.thumbs_of` keeps in memory
log = logging.getLogger("vq.index")


@dataclass
class LibraryConfig:
    """What `library.toml` holds."""

    model: str
    model_sha256: str
    dim: int
    fps: float = 0.5  # the seed's "2s1f" ingest
    # Queries may be sampled denser than what is stored (the seed queries at 1 fps and
    # stores 2s1f): short copies keep enough frames to be aligned. None: the ingest rate.
    query_fps: float | None = None
    factory: str = "auto"  # "auto" or a faiss factory string, e.g. "IVF4096,PQ32"
    flat_limit: int = 200_000  # exact search up to this many vectors
    nprobe: int = 64
    rerank: int = 100  # candidates re-scored with exact vectors, at least (`rerank_depth`)
    # "pq": IVF-PQ codes past flat_limit; "binary": learned binary codes (`hash_model`, a
    # `vq train hash` model) in a faiss IndexBinaryIVF, compared by XOR + popcount.
    codes: str = "pq"
    hash_model: str | None = None
    hash_model_sha256: str | None = None  # its fp32 graph: codes from another model never mix
    thresholds: Thresholds = field(default_factory=Thresholds)
    # post-match rules (vq.match.filters, by registry name) and their arguments
    filters: dict[str, dict[str, Any]] = field(default_factory=lambda: {"min_seconds": {"seconds": 2.0}})
    name: str = "main"
    cluster: ClusterConfig | None = None  # sharded on Ray (`vq index shard`)
    # A companion holds the same videos as the library named here, under another model;
    # its matches are that library's (`vq.pipelines.dedup`), its folder is inside it.
    companion_of: str | None = None

    def to_toml(self) -> str:
        def value(v: Any) -> str:
            return (
                json.dumps(v) if isinstance(v, str) else repr(v).lower() if isinstance(v, bool) else repr(v)
            )

        lines = [
            f"name = {value(self.name)}",
            *([f"companion_of = {value(self.companion_of)}"] if self.companion_of else []),
            "",
            "[model]",
            f"name = {value(self.model)}",
            f"sha256 = {value(self.model_sha256)}",
            f"dim = {self.dim}",
            "",
            "[sampling]",
            f"fps = {self.fps}",
            *([f"query_fps = {self.query_fps}"] if self.query_fps else []),
            "",
            "[index]",
            f"factory = {value(self.factory)}",
            f"flat_limit = {self.flat_limit}",
            f"nprobe = {self.nprobe}",
            f"rerank = {self.rerank}",
            f"codes = {value(self.codes)}",
            *([f"hash_model = {value(self.hash_model)}"] if self.hash_model else []),
            *([f"hash_model_sha256 = {value(self.hash_model_sha256)}"] if self.hash_model_sha256 else []),
            "",
            "[thresholds]",
            *(f"{k} = {v}" for k, v in self.thresholds.to_dict().items()),
        ]
        for rule, args in self.filters.items():
            lines += ["", f"[filters.{rule}]", *(f"{k} = {value(v)}" for k, v in args.items())]
        if self.cluster is not None:
            lines += ["", *self.cluster.to_toml_lines()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, where: str) -> LibraryConfig:
        try:
            raw = tomllib.loads(text)
            return cls(
                model=raw["model"]["name"],
                model_sha256=raw["model"]["sha256"],
                dim=int(raw["model"]["dim"]),
                fps=float(raw["sampling"]["fps"]),
                query_fps=float(raw["sampling"]["query_fps"]) if "query_fps" in raw["sampling"] else None,
                factory=str(raw["index"]["factory"]),
                flat_limit=int(raw["index"]["flat_limit"]),
                nprobe=int(raw["index"]["nprobe"]),
                rerank=int(raw["index"]["rerank"]),
                codes=str(raw["index"].get("codes", "pq")),
                hash_model=raw["index"].get("hash_model"),
                hash_model_sha256=raw["index"].get("hash_model_sha256"),
                thresholds=Thresholds.from_mapping(raw.get("thresholds")),
                filters={str(k): dict(v) for k, v in raw.get("filters", {}).items()},
                name=str(raw.get("name", "main")),
                cluster=ClusterConfig.from_mapping(raw["cluster"]) if "cluster" in raw else None,
                companion_of=str(raw["companion_of"]) if "companion_of" in raw else None,
            )
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
            raise LibraryError(f"{where}: malformed library config ({e})") from None


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT,
    duration REAL,
    added REAL,
    metadata TEXT,
    first_vector INTEGER NOT NULL,
    n_vectors INTEGER NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0
);
-- A video's sound: its landmark fingerprint (`vq.audio.landmarks`) in segments/<file>.
CREATE TABLE IF NOT EXISTS audio (video_id INTEGER PRIMARY KEY, file TEXT NOT NULL, n INTEGER NOT NULL);
"""


@dataclass
class Video:
    id: int
    name: str
    path: str | None
    duration: float | None
    metadata: dict[str, Any]
    first_vector: int
    n_vectors: int


class Library:
    """Open with `Library.open(path)` (readers) or `Library.open(path, write=True)`."""

    def __init__(
        self, root: Path, config: LibraryConfig, write: bool, lock_timeout: float, cluster: str | None = None
    ):
        self.root = root
        self.config = config
        self.write = write
        self._lock_file = None
        if write:
            self._lock_file = _acquire_lock(root / ".lock", lock_timeout)
        # Used by the writer's thread, or (read-only) by whichever thread refreshes.
        self.db = sqlite3.connect(
            root / "catalog.sqlite", timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._rw = ReadWriteLock()
        self._gpu_mutex = threading.Lock()
        self._thumbs: dict[int, np.ndarray | None] = {}  # `thumbs_of`'s cache, oldest first
        self._thumbs_mutex = threading.Lock()
        self._refresh_mutex = threading.Lock()
        self._remote: ShardedSearch | None = None
        self._hash_stage = None  # `codes = "binary"`: the hashing model, loaded on first use
        self._cluster_address = cluster
        try:
            if cluster is not None and config.cluster is None:
                raise LibraryError(f"{root} is not sharded; shard it first with `vq index shard`")
            self._load()
        except BaseException:
            self.db.close()
            self._release_lock()
            raise

    # -- creation and opening -------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | os.PathLike[str], config: LibraryConfig) -> Library:
        root = Path(root)
        if (root / LIBRARY_FILE).exists():
            raise LibraryError(f"{root} already holds a library")
        (root / "segments").mkdir(parents=True, exist_ok=True)
        atomic_write_text(root / LIBRARY_FILE, config.to_toml())
        return cls(root, config, write=True, lock_timeout=10.0)

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        write: bool = False,
        lock_timeout: float = 60.0,
        cluster: str | None = None,
    ) -> Library:
        """`cluster`: search through the library's Ray shards at this address ("" for the
        address in its `[cluster]` section); this process then holds the catalog only."""
        root = Path(root)
        return cls(root, read_config(root), write=write, lock_timeout=lock_timeout, cluster=cluster)

    def close(self) -> None:
        if self.write:
            self.flush()
        if self._remote is not None:
            with self._rw.writing():  # no search is between its shards when they go
                self._remote.close()
                self._remote = None
        self.db.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ------------------------------------------------------------------------------------

    def _load(self) -> None:
        rows = self.db.execute(
            "SELECT id, name, path, duration, metadata, first_vector, n_vectors, removed "
            "FROM videos ORDER BY first_vector"
        ).fetchall()
        self.videos: dict[int, Video] = {}
        self._removed: set[int] = set()
        starts, ids = [], []
        for vid, name, path, duration, metadata, first, n, removed in rows:
            self.videos[vid] = Video(vid, name, path, duration, json.loads(metadata or "{}"), first, n)
            if removed:
                self._removed.add(vid)
            if n:  # a video with no vectors (all blank) owns no vector ids
                starts.append(first)
                ids.append(vid)
        self._starts = np.asarray(starts, np.int64)
        self._ids = np.asarray(ids, np.int64)
        self.total = int(max((v.first_vector + v.n_vectors for v in self.videos.values()), default=0))
        self._removals_seen = int(self.meta("removals", "0") or 0)
        sharded = self._cluster_address is not None
        # A router over shards holds no vectors: the shards do (`vectors_of` reads a file).
        self._vectors = None if sharded else np.zeros((max(1024, self.total), self.config.dim), np.float16)
        self._times = None if sharded else np.zeros(max(1024, self.total), np.float64)
        for v in self.videos.values():
            if v.n_vectors == 0 or sharded:
                continue
            seg = read_segment(self.root / "segments" / f"{v.first_vector}.npz", v.n_vectors)
            self._vectors[v.first_vector : v.first_vector + v.n_vectors] = seg["vectors"]
            self._times[v.first_vector : v.first_vector + v.n_vectors] = seg["times"]
        rows = self.db.execute("SELECT video_id, file, n FROM audio").fetchall()
        self._audio_files = {vid: f for vid, f, _ in rows}  # video id -> its audio file
        self._audio = AudioIndex.build(
            [(vid, read_audio(self.root / "segments" / f, n)) for vid, f, n in rows]
        )
        if self.write:
            self._sweep_orphans()
        self._index = None
        self._index_covers = 0
        self._gpu, self._gpu_index, self._gpu_source, self._gpu_covers = False, None, None, 0
        self._means = None
        self._mean_of: dict[int, np.ndarray] = {}  # unit mean vector per video id, filled as asked
        if sharded:
            self._remote = ShardedSearch(
                self.root, self.config.cluster, self.config.nprobe, self._cluster_address or None
            )
        else:
            self._load_index()

    def _sweep_orphans(self) -> None:
        """Segments a crashed ingest wrote but never committed, and temporary files a
        writer killed mid-write left (this process holds the write lock: nobody else is
        writing them)."""
        known = {f"{v.first_vector}.npz" for v in self.videos.values() if v.n_vectors}
        known |= {row[0] for row in self.db.execute("SELECT file FROM audio")}
        for f in (self.root / "segments").glob("*.npz"):
            if f.name not in known:
                f.unlink(missing_ok=True)
        for folder in (self.root, self.root / "segments"):
            for f in folder.glob(".*.tmp"):
                f.unlink(missing_ok=True)

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    # -- writing ----------------------------------------------------------------------------------

    def add_video(
        self,
        name: str,
        vectors: np.ndarray,
        times: np.ndarray,
        *,
        path: str | None = None,
        duration: float | None = None,
        metadata: dict[str, Any] | None = None,
        audio: Fingerprint | None = None,
        audio_vectors: np.ndarray | None = None,
        audio_model: str | None = None,
        thumbs: np.ndarray | None = None,
    ) -> Video:
        """Ingest one video's frame vectors (and its sound's fingerprint, if it has one,
        with the learned fingerprint's window vectors beside it: `audio_vectors`, from the
        model whose sha256 is `audio_model`; and `thumbs`, a uint8 thumbnail per frame, for
        the pixel test `vq.match.pixels`). Atomic: all of it is committed or none."""
        if not self.write:
            raise LibraryError("library opened read-only; open with write=True to add")
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.config.dim:
            raise LibraryError(f"vectors must be (n, {self.config.dim}), got {vectors.shape}")
        if len(vectors) != len(times):
            raise LibraryError("vectors and times differ in length")
        extra = {}
        if thumbs is not None:
            if thumbs.dtype != np.uint8 or thumbs.ndim != 3 or len(thumbs) != len(vectors):
                raise LibraryError(
                    f"thumbs must be uint8 (n, h, w) beside the vectors, got {thumbs.dtype} {thumbs.shape}"
                )
            extra["thumbs"] = thumbs
        if self.db.execute("SELECT 1 FROM videos WHERE name = ? AND removed = 0", (name,)).fetchone():
            raise LibraryError(f"a video named {name!r} is already in the library")
        first = self.total
        # Segment files are named by their first vector id; a video with no vectors (nothing
        # but blank frames) is recorded in the catalog only, so no two videos share a name.
        seg_path = self.root / "segments" / f"{first}.npz"
        if len(vectors):
            with atomic_path(seg_path) as tmp, open(tmp, "wb") as f:
                np.savez(f, vectors=vectors.astype(np.float16), times=np.asarray(times, np.float64), **extra)
        audio_path = None
        if audio is not None and len(audio.hashes):
            audio_path = self.root / "segments" / f"audio-{uuid.uuid4().hex}.npz"
            extra = {} if audio_vectors is None else {"vectors": np.asarray(audio_vectors, np.float16)}
            if audio_vectors is not None and audio_model:
                extra["model"] = np.array(audio_model)
            with atomic_path(audio_path) as tmp, open(tmp, "wb") as f:
                np.savez(f, hashes=audio.hashes, times=audio.times, **extra)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "DELETE FROM audio WHERE video_id IN (SELECT id FROM videos WHERE name = ? AND removed = 1)",
                (name,),
            )
            # Ids are never re-used: SQLite would give a re-ingested name the id of the row
            # just deleted for it when that was the last one, and every reader that keeps
            # the old id as removed (this process, replicas, shards) would hide the new one.
            (last,) = self.db.execute("SELECT MAX(id) FROM videos").fetchone()
            video_id = max(last or 0, int(self.meta("last_video_id", "0") or 0)) + 1
            self.db.execute("DELETE FROM videos WHERE name = ? AND removed = 1", (name,))
            self._set_meta("last_video_id", str(video_id))
            cur = self.db.execute(
                "INSERT INTO videos (id, name, path, duration, added, metadata, first_vector, n_vectors) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    video_id,
                    name,
                    path,
                    duration,
                    time.time(),
                    json.dumps(metadata or {}),
                    first,
                    len(vectors),
                ),
            )
            if audio_path is not None:
                self.db.execute(
                    "INSERT INTO audio (video_id, file, n) VALUES (?, ?, ?)",
                    (cur.lastrowid, audio_path.name, len(audio.hashes)),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            if len(vectors):
                seg_path.unlink(missing_ok=True)
            if audio_path is not None:
                audio_path.unlink(missing_ok=True)
            raise
        video = Video(int(cur.lastrowid), name, path, duration, metadata or {}, first, len(vectors))
        with self._rw.writing():
            self._append(video, vectors, np.asarray(times, np.float64))
            if audio_path is not None:
                self._audio.add(video.id, audio)
                self._audio_files[video.id] = audio_path.name
        self._catch_up_index()
        return video

    def _append(self, video: Video, vectors: np.ndarray, times: np.ndarray) -> None:
        """A committed video into the in-memory state (the caller holds the write lock)."""
        first, n = video.first_vector, video.n_vectors
        self.videos[video.id] = video
        if n:
            self._starts = np.append(self._starts, first)
            self._ids = np.append(self._ids, video.id)
        self._reserve(first + n)
        if self._vectors is not None:
            self._vectors[first : first + n] = vectors
            self._times[first : first + n] = times
        self.total = max(self.total, first + n)

    def _reserve(self, n: int) -> None:
        """Grow the in-memory vector store geometrically (an ingest must not copy it all)."""
        if self._vectors is None or n <= len(self._vectors):  # a router over shards holds none
            return
        capacity = max(n, 2 * len(self._vectors))
        grown = np.zeros((capacity, self.config.dim), np.float16)
        grown[: self.total] = self._vectors[: self.total]
        times = np.zeros(capacity, np.float64)
        times[: self.total] = self._times[: self.total]
        self._vectors, self._times = grown, times

    def remove_video(self, name: str) -> bool:
        """Hide a video from queries (its vectors stay until `compact`)."""
        if not self.write:
            raise LibraryError("library opened read-only")
        self.db.execute("BEGIN IMMEDIATE")
        cur = self.db.execute("UPDATE videos SET removed = 1 WHERE name = ? AND removed = 0", (name,))
        hit = cur.rowcount > 0
        if hit:  # readers that refresh look at the live set again only when this moves
            self._set_meta("removals", str(int(self.meta("removals", "0") or 0) + 1))
        self.db.execute("COMMIT")
        if hit:
            vid = next(v.id for v in self._live_videos() if v.name == name)
            with self._rw.writing():
                self._removed.add(vid)
            if self._remote is not None:  # the shards skip it from the next search on
                self._remote.catch_up()
        return hit

    def refresh(self) -> bool:
        """Catch a read-only library up with what the writer has committed since: new
        videos (segments read, index extended) and removals. True if anything changed.
        The writer's own view is always current, so for it this does nothing."""
        if self.write:
            return False
        with self._refresh_mutex:
            columns = "id, name, path, duration, metadata, first_vector, n_vectors, removed"
            rows = self.db.execute(
                f"SELECT {columns} FROM videos WHERE id > ? ORDER BY first_vector",
                (max(self.videos, default=0),),
            ).fetchall()
            removals = int(self.meta("removals", "0") or 0)
            if not rows and removals == self._removals_seen:
                return False
            since = (max(self.videos, default=0),)
            sound_files = {
                vid: (f, n)
                for vid, f, n in self.db.execute(
                    "SELECT video_id, file, n FROM audio WHERE video_id > ?", since
                )
            }
            fresh = []
            for vid, name, path, duration, metadata, first, n, _ in rows:
                video = Video(vid, name, path, duration, json.loads(metadata or "{}"), first, n)
                try:
                    seg = (
                        read_segment(self.root / "segments" / f"{first}.npz", n)
                        if n
                        else {"vectors": np.zeros((0, self.config.dim), np.float16), "times": np.zeros(0)}
                    )
                    sound = None
                    if vid in sound_files:
                        file, count = sound_files[vid]
                        sound = read_audio(self.root / "segments" / file, count)
                except LibraryError:
                    break  # a copy whose files have not all arrived yet: the next refresh goes on
                fresh.append((video, seg, sound))
            removed = self._removed
            if removals != self._removals_seen:
                live = {r[0] for r in self.db.execute("SELECT id FROM videos WHERE removed = 0")}
                removed = {vid for vid in [*self.videos, *(v.id for v, _, _ in fresh)] if vid not in live}
            with self._rw.writing():
                for video, seg, sound in fresh:
                    self._append(video, seg["vectors"], seg["times"])
                    if sound is not None:
                        self._audio.add(video.id, sound)
                        self._audio_files[video.id] = sound_files[video.id][0]
                self._removed, self._removals_seen = removed, removals
            self._catch_up_index()
            return True

    # -- index ------------------------------------------------------------------------------------

    def factory_for(self, n: int) -> str:
        if self.config.factory != "auto":
            return self.config.factory
        return index_factory_for(
            n, self.config.dim, self.config.flat_limit, binary=self.config.codes == "binary"
        )

    def _hasher(self):
        """The binary-code model (loaded on first use)."""
        if self._hash_stage is None:
            from vq.stages.hash import Hasher

            if not self.config.hash_model:
                raise LibraryError(f"{self.root}: codes = 'binary' needs hash_model in library.toml")
            stage = Hasher(self.config.hash_model)
            sha = stage.card.files["fp32"]["sha256"]
            if self.config.hash_model_sha256 and sha != self.config.hash_model_sha256:
                raise LibraryError(
                    f"{self.root}: its binary codes were made by {self.config.hash_model} "
                    f"{self.config.hash_model_sha256[:12]}…, not the one found now ({sha[:12]}…)"
                )
            self._hash_stage = stage
        return self._hash_stage

    def _coded(self, vectors: np.ndarray, binary: bool) -> np.ndarray:
        """What the index takes: float32 vectors, or their packed binary codes."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        return self._hasher().codes(vectors) if binary else vectors

    def rerank_for(self, n: int) -> int:
        """Candidates re-scored with exact vectors at `n` stored vectors."""
        return rerank_depth(n, self.config.rerank)

    def _load_index(self) -> None:
        path = self.root / "index.faiss"
        covers = int(self.meta("index_covers", "0") or 0)
        if path.is_file() and covers <= self.total and self.meta("index_factory") == self.factory_for(covers):
            try:
                binary = (self.meta("index_factory") or "").startswith("B")
                read = load_faiss().read_index_binary if binary else load_faiss().read_index
                self._index = read(str(path))
                self._index_covers = covers if self._index.ntotal == covers else 0
            except RuntimeError:
                self._index, self._index_covers = None, 0
        if self._index is None or self._index_covers == 0:
            self._index, self._index_covers = None, 0
        else:
            set_nprobe(self._index, self.config.nprobe)
        self._catch_up_index()

    def _catch_up_index(self) -> None:
        """Bring the in-memory index up to every stored vector (retraining if the policy
        says). Called by the one thread that changes the library; a rebuilt index is trained
        and filled aside while searches go on with the old one, then swapped in."""
        if self._remote is not None:
            seen = self._remote.catch_up()
            newest = max(self.videos, default=0)
            if seen < newest:  # a shard stopped at a segment it could not read
                log.warning("%s: a shard has read the catalog up to video %d of %d", self.root, seen, newest)
            return
        total = self.total
        wanted = self.factory_for(total)
        index, covers = self._index, self._index_covers
        if index is not None and self.meta("index_factory") != wanted and covers < total:
            index, covers = None, 0  # the policy moved on: rebuild
        binary = wanted.startswith("B")
        if index is None:
            if total == 0:
                return
            index = self._new_index(wanted)
            if not index.is_trained:
                size = training_size(wanted, total)
                sample = self._vectors[np.sort(np.random.default_rng(0).permutation(total)[:size])]
                index.train(self._coded(sample, binary))
            set_nprobe(index, self.config.nprobe)
            if self.write:
                self._set_meta("index_factory", wanted)
        fresh = self._coded(self._vectors[covers:total], binary) if total > covers else None
        if index is self._index:
            with self._rw.writing():  # faiss must not search an index while it grows
                if fresh is not None:
                    index.add(fresh)
                self._index_covers = total
        else:
            if fresh is not None:
                index.add(fresh)
            with self._rw.writing():
                self._index, self._index_covers = index, total

    def trained_index(self):
        """The index as the policy builds it now, trained (the template of a sharded
        library); an empty library's, if its factory needs no training."""
        if self._index is not None:
            return self._index
        index = self._new_index(self.factory_for(0))
        if not index.is_trained:
            raise LibraryError(f"{self.root}: add videos before sharding (the index needs training data)")
        return index

    def _new_index(self, factory: str):
        """An empty index of `factory`: over binary codes for a "B..." factory."""
        faiss = load_faiss()
        if factory.startswith("B"):
            return faiss.index_binary_factory(self._hasher().bits, factory)
        return float_index(self.config.dim, factory)

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def flush(self) -> None:
        """Persist the index cache (it can always be rebuilt, so this is an optimisation)."""
        if not self.write or self._index is None:
            return
        faiss = load_faiss()
        binary = isinstance(self._index, faiss.IndexBinary)
        with atomic_path(self.root / "index.faiss") as tmp:
            (faiss.write_index_binary if binary else faiss.write_index)(self._index, str(tmp))
        self.db.execute("BEGIN IMMEDIATE")
        self._set_meta("index_covers", str(self._index_covers))
        self._set_meta("index_factory", self.factory_for(self._index_covers))
        self.db.execute("COMMIT")

    # -- reading ----------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, vector ids) per query, exact-rescored, removed videos skipped; -1 pads."""
        q = np.ascontiguousarray(queries, np.float32)
        with self._rw.reading():
            return self._search(q, k)

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(q)
        want = max(k, self.rerank_for(self.total)) + (len(self._removed) and 32)
        if self._remote is not None:
            return self._remote.search(q, want, k, below=self.total, removed=self._removed)
        if self._index is None or self.total == 0:
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        if isinstance(self._index, load_faiss().IndexBinary):  # Hamming distance: smaller is nearer
            distance, cand = self._index.search(self._coded(q, True), min(want, self.total))
            approx = -distance.astype(np.float32)
        else:
            approx, cand = self._searcher().search(q, min(want, self.total))
        valid = cand >= 0
        exact = np.full(cand.shape, -np.inf, np.float32)
        stored = self._vectors[np.where(valid, cand, 0)].astype(np.float32)  # (n, c, d)
        exact[valid] = np.einsum("nd,ncd->nc", q, stored)[valid]
        if self._removed:
            exact[np.isin(self._video_of(np.where(valid, cand, 0)), list(self._removed))] = -np.inf
        return top_k_exact(Shortlist(approx, cand, exact), k)

    def audio_search(self, query: Fingerprint, min_votes: int, min_score: float) -> list[AudioHit]:
        """Live videos whose sound `query` carries (`vq.index.audio`), best first."""
        with self._rw.reading():
            return self._audio.search(query, min_votes, min_score, skip=frozenset(self._removed))

    def audio_search_speeds(
        self,
        variants: Sequence[tuple[float, Fingerprint]],
        min_votes: int,
        min_score: float,
        skip: set[int] | frozenset = frozenset(),
    ) -> list[AudioHit]:
        """Live videos (not in `skip`) whose sound the query carries with a speed undone
        (`variants`: (speed, fingerprint) of the query's sound, `AudioIndex.search_speeds`)."""
        if not variants:
            return []
        with self._rw.reading():
            skip = frozenset(skip) | frozenset(self._removed)
            return self._audio.search_speeds(list(variants), min_votes, min_score, skip=skip)

    def audio_vectors(self, video_id: int, model: str | None = None) -> np.ndarray | None:
        """The learned fingerprint's window vectors stored with a video's sound (None: no
        sound, ingested without them, or by another model than `model`'s sha256)."""
        with self._rw.reading():
            file = self._audio_files.get(video_id)
        return None if file is None else read_audio_vectors(self.root / "segments" / file, model)

    def video_of(self, vector_ids: np.ndarray) -> np.ndarray:
        """Video id of each vector id (vectorised)."""
        with self._rw.reading():
            return self._video_of(vector_ids)

    def _video_of(self, vector_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._starts, vector_ids, side="right") - 1
        return self._ids[np.clip(pos, 0, max(0, len(self._ids) - 1))]

    def vectors_of(self, video_id: int) -> tuple[np.ndarray, np.ndarray]:
        with self._rw.reading():
            v = self.videos[video_id]
            sl = slice(v.first_vector, v.first_vector + v.n_vectors)
            if self._vectors is None:  # a router over shards: the segment file
                seg = read_segment(self.root / "segments" / f"{v.first_vector}.npz", v.n_vectors)
                return seg["vectors"].astype(np.float32), seg["times"].astype(np.float64)
            return self._vectors[sl].astype(np.float32), self._times[sl].copy()

    def thumbs_of(self, video_id: int) -> np.ndarray | None:
        """A video's frame thumbnails (`add_video(thumbs=...)`), read from its segment file
        (the last `THUMB_CACHE` videos' kept in memory: a stored video never changes); None
        where it was stored without them, or its file no longer reads (the match goes on by
        the vectors alone, which are in memory)."""
        if video_id in self._thumbs:
            return self._thumbs[video_id]
        with self._rw.reading():
            v = self.videos[video_id]
        thumbs = None
        if v.n_vectors:
            try:
                thumbs = read_thumbnails(self.root / "segments" / f"{v.first_vector}.npz", v.n_vectors)
            except LibraryError as e:
                log.warning("%s", e)
        with self._thumbs_mutex:
            self._thumbs[video_id] = thumbs
            while len(self._thumbs) > THUMB_CACHE:
                self._thumbs.pop(next(iter(self._thumbs)))
        return thumbs

    def video_means(self) -> tuple[np.ndarray, np.ndarray]:
        """(video ids, unit mean vectors) of the live videos with vectors, for the seed's
        mean-vector recall. Cached: recomputed only after the catalog changes."""
        with self._rw.reading():
            return self._video_means()

    def _video_means(self) -> tuple[np.ndarray, np.ndarray]:
        key = (self.total, len(self.videos), len(self._removed))
        if self._means is None or self._means[0] != key:
            if self._remote is not None:
                self._means = (key, *self._remote.video_means(self.total, self._removed))
                return self._means[1], self._means[2]
            live = [v for v in self._live_videos() if v.n_vectors]
            # A stored video's mean never changes: only new videos are averaged (an ingest
            # between queries must not cost a pass over every vector).
            known = self._mean_of
            for v in live:
                if v.id not in known:
                    mean = self._vectors[v.first_vector : v.first_vector + v.n_vectors].mean(
                        axis=0, dtype=np.float32
                    )
                    known[v.id] = mean / (np.linalg.norm(mean) + 1e-12)
            means = (
                np.stack([known[v.id] for v in live]) if live else np.zeros((0, self.config.dim), np.float32)
            )
            self._means = (key, np.array([v.id for v in live], np.int64), means)
        return self._means[1], self._means[2]

    def live_videos(self) -> list[Video]:
        with self._rw.reading():
            return self._live_videos()

    def _live_videos(self) -> list[Video]:
        return [v for v in self.videos.values() if v.id not in self._removed]

    def video_by_name(self, name: str) -> Video | None:
        with self._rw.reading():
            return next((v for v in self._live_videos() if v.name == name), None)

    def stats(self) -> dict[str, Any]:
        index_bytes = (
            (self.root / "index.faiss").stat().st_size if (self.root / "index.faiss").exists() else 0
        )
        seg_bytes = sum(f.stat().st_size for f in (self.root / "segments").glob("*.npz"))
        live = self.live_videos()
        return {
            "name": self.config.name,
            "videos": len(live),
            "removed": len(self._removed),
            "vectors": self.total,
            "audio_hashes": len(self._audio),
            "live_vectors": int(sum(v.n_vectors for v in live)),
            "index": self.factory_for(self.total),
            "index_file_bytes": index_bytes,
            "segment_bytes": seg_bytes,
            "model": self.config.model,
            "fps": self.config.fps,
            "query_fps": self.config.query_fps or self.config.fps,
            "search_on_gpu": self._gpu,
            "cluster": self._cluster_stats(),
            "searched_by": "shards" if self._remote is not None else "this process",
        }

    def _cluster_stats(self) -> dict[str, Any] | None:
        cluster = self.config.cluster
        if cluster is None:
            return None
        return {
            "shards": cluster.shards,
            "replicas": cluster.replicas,
            "template": cluster.template_factory,
            # the single-process policy would have retrained by now: re-run `vq index shard`
            "reshard_advised": cluster.template_factory != self.factory_for(self.total),
        }

    def use_gpu(self) -> bool:
        """Search on every GPU faiss sees (faiss-gpu builds); False where there is none.

        The CPU index stays the one that is written to disk and grown; the GPU copy mirrors
        it, taking new vectors as they arrive and re-cloned when the index is rebuilt."""
        faiss = load_faiss()
        if not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0:
            return False
        if self.config.codes == "binary" or self._remote is not None:  # no binary IVF on GPUs; shards search
            return False
        self._gpu = True
        return True

    def _searcher(self):
        if not self._gpu:
            return self._index
        with self._gpu_mutex:  # readers share the lock; the GPU mirror has one updater
            return self._gpu_searcher()

    def _gpu_searcher(self):
        faiss = load_faiss()
        if self._gpu_index is None or self._gpu_source is not self._index:
            self._gpu_index = faiss.index_cpu_to_all_gpus(self._index)
            self._gpu_source, self._gpu_covers = self._index, self._index_covers
            if self.config.nprobe and ivf_of(self._index) is not None:
                faiss.GpuParameterSpace().set_index_parameter(self._gpu_index, "nprobe", self.config.nprobe)
        elif self._gpu_covers < self._index_covers:
            fresh = self._vectors[self._gpu_covers : self._index_covers].astype(np.float32)
            self._gpu_index.add(fresh)
            self._gpu_covers = self._index_covers
        return self._gpu_index


def read_config(root: Path) -> LibraryConfig:
    path = root / LIBRARY_FILE
    if not path.is_file():
        raise LibraryError(f"{root} is not a library (no {LIBRARY_FILE}); create one with `vq index create`")
    return LibraryConfig.from_toml(path.read_text(), str(path))


def index_factory_for(n: int, dim: int, flat_limit: int, binary: bool = False) -> str:
    """The library's index policy at `n` vectors: exact inner product (`Flat`) up to
    `flat_limit`, then IVF-PQ with nlist ~ 4 sqrt(n) (a power of two, up to 1M+ lists as the
    seed's) and PQ32 codes. From 64K lists the coarse quantizer is an HNSW graph: a flat
    one costs nlist dot products per query and per vector added."""
    if n <= flat_limit:
        return "Flat"
    nlist = int(2 ** round(math.log2(min(1 << 20, max(16, 4 * math.sqrt(n))))))
    if binary:  # learned codes (`codes = "binary"`): the same lists over Hamming space
        return f"BIVF{nlist}"
    m = 32  # PQ32, as the seed; fewer sub-quantizers only when the dimension needs it
    while dim % m:
        m //= 2
    coarse = f"IVF{nlist}_HNSW32" if nlist >= 1 << 16 else f"IVF{nlist}"
    return f"{coarse},PQ{m}"


def training_size(factory: str, n: int) -> int:
    """Vectors to train an index of `factory` on: 64 per IVF list (k-means wants 39+),
    at least 200K (the PQ codebooks), at most what there is."""
    ivf = factory.removeprefix("B")
    nlist = int(ivf[3:].split(",")[0].split("_")[0]) if ivf.startswith("IVF") else 0
    return min(n, max(200_000, 64 * nlist))


def rerank_depth(n: int, base: int = 100) -> int:
    """Exact re-ranking depth at `n` vectors: 2 x `base` at 1M, growing with the fourth root
    of n (never below `base`). PQ32 codes order near-duplicates coarsely, and a fixed
    shortlist holds less of the true top 10 as the library grows. Measured recall@10
    (`benchmarks/index.py`, BENCHMARKS.md): 1M: 0.94 with 100, 0.996 with 200; 10M: 0.89
    with 100, 0.986 with 200, 0.998 with 400. The need grows far slower than n, and a
    deeper shortlist costs throughput (10M, batch 256: 2102 queries/s at 100, 1500 at 400),
    so the depth grows slowly: 356 at 10M, 633 at 100M, 1125 at 1B."""
    return max(base, math.ceil(2 * base * (n / 1_000_000) ** 0.25))


def _acquire_lock(path: Path, timeout: float):
    f = open(path, "a+")  # noqa: SIM115 - held open for the writer's lifetime
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() >= deadline:
                f.close()
                raise LibraryError(
                    f"{path.parent}: another process is writing to this library (waited {timeout:.0f} s)"
                ) from None
            time.sleep(0.2)


COMPANIONS = "companions"


def companions_of(root: str | os.PathLike[str]) -> list[Path]:
    """The companion libraries inside the library at `root` (`companions/<model>/`), in
    name order: the same videos under other embedding models."""
    folder = Path(root) / COMPANIONS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "library.toml").is_file())


@contextmanager
def open_library(root: str | os.PathLike[str], write: bool = False, lock_timeout: float = 60.0):
    lib = Library.open(root, write=write, lock_timeout=lock_timeout)
    try:
        yield lib
    finally:
        lib.close()
