"""The batch job of `vq run` (and `vq index add|query`): copy detection, with quality and
enhancement from the same decode when asked, one video at a time in a worker process
under the watchdog (`vq.pipelines.watchdog`), one record each.

Kept apart from `vq.pipelines.dedup` (the job itself) and `vq.pipelines.upload` (the
three jobs on one decode) so that both are imported by this module and neither by the
other's user: the import graph stays a tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vq.index.library import Library
from vq.match import ALIGNERS
from vq.pipelines.dedup import Dedup, DedupConfig, VideoRecord, source_of, video_id
from vq.pipelines.upload import UploadJob
from vq.pipelines.watchdog import DEFAULT_TIMEOUT


def read_sidecar(path: Path | str) -> dict[str, Any]:
    """Metadata from `video.mp4.json` or `video.json` beside the video, if present."""
    import json

    from vq.errors import UsageError

    if isinstance(path, str):  # a URL has no folder to hold a sidecar
        return {}
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise UsageError(f"{candidate}: unreadable metadata sidecar ({e})") from None
            return data if isinstance(data, dict) else {}
    return {}


def run_job(
    paths: list[Path],
    libraries: list[Path],
    *,
    backend: str = "auto",
    ingest: bool = True,
    query: bool = True,
    config: DedupConfig | None = None,
    meta: dict[str, Any] | None = None,
    lock_timeout: float = 120.0,
    timeout: float | None = DEFAULT_TIMEOUT,
    quality: Any = None,
    enhance: Any = None,
    cluster: str | None = None,
) -> Iterator[VideoRecord]:
    """Match (and ingest) every video in turn; one record each, errors included.

    The first library is opened for writing when ingesting (one writer at a time: a second
    job waits `lock_timeout` seconds for the lock, then fails with one line); the others
    are read-only downstream libraries. Per-video metadata is the video's sidecar JSON
    with `meta` over it. With a `timeout` (seconds per video) the videos run in a worker
    process under `vq.pipelines.watchdog`: a video that stalls or crashes the worker gets
    an error record and the batch goes on (an ingest cut short leaves the library as it
    was before that video). `timeout=None` runs in this process. `quality`
    (`vq.pipelines.upload.QualityOptions`) and `enhance` (`EnhanceOptions`) add those jobs,
    fed by the same decode (`vq.pipelines.upload.UploadJob`). `cluster`: search the sharded
    libraries through their Ray shards at this address (`vq.index.cluster`; "" for each
    library's own `[cluster]` address).
    """
    config = config or DedupConfig()
    if config.aligner not in ALIGNERS:
        from vq.errors import UsageError

        raise UsageError(f"unknown aligner {config.aligner!r} (choose from {', '.join(ALIGNERS.names())})")
    from vq.pipelines.watchdog import Stalled, run_items

    args = (
        list(libraries),
        backend,
        ingest,
        query,
        config,
        dict(meta or {}),
        lock_timeout,
        quality,
        enhance,
        cluster,
    )
    # The worker may wait for the write lock, then load the index, before its first video.
    start_timeout = lock_timeout + 300.0
    for result in run_items(paths, DedupWorker, args, timeout=timeout, start_timeout=start_timeout):
        if isinstance(result, Stalled):
            path = source_of(result.item)
            error = f"{path}: {result.describe()}"
            yield VideoRecord(id=video_id(path), path=str(path), status="error", error=error)
        else:
            yield result


class DedupWorker:
    """The per-process half of `run_job`: open libraries and model once, then one
    `VideoRecord` per path."""

    def __init__(
        self,
        libraries: list[Path],
        backend: str,
        ingest: bool,
        query: bool,
        config: DedupConfig,
        meta: dict[str, Any],
        lock_timeout: float,
        quality: Any = None,
        enhance: Any = None,
        cluster: str | None = None,
    ):
        from vq.index.library import companions_of, read_config
        from vq.stages.embed import Embedder

        self.ingest, self.query, self.meta = ingest, query, meta
        self.opened: list[Library] = []
        self.embedders: list[Embedder] = []
        self.upload = None
        try:
            for i, root in enumerate(libraries):
                for where in (Path(root), *companions_of(root)):  # a companion goes with its library
                    # --cluster searches every sharded library through its shards; others run here.
                    sharded = cluster is not None and read_config(where).cluster is not None
                    self.opened.append(
                        Library.open(
                            where,
                            write=ingest and i == 0,
                            lock_timeout=lock_timeout,
                            cluster=cluster if sharded else None,
                        )
                    )
            for lib in self.opened:
                lib.use_gpu()  # faiss-gpu builds search on the GPUs; a no-op elsewhere
            # One embedder per model the libraries use, the main library's first.
            models = {lib.config.model_sha256: lib.config.model for lib in self.opened}
            for model in models.values():
                self.embedders.append(Embedder(model, backend=backend).open())
            self.embedder = self.embedders[0]
            self.job = Dedup(self.embedders, self.opened, config)
            if quality is not None or enhance is not None:
                self.upload = UploadJob(self.job, backend, quality, enhance)
        except BaseException:
            self.close()
            raise

    def __call__(self, path: Path | str) -> VideoRecord:
        path = source_of(path)
        meta = {**read_sidecar(path), **self.meta}
        if self.upload is not None:
            return self.upload.process(path, meta, ingest=self.ingest, query=self.query)
        return self.job.process(path, meta, ingest=self.ingest, query=self.query)

    def close(self) -> None:
        if getattr(self, "upload", None) is not None:
            self.upload.close()
            self.upload = None
        for embedder in getattr(self, "embedders", []):
            embedder.close()
        self.embedders = []
        for lib in self.opened:
            lib.close()
        self.opened = []
