"""A library searched by shards on a Ray cluster (`vq index shard`, `vq run --cluster`).

The copy-detection seed's library holds billions of frame vectors: faiss split into
shards (to hold more) and replicas (for more queries per second). Here each shard is a
`vq.index.shards.Shard` running as a Ray actor, `replicas` actors per shard holding the
same videos. A search goes to one replica of every shard (round robin), each returns
its shortlist with exact scores, and `merge_shortlists` + `top_k_exact` make the same
top k as the single-process library (same template quantizer: see `vq.index.shards`).
A replica that dies is skipped for the next one of its shard.

The process that searches (the router: `vq run`, `vq serve`) keeps the catalog only; the
vectors live in the shards, which read the library's segment files themselves (shared
storage across hosts, as a replica library reads them). A writer commits as usual and
tells the shards to catch up.

Addresses: `local` starts a private Ray instance for this process (its actors end with
it); `auto` joins the cluster running on this machine (`ray start --head`), else starts
a private one; anything else (`ray://head:10001`, `head:6379`) is passed to `ray.init`.
On a cluster this process did not start, the shards are named, detached actors: the
next `vq run` finds them loaded (and catches them up), and `vq index shard --release`
ends them.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import MissingExtraError, one_line
from vq.index.shards import Shard, Shortlist, merge_shortlists, top_k_exact
from vq.index.store import LibraryError

NAMESPACE = "vq"
CALL_TIMEOUT = 120.0  # seconds a replica may take to answer a search before the next is asked
REFRESH_TIMEOUT = 1800.0  # a first load reads every segment of the shard
# CPUs a shard actor reserves. Shards mostly wait on memory, and a whole-core reservation
# left them unplaceable (waiting for ever) while other work, a backfill's actors say, held
# the cores; a tenth lets them share. Ray then gives each one OpenMP thread.
SHARD_CPUS = 0.1


@dataclass
class ClusterConfig:
    """A library's `[cluster]` section (written by `vq index shard`)."""

    shards: int = 1
    replicas: int = 1
    address: str = "auto"  # the default for `vq run --cluster` given no address
    template_sha256: str = ""  # the shards' template (shards/template.faiss)
    template_factory: str = ""  # the index policy's choice when it was made

    def to_toml_lines(self) -> list[str]:
        return [
            "[cluster]",
            f"shards = {self.shards}",
            f"replicas = {self.replicas}",
            f'address = "{self.address}"',
            f'template_sha256 = "{self.template_sha256}"',
            f'template_factory = "{self.template_factory}"',
        ]

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> ClusterConfig:
        return cls(
            shards=int(raw["shards"]),
            replicas=int(raw.get("replicas", 1)),
            address=str(raw.get("address", "auto")),
            template_sha256=str(raw.get("template_sha256", "")),
            template_factory=str(raw.get("template_factory", "")),
        )


def load_ray():
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError("sharded libraries (Ray)", "cluster", e) from e
    return ray


_private = False  # the Ray instance this process is connected to is its own
_users = 0  # open ShardedSearch objects and backfills using it


