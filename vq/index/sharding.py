"""Sharding a library for Ray, and finding or ending its shards (`vq index shard`,
`--cluster`). It sits above both the library (`vq.index.library`) and the shards' router
(`vq.index.cluster`): it imports both, and the library imports only the router."""

from __future__ import annotations

from pathlib import Path

from vq.index.cluster import NAMESPACE, ClusterConfig, connect, disconnect, load_ray, shard_actor_name
from vq.index.library import LIBRARY_FILE, Library, LibraryError, read_config


def require_sharded(libraries: list[Path]) -> None:
    """`--cluster` needs at least one sharded library among `libraries` (one-line error)."""
    from vq.errors import UsageError

    if not any(read_config(Path(lib)).cluster is not None for lib in libraries):
        raise UsageError("--cluster: none of the libraries is sharded (shard one with `vq index shard`)")


def shard_library(root: Path, shards: int, replicas: int, address: str) -> ClusterConfig:
    """Shard the library at `root` and its companions alike: each one's trained index,
    emptied, becomes the template every shard of it copies (train once), and its
    `library.toml` gains a `[cluster]` section. Re-run after the library has grown a lot:
    shards keep their template's quantizer (`vq index stats` says when the single-process
    policy would have retrained)."""
    from vq.index.library import companions_of

    if shards < 1 or replicas < 1:
        raise LibraryError("--shards and --replicas must be at least 1")
    for companion in companions_of(root):  # else the router would hold their vectors
        _shard_one(companion, shards, replicas, address)
    return _shard_one(Path(root), shards, replicas, address)


def _shard_one(root: Path, shards: int, replicas: int, address: str) -> ClusterConfig:
    from vq.fsutil import atomic_write_text, sha256_file
    from vq.index.shards import make_template

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
    """End the named shard actors of the library at `root` and its companions on a shared
    cluster; how many."""
    from vq.index.library import companions_of

    return sum(_release_one(lib, address) for lib in (Path(root), *companions_of(root)))


def _release_one(root: Path, address: str | None) -> int:
    ray = load_ray()
    config = read_config(Path(root))
    if config.cluster is None:
        return 0
    connect(address or config.cluster.address)
    ended = 0
    try:
        for s in range(config.cluster.shards):
            for r in range(config.cluster.replicas):
                name = shard_actor_name(Path(root), config.cluster, config.nprobe, s, r)
                try:
                    ray.kill(ray.get_actor(name, namespace=NAMESPACE))
                    ended += 1
                except ValueError:
                    pass  # not running
    finally:
        disconnect()
    return ended
