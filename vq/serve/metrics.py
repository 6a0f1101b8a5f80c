"""What `/metrics` exposes (Prometheus text, `prometheus_client`): queue depth, jobs by
outcome, and each stage's latency from the records' own timings."""

from __future__ import annotations

from typing import Any

STAGES = ("decode", "content_box", "embed", "quality", "match", "ingest", "total")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)


class ServiceMetrics:
    def __init__(self, store: Any):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        queue = Gauge("vq_queue_depth", "Jobs accepted and not yet started", registry=self.registry)
        queue.set_function(lambda: store.counts().get("queued", 0))
        self._accepted = Counter("vq_jobs_accepted", "Jobs accepted", registry=self.registry)
        self._finished = Counter(
            "vq_jobs_finished", "Jobs finished, by outcome", ["outcome"], registry=self.registry
        )
        self._stage = Histogram(
            "vq_stage_seconds",
            "Seconds per stage of a job",
            ["stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._job = Histogram(
            "vq_job_seconds", "Seconds from start to record, per job", buckets=BUCKETS, registry=self.registry
        )

    def accepted(self) -> None:
        self._accepted.inc()

    def observe(self, record: dict[str, Any], seconds: float) -> None:
        outcome = record.get("status", "error")
        if record.get("mode") == "fallback":
            outcome = "fallback"
        self._finished.labels(outcome).inc()
        self._job.observe(seconds)
        for stage in STAGES:
            value = record.get("timings", {}).get(stage)
            if isinstance(value, int | float):
                self._stage.labels(stage).observe(float(value))

    def text(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()
