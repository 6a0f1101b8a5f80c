"""The one thread that owns the libraries and models and runs jobs in arrival order.

A library has one writer (`vq.index.library`: a file lock, SQLite catalog, in-memory
index), and a copy must be matched against every upload that arrived before it, so
jobs run one at a time in the order they were accepted. The thread opens everything once
(what makes the service answer in seconds where a `vq run` process pays the library load
per call), then takes the oldest queued job, runs the same job `vq run` runs (copy
detection, with `--score` the quality model from the same decode), stores the record and
goes on. A job's video is named by its job id in the library, so a job re-run after a
crash (its ingest may have committed just before the kill) finds itself already there:
the library skips it, its own entry is not reported as a copy, and the record says it was
ingested. A job is acknowledged as ingested only when the catalog transaction committed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

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
    ):
        super().__init__(name="vq-processor", daemon=True)
        self.store, self.libraries, self.backend = store, libraries, backend
        self.deadline, self.quality = deadline, quality
        self.observe = observe or (lambda record, seconds: None)
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.failure: BaseException | None = None  # why the thread could not start
        self.current: str | None = None  # the job id being run

    def run(self) -> None:
        from vq.pipelines.dedup import DedupConfig, DedupWorker

        try:
            config = DedupConfig(deadline=self.deadline)
            worker = DedupWorker(
                self.libraries, self.backend, True, True, config, {}, 120.0, self.quality, None
            )
        except BaseException as e:
            self.failure = e
            self.ready.set()
            return
        self.ready.set()
        try:
            while not self.stopping.is_set():
                job = self.store.claim_next(timeout=0.5)
                if job is None:
                    continue
                self.current = job.id
                t0 = time.perf_counter()
                record = self.handle(worker, job)
                self.store.finish(job.id, record)
                self.current = None
                self.observe(record, time.perf_counter() - t0)
        finally:
            worker.close()

    def handle(self, worker: Any, job: Job) -> dict[str, Any]:
        """The `vq run` record of one job (never raises: a failure is an error record)."""
        path = Path(job.source)
        meta = {"upload": job.name, "job": job.id}
        try:
            if worker.upload is not None:
                result = worker.upload.process(path, meta, ingest=job.ingest, query=True, name=job.id)
            else:
                result = worker.job.process(path, meta, ingest=job.ingest, name=job.id)
            record = result.to_json()
        except Exception as e:  # a bug must cost one job, not the service
            record = {"id": job.id, "path": str(path), "status": "error", "error": f"internal error: {e!r}"}
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
