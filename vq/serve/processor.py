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

Queries (`/v1/query`: match, never ingest) do not wait in that line: a second lane claims
them as they come and stages and matches them on its own `workers` threads, reading the
libraries while the writer ingests (the library's readers-writer lock makes that safe,
and holds a query back only for the milliseconds of an in-memory index update). On a
read-only replica every job is a query, and the libraries are refreshed from their
catalogs (at most once a second) so a query sees what the writer has committed.

Kept uploads are deleted `keep_uploads` seconds after their job finished (never before:
a queued or running job's file stays); files named by path under `--root` are never
touched.
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
        uploads: Path | None = None,
        keep_uploads: float | None = None,
        cluster: str | None = None,
    ):
        super().__init__(name="vq-processor", daemon=True)
        self.store, self.libraries, self.backend = store, libraries, backend
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.deadline, self.quality, self.workers = deadline, quality, workers
        self.read_only = read_only  # a replica: queries only, libraries opened read-only
        self.uploads, self.keep_uploads = uploads, keep_uploads
        self.cluster = cluster  # sharded libraries searched through their Ray shards
        self.observe = observe or (lambda record, seconds: None)
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.failure: BaseException | None = None  # why the thread could not start
        self._refreshed = 0.0
        self._refresh_lock = threading.Lock()
        self._swept_until = 0.0

    def run(self) -> None:
        from vq.pipelines.batch import DedupWorker
        from vq.pipelines.dedup import DedupConfig

        try:
            config = DedupConfig(deadline=self.deadline)
            worker = DedupWorker(
                self.libraries,
                self.backend,
                not self.read_only,
                True,
                config,
                {},
                120.0,
                self.quality,
                None,
                self.cluster,
            )
        except BaseException as e:
            self.failure = e
            self.ready.set()
            return
        self.ready.set()
        runner = worker.upload if worker.upload is not None else worker.job
        queries = threading.Thread(
            target=self._answer_queries, args=(worker, runner), name="vq-queries", daemon=True
        )
        queries.start()
        try:
            self._ingest_in_order(worker, runner)
        finally:
            queries.join()
            worker.close()

    def _ingest_in_order(self, worker: Any, runner: Any) -> None:
        """The writer's lane: uploads staged up to `workers` ahead, completed one at a time
        in arrival order. (On a replica there are none: it only keeps the uploads swept.)"""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vq-stage")
        inflight: deque = deque()
        try:
            while not self.stopping.is_set():
                self._sweep_uploads()
                if self.read_only:
                    self.stopping.wait(1.0)
                    continue
                while len(inflight) < self.workers:
                    job = self.store.claim_next(timeout=0.0 if inflight else 0.5, ingest=True)
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

    def _answer_queries(self, worker: Any, runner: Any) -> None:
        """The readers' lane: queries claimed as they come, up to `workers` at once, each
        staged and matched on its own thread beside the writer."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vq-query")
        free = threading.BoundedSemaphore(self.workers)
        try:
            while not self.stopping.is_set():
                if not free.acquire(timeout=0.5):
                    continue
                job = self.store.claim_next(timeout=0.5, ingest=False)
                if job is None:
                    free.release()
                    continue
                pool.submit(self._answer, worker, runner, job, free)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _answer(self, worker: Any, runner: Any, job: Job, free: threading.BoundedSemaphore) -> None:
        try:
            t0 = time.perf_counter()
            staged = self.stage(runner, job)
            if self.read_only:
                self._refresh(worker)
            record = self.complete(worker, runner, job, staged)
            self.store.finish(job.id, record)
            self.observe(record, time.perf_counter() - t0)
        finally:
            free.release()

    def _refresh(self, worker: Any) -> None:
        """A replica's libraries caught up with their writer's commits (at most once a second)."""
        with self._refresh_lock:
            if time.monotonic() - self._refreshed < 1.0:
                return
            for lib in worker.opened:
                lib.refresh()
            self._refreshed = time.monotonic()

    def _sweep_uploads(self) -> None:
        """Delete kept uploads whose job finished more than `keep_uploads` seconds ago
        (looked at once a minute, or a tenth of the retention if shorter; only files under
        the uploads folder)."""
        if self.uploads is None or self.keep_uploads is None:
            return
        cutoff = time.time() - self.keep_uploads
        if self._swept_until and cutoff - self._swept_until < min(60.0, self.keep_uploads / 10):
            return
        folder = self.uploads.resolve()
        for source in self.store.finished_sources(self._swept_until, cutoff):
            path = Path(source)
            if path.parent.resolve() == folder:
                path.unlink(missing_ok=True)
        self._swept_until = cutoff

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