def connect(address: str) -> bool:
    """Join or start Ray (see the module doc) unless connected already; True if the
    instance is private to this process (its actors end with it). Pair with `disconnect`."""
    global _private, _users
    ray = load_ray()
    if not ray.is_initialized():
        quiet = {"log_to_driver": False, "logging_level": "error", "namespace": NAMESPACE}
        private = address in ("auto", "local")
        try:
            if address == "auto":
                try:
                    ray.init(address="auto", **quiet)
                    private = False
                except ConnectionError:
                    pass  # nothing running on this machine
            if not ray.is_initialized():
                if not private:
                    _check_reachable(address)
                ray.init(**({"include_dashboard": False} if private else {"address": address}), **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise LibraryError(f"cannot reach the Ray cluster at {address!r}: {one_line(e)}") from None
        _private = private
    _users += 1
    return _private


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an address nothing answers at: Ray itself retries for minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError("expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port} ({e.strerror or e})") from None


def disconnect() -> None:
    """One user fewer; the last one shuts a private instance down."""
    global _users, _private
    ray = load_ray()
    _users = max(0, _users - 1)
    if _users == 0 and _private and ray.is_initialized():
        ray.shutdown()
        _private = False


def shard_actor_name(root: Path, cluster: ClusterConfig, nprobe: int, shard: int, replica: int) -> str:
    """Named per library folder, template and layout: a library sharded again (another
    template, shard count or nprobe) gets new actors, never another layout's."""
    layout = f"{root.resolve()}\0{cluster.template_sha256}\0{cluster.shards}x{cluster.replicas}\0{nprobe}"
    return f"vq-{hashlib.sha1(layout.encode()).hexdigest()[:12]}-s{shard}r{replica}"


class ShardedSearch:
    """The router's view of a sharded library: fan-out search, exact merge, catch-up.
    Safe to search from several threads (each actor runs one call at a time)."""

    def __init__(self, root: Path, cluster: ClusterConfig, nprobe: int, address: str | None = None):
        ray = load_ray()
        self.root, self.cluster = Path(root).resolve(), cluster  # actors do not share our cwd
        self.replicas: list[list[Any]] | None = None
        self._private = connect(address or cluster.address)
        try:
            actor = ray.remote(Shard)
            self.replicas = []
            for s in range(cluster.shards):
                row = []
                for r in range(cluster.replicas):
                    options: dict[str, Any] = {"num_cpus": SHARD_CPUS}
                    if not self._private:  # a shared cluster: find it loaded next time
                        options.update(
                            name=shard_actor_name(self.root, cluster, nprobe, s, r),
                            lifetime="detached",
                            get_if_exists=True,
                        )
                    row.append(actor.options(**options).remote(str(self.root), s, cluster.shards, nprobe))
                self.replicas.append(row)
            self._turn = itertools.count()
            self.catch_up()
        except BaseException:
            self.close()
            raise

    def _get(self, ref: Any, timeout: float) -> Any:
        """`ray.get`, with a dead, failed or silent actor as `_Unavailable` (one line)."""
        ray = load_ray()
        try:
            return ray.get(ref, timeout=timeout)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
            raise _Unavailable(type(e).__name__) from None
        except ray.exceptions.RayTaskError as e:
            lines = [line for line in str(e).splitlines() if line.strip()]
            raise _Unavailable(lines[-1] if lines else type(e).__name__) from None

    def _gather(self, method: str, *args: Any) -> list[Any]:
        """`method` on one replica of every shard, replicas taken in turn; one that is dead,
        failing or silent for `CALL_TIMEOUT` s is retried on the next replica of its shard
        (an error only when a whole shard is unavailable)."""
        turn = next(self._turn)
        rows = self.replicas or []
        refs = [getattr(row[(turn + s) % len(row)], method).remote(*args) for s, row in enumerate(rows)]
        out = []
        for s, (row, ref) in enumerate(zip(rows, refs, strict=True)):
            why = ""
            for attempt in range(1, len(row) + 1):
                try:
                    out.append(self._get(ref, CALL_TIMEOUT))
                    break
                except _Unavailable as e:
                    why = str(e)
                    ref = getattr(row[(turn + s + attempt) % len(row)], method).remote(*args)
            else:
                raise LibraryError(f"{self.root}: no replica of shard {s} answers ({why})")
        return out

    def search(
        self, queries: np.ndarray, want: int, k: int, below: int, removed: set[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, vector ids) as `Library.search` returns them, over the router's
        view: vector ids below `below`, videos in `removed` skipped."""
        ray = load_ray()
        q = ray.put(np.ascontiguousarray(queries, np.float32))
        gone = np.fromiter(removed, np.int64, len(removed))
        parts: list[Shortlist] = self._gather("search", q, want, below, gone)
        return top_k_exact(merge_shortlists(parts, want), k)

    def video_means(self, below: int, removed: set[int]) -> tuple[np.ndarray, np.ndarray]:
        """(video ids, unit mean vectors) of the router's live videos, by id."""
        parts = self._gather("video_means", below, np.fromiter(removed, np.int64, len(removed)))
        ids = np.concatenate([p[0] for p in parts]).astype(np.int64)
        means = np.concatenate([p[1] for p in parts]).astype(np.float32).reshape(len(ids), -1)
        order = np.argsort(ids)
        ids, means = ids[order], means[order]
        means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-12
        return ids, means

    def catch_up(self) -> int:
        """Every replica reads what has been committed; waits for them, so a search after
        this sees it. A replica that is gone is skipped while its shard has another one.
        Returns the highest catalog id every shard has read."""
        rows = self.replicas or []
        refs = [[a.refresh.remote() for a in row] for row in rows]
        seen = []
        for s, row_refs in enumerate(refs):
            answers, why = [], ""
            for ref in row_refs:
                try:
                    answers.append(self._get(ref, REFRESH_TIMEOUT)["seen"])
                except _Unavailable as e:
                    why = str(e)
            if not answers:
                raise LibraryError(f"{self.root}: no replica of shard {s} could catch up ({why})")
            seen.append(min(answers))
        return min(seen, default=0)

    def close(self) -> None:
        """Leave the cluster; a private instance ends with its actors."""
        if self.replicas is not None or getattr(self, "_private", None) is not None:
            self.replicas = None
            self._private = None
            disconnect()


class _Unavailable(Exception):
    """A replica that did not answer (dead, failed or timed out)."""
