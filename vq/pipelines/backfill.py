"""`vq index backfill`: ingest many videos on a Ray cluster, one writer committing.

Decoding and embedding (and the sound's fingerprint) are the costly half of an ingest
and touch no library (`Dedup.stage`). Ray Data runs them on a pool of actors, each
holding the model once, GPU actors where the cluster has GPUs. Each staged video comes
back without its pixels (`Staged.without_pixels`). This process is the library's one
writer and commits them in input order with `Dedup.complete`, the code `vq index add`
runs, so the library holds the same vectors a sequential ingest would.

Resumable: a video whose name is already committed is skipped, so a re-run after a
crash or a stop does only what is left. A file that fails to stage is an error record;
the batch goes on.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vq.pipelines.dedup import Dedup, DedupConfig, VideoRecord, source_of, video_id


class StageWorker:
    """A Ray Data actor: the embedding models (the library's, and its companions'), loaded
    once; stages one batch of paths."""

    def __init__(self, models: list[str], backend: str, fps: float, config: DedupConfig):
        from vq.stages.embed import Embedder

        self.embedders = [Embedder(model, backend=backend).open() for model in models]
        self.job = Dedup(self.embedders, [], config, ingest_fps=fps)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        from vq.errors import VqError, one_line

        staged, errors = [], []
        for path in batch["path"]:
            try:
                result = self.job.stage(source_of(str(path)), query=False)
                staged.append(pickle.dumps(result.without_pixels()))
                errors.append("")
            except Exception as e:  # a bad file is an error record, never the batch's end
                staged.append(b"")
                errors.append(one_line(e) if isinstance(e, VqError) else f"{path}: {one_line(e)}")
        return {"path": list(batch["path"]), "staged": staged, "error": errors}


def backfill(
    paths: list[Path],
    library: Path,
    *,
    backend: str = "auto",
    address: str = "auto",
    workers: int = 2,
    config: DedupConfig | None = None,
    meta: dict[str, Any] | None = None,
    lock_timeout: float = 120.0,
    cluster: bool = False,
) -> Iterator[VideoRecord]:
    """Ingest `paths` into `library` (skipping names it holds), staging on `workers` Ray
    actors; one record per video staged, in input order. `cluster`: the library is
    searched through its shards too, which catch up as videos are committed."""
    from vq.index.cluster import connect, disconnect, load_ray
    from vq.index.library import Library, companions_of
    from vq.pipelines.batch import read_sidecar
    from vq.stages.embed import Embedder

    config = config or DedupConfig()
    lib = Library.open(library, write=True, lock_timeout=lock_timeout, cluster=address if cluster else None)
    libs = [lib]
    try:
        libs += [Library.open(c, write=True, lock_timeout=lock_timeout) for c in companions_of(library)]
        models = [x.config.model for x in libs]
        todo = [p for p in paths if lib.video_by_name(video_id(source_of(p))) is None]
        if not todo:
            return
        ray = load_ray()
        connect(address)
        try:
            import ray.data

            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True  # commit in input order
            context.enable_progress_bars = False  # the caller shows its own
            logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-run INFO lines
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= workers else 0
            dataset = ray.data.from_items([{"path": str(p)} for p in todo], override_num_blocks=len(todo))
            staged = dataset.map_batches(
                StageWorker,
                fn_constructor_kwargs={
                    "models": models,
                    "backend": backend,
                    "fps": lib.config.fps,
                    "config": config,
                },
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=0 if gpus else 1,
                num_gpus=gpus,
            )
            writer = Dedup([Embedder(m, backend=backend) for m in models], libs, config)
            for row in staged.iter_rows():
                path = source_of(row["path"])
                if row["error"]:
                    yield VideoRecord(id=video_id(path), path=str(path), status="error", error=row["error"])
                    continue
                video_meta = {**read_sidecar(path), **(meta or {})}
                yield writer.complete(path, pickle.loads(row["staged"]), video_meta, ingest=True, query=False)
        finally:
            disconnect()
    finally:
        for x in libs:
            x.close()
