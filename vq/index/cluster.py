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
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import MissingExtraError
from vq.index.shards import Shard, Shortlist, merge_shortlists, top_k_exact

NAMESPACE = "vq"


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


def _ray():
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
    ray = _ray()
    if not ray.is_initialized():
        quiet = {"log_to_driver": False, "logging_level": "error", "namespace": NAMESPACE}
        _private = address in ("auto", "local")
        if address == "auto":
            try:
                ray.init(address="auto", **quiet)
                _private = False
            except ConnectionError:
                pass  # nothing running on this machine
        if not ray.is_initialized():
            ray.init(**({"include_dashboard": False} if _private else {"address": address}), **quiet)
    _users += 1
    return _private


def disconnect() -> None:
    """One user fewer; the last one shuts a private instance down."""
    global _users
    ray = _ray()
    _users = max(0, _users - 1)
    if _users == 0 and _private and ray.is_initialized():
        ray.shutdown()


def require_sharded(libraries: list[Path]) -> None:
    """`--cluster` needs at least one sharded library among `libraries` (one-line error)."""
    from vq.errors import UsageError
    from vq.index.library import read_config

    if not any(read_config(Path(lib)).cluster is not None for lib in libraries):
        raise UsageError("--cluster: none of the libraries is sharded (shard one with `vq index shard`)")


def shard_actor_name(root: Path, template_sha256: str, shard: int, replica: int) -> str:
    """Named per library folder and template: a re-sharded library gets new actors."""
    key = hashlib.sha1(f"{root.resolve()}\0{template_sha256}".encode()).hexdigest()[:12]
    return f"vq-{key}-s{shard}r{replica}"


class ShardedSearch:
    """The router's view of a sharded library: fan-out search, exact merge, catch-up."""

    def __init__(self, root: Path, cluster: ClusterConfig, nprobe: int, address: str | None = None):
        ray = _ray()
        self.root, self.cluster = Path(root), cluster
        self._private = connect(address or cluster.address)
        cpus = float(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
        # Shards mostly wait on memory; let every actor fit even when there are more than cores.
        per_actor = max(0.01, min(1.0, cpus / (cluster.shards * cluster.replicas)))
        actor = ray.remote(Shard)
        self.replicas: list[list[Any]] | None = []
        for s in range(cluster.shards):
            row = []
            for r in range(cluster.replicas):
                options: dict[str, Any] = {"num_cpus": per_actor}
                if not self._private:  # a shared cluster: find it loaded next time
                    options.update(
                        name=shard_actor_name(self.root, cluster.template_sha256, s, r),
                        lifetime="detached",
                        get_if_exists=True,
                    )
                row.append(actor.options(**options).remote(str(self.root), s, cluster.shards, nprobe))
            self.replicas.append(row)
        self._turn = itertools.count()
        try:
            self.catch_up()
        except Exception:
            self.close()
            raise

    def _call(self, shard: int, method: str, *args: Any, turn: int = 0) -> Any:
        """An object ref for `method` on a live replica of `shard`, starting at `turn`."""
        row = self.replicas[shard]
        return getattr(row[turn % len(row)], method).remote(*args)

    def _gather(self, method: str, *args: Any) -> list[Any]:
        """`method` on one replica of every shard; a replica that died is retried on the
        next one of its shard (the error surfaces only when a whole shard is gone)."""
        ray = _ray()
        from vq.index.library import LibraryError

        turn = next(self._turn)
        refs = [self._call(s, method, *args, turn=turn + s) for s in range(len(self.replicas))]
        out = []
        for s, ref in enumerate(refs):
            for attempt in range(len(self.replicas[s])):
                try:
                    out.append(ray.get(ref))
                    break
                except ray.exceptions.RayActorError:
                    ref = self._call(s, method, *args, turn=turn + s + attempt + 1)
            else:
                raise LibraryError(f"{self.root}: every replica of shard {s} is gone")
        return out

    def search(self, queries: np.ndarray, want: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, vector ids) as `Library.search` returns them."""
        q = _ray().put(np.ascontiguousarray(queries, np.float32))
        parts: list[Shortlist] = self._gather("search", q, want)
        return top_k_exact(merge_shortlists(parts, want), k)

    def video_means(self) -> tuple[np.ndarray, np.ndarray]:
        """(video ids, unit mean vectors) of every live video, by id."""
        parts = self._gather("video_means")
        ids = np.concatenate([p[0] for p in parts]).astype(np.int64)
        means = np.concatenate([p[1] for p in parts]).astype(np.float32).reshape(len(ids), -1)
        order = np.argsort(ids)
        ids, means = ids[order], means[order]
        means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-12
        return ids, means

    def catch_up(self) -> list[dict[str, int]]:
        """Every replica reads what the writer has committed (waits for all of them, so a
        search after this sees it)."""
        ray = _ray()
        return ray.get([a.refresh.remote() for row in self.replicas for a in row])

    def close(self) -> None:
        """Leave the cluster; a private instance ends with its actors."""
        if self.replicas is not None:
            self.replicas = None
            disconnect()


def shard_library(root: Path, shards: int, replicas: int, address: str) -> ClusterConfig:
    """Shard the library at `root`: its trained index, emptied, becomes the template
    every shard copies (train once), and `library.toml` gains its `[cluster]` section.
    Re-run after the library has grown a lot: shards keep their template's quantizer
    (`vq index stats` says when the single-process policy would have retrained)."""
    from vq.fsutil import atomic_write_text, sha256_file
    from vq.index.library import LIBRARY_FILE, Library, LibraryError
    from vq.index.shards import make_template

    if shards < 1 or replicas < 1:
        raise LibraryError("--shards and --replicas must be at least 1")
    with Library.open(root, write=True) as lib:
        if lib.config.codes != "pq":
            raise LibraryError(
                f"{root}: sharding supports float and PQ codes, not codes = {lib.config.codes!r}"
            )
        template = make_template(lib.trained_index(), Path(root))
        factory = lib.factory_for(lib.total)
        lib.config.cluster = ClusterConfig(shards, replicas, address, sha256_file(template), factory)
        atomic_write_text(Path(root) / LIBRARY_FILE, lib.config.to_toml())
        return lib.config.cluster


def release_shards(root: Path, address: str | None = None) -> int:
    """End the named shard actors of the library at `root` on a shared cluster; how many."""
    from vq.index.library import read_config

    ray = _ray()
    config = read_config(Path(root))
    if config.cluster is None:
        return 0
    connect(address or config.cluster.address)
    ended = 0
    try:
        for s in range(config.cluster.shards):
            for r in range(config.cluster.replicas):
                name = shard_actor_name(Path(root), config.cluster.template_sha256, s, r)
                try:
                    ray.kill(ray.get_actor(name, namespace=NAMESPACE))
                    ended += 1
                except ValueError:
                    pass  # not running
    finally:
        disconnect()
    return ended
