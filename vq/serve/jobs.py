"""The service's durable job queue: every accepted upload is a row before it is acknowledged.

One SQLite file (WAL, synchronous=FULL) holds the jobs in arrival order. A job is
`queued` when accepted, `running` while the processor has it, then `done` (its record
stored) or `error`. A server killed at any moment restarts with `requeue_running`: what
was running goes back in the queue and runs again, and the processor makes that safe
(the library skips a name it already holds; see `vq.serve.processor`). Thread-safe: the
HTTP handlers and the processor share one connection behind a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    source TEXT NOT NULL,      -- the file the processor reads (an upload kept under the state dir, or a path)
    name TEXT NOT NULL,        -- what the client called it (file name or path)
    ingest INTEGER NOT NULL,   -- 1: match then add to the library; 0: match only (/v1/query)
    status TEXT NOT NULL,      -- queued | running | done | error
    record TEXT,               -- the vq run record (JSON) once done or failed
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""


@dataclass
class Job:
    id: str
    seq: int
    source: str
    name: str
    ingest: bool
    status: str
    record: dict[str, Any] | None
    created: float
    finished: float | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "name": self.name, "ingest": self.ingest}
        if self.record is not None:
            out["record"] = self.record
        if self.finished is not None:
            out["seconds"] = round(self.finished - self.created, 3)
        return out


class JobStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged job survives power loss
        self._db.executescript(SCHEMA)
        self._changed = threading.Condition(self._lock)

    def _row(self, row: tuple | None) -> Job | None:
        if row is None:
            return None
        seq, id_, source, name, ingest, status, record, created, finished = row
        return Job(
            id_,
            seq,
            source,
            name,
            bool(ingest),
            status,
            json.loads(record) if record else None,
            created,
            finished,
        )

    _COLUMNS = "seq, id, source, name, ingest, status, record, created, finished"

    def submit(self, source: str, name: str, ingest: bool, job_id: str | None = None) -> Job:
        """Queue a job; committed (durable) when this returns."""
        job_id = job_id or uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, source, name, ingest, status, created) "
                "VALUES (?, ?, ?, ?, 'queued', ?)",
                (job_id, source, name, int(ingest), time.time()),
            )
            self._changed.notify_all()
        job = self.get(job_id)
        assert job is not None
        return job

    def claim_next(self, timeout: float | None = None, *, ingest: bool | None = None) -> Job | None:
        """The oldest queued job (of that kind: uploads, or queries), now `running`; waits up
        to `timeout` s for one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        kinds = (0, 1) if ingest is None else (int(ingest),)
        with self._lock:
            while True:
                row = self._db.execute(
                    f"SELECT {self._COLUMNS} FROM jobs WHERE status = 'queued' "
                    f"AND ingest IN ({','.join('?' * len(kinds))}) ORDER BY seq LIMIT 1",
                    kinds,
                ).fetchone()
                if row is not None:
                    self._db.execute("UPDATE jobs SET status = 'running' WHERE seq = ?", (row[0],))
                    job = self._row(row)
                    assert job is not None
                    job.status = "running"
                    return job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left)

    def finish(self, job_id: str, record: dict[str, Any]) -> None:
        status = "done" if record.get("status") == "ok" else "error"
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, record = ?, finished = ? WHERE id = ?",
                (status, json.dumps(record), time.time(), job_id),
            )
            self._changed.notify_all()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._row(row)

    def wait_finished(self, job_id: str, timeout: float) -> Job | None:
        """The job once done or failed, or as it stands after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            left = deadline - time.monotonic()
            if job is None or job.status in ("done", "error") or left <= 0:
                return job
            with self._lock:
                self._changed.wait(min(left, 0.5))

    def requeue_running(self) -> int:
        """At start-up: jobs a killed server was running go back in the queue."""
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'")
            return cur.rowcount

    def finished_sources(self, after: float, before: float) -> list[str]:
        """The files of jobs finished in [after, before) (for the uploads' retention)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT source FROM jobs WHERE status IN ('done', 'error') "
                "AND finished >= ? AND finished < ?",
                (after, before),
            ).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
