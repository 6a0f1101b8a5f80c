"""The thread that owns the libraries and models, and the pool that stages videos for it.

A library has one writer (`vq.index.library`: a file lock, SQLite catalog, in-memory
index), and a copy must be matched against every upload that arrived before it. So a job
is two halves (`Dedup.stage` / `complete`, or `UploadJob`'s with `--score`):

* staging -- decode, content box, embeddings, quality -- touches no library, and runs in a
  pool of `workers` threads, up to `workers` jobs ahead of the writer;
* completing -- matching and ingest -- runs on this thread only, one job at a time, in the
  order the jobs were accepted.

Everything is opened once (what lets the service answer in seconds where a `vq run`
process pays the library load per call). A job's video is named by its job id in the
library, so a job re-run after a crash (its ingest may have committed just before the
kill) finds itself already there: the library skips it, its own entry is not reported as a
copy, and the record says it was ingested. A job is acknowledged as ingested only once
the catalog transaction committed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from vq.pipelines.dedup import source_of
from vq.serve.jobs import Job, JobStore


class Processor(threading.Thread):
    def __init__(
        self,
        store: JobStore,
        libraries: list[Path],
        *,
        backend: str = "auto",
        deadline: float | None = None,
        quality: Any = None,
        observe: Any = None,
        workers: int = 2,
        read_only: bool = False,
    ):
        super().__init__(name="vq-processor", daemon=True)
        self.store, self.libraries, self.backend = store, libraries, backend
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.deadline, self.quality, self.workers = deadline, quality, workers
        self.read_only = read_only  # a replica: queries only, libraries opened read-only
        self.observe = observe or (lambda record, seconds: None)
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.failure: BaseException | None = None  # why the thread could not start

    def run(self) -> None:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        from vq.pipelines.batch import DedupWorker
        from vq.pipelines.dedup import DedupConfig

        try:
            config = DedupConfig(deadline=self.deadline)
            worker = DedupWorker(
                self.libraries, self.backend, not self.read_only, True, config, {}, 120.0, self.quality, None
            )
        except BaseException as e:
            self.failure = e
            self.ready.set()
            return
        self.ready.set()
        runner = worker.upload if worker.upload is not None else worker.job
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vq-stage")
        inflight: deque = deque()
        try:
            while not self.stopping.is_set():
                # Keep up to `workers` jobs staging ahead of the writer, in arrival order.
                while len(inflight) < self.workers:
                    job = self.store.claim_next(timeout=0.0 if inflight else 0.5)
                    if job is None:
                        break
                    inflight.append((job, time.perf_counter(), pool.submit(self.stage, runner, job)))
                if not inflight:
                    continue
                job, t0, future = inflight.popleft()
                record = self.complete(worker, runner, job, future.result())
                self.store.finish(job.id, record)
                self.observe(record, time.perf_counter() - t0)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            worker.close()

    @staticmethod
    def stage(runner: Any, job: Job) -> Any:
        """The job's `Staged` video, or an error record (never raises)."""
        from vq.errors import VqError

        try:
            return runner.stage(source_of(job.source), query=True)
        except VqError as e:
            return {"id": job.id, "path": job.source, "status": "error", "error": str(e)}
        except Exception as e:  # a bug must cost one job, not the service
            return {"id": job.id, "path": job.source, "status": "error", "error": f"internal error: {e!r}"}

    def complete(self, worker: Any, runner: Any, job: Job, staged: Any) -> dict[str, Any]:
        """Match and ingest a staged job: its `vq run` record (never raises)."""
        if isinstance(staged, dict):
            record = staged
        else:
            meta = {"upload": job.name, "job": job.id}
            try:
                result = runner.complete(source_of(job.source), staged, meta, ingest=job.ingest, name=job.id)
                record = result.to_json()
            except Exception as e:  # a bug must cost one job, not the service
                record = {
                    "id": job.id,
                    "path": job.source,
                    "status": "error",
                    "error": f"internal error: {e!r}",
                }
        record["matches"] = [m for m in record.get("matches", []) if m.get("ref_id") != job.id]
        main = worker.opened[0]
        if job.ingest and record.get("status") == "ok" and not record.get("ingested"):
            # Re-run after a crash: the first run's ingest had committed.
            record["ingested"] = main.video_by_name(job.id) is not None and record.get("mode") == "main"
        record["job"], record["name"] = job.id, job.name
        return record

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.join(timeout)
