"""`vq serve`: the upload-time HTTP service (FastAPI on uvicorn).

    POST /v1/videos            an upload (multipart `file`) or {"path": ...} under --root:
                               matched, then added to the library; returns the job at once,
                               or its record with ?wait=S if it is ready within S seconds
    POST /v1/query             the same, matched only (nothing is added; never waits
                               behind the uploads' queue)
    GET  /v1/videos/{id}       the job: status and, when finished, the `vq run` record
    GET  /v1/videos/{id}/report  the review page of that record (`vq report`)
    GET  /healthz              the processor is up; queue depth
    GET  /metrics              Prometheus text: queue depth, jobs by outcome, stage latencies
    GET  /docs                 the OpenAPI docs

Every write needs ``Authorization: Bearer <token>`` (the token from `VQ_SERVE_TOKEN` or
``--token-file``; compared in constant time, never logged). A job is written to the
durable queue (`vq.serve.jobs`) before it is acknowledged, and uploads are stored whole
(size-limited, atomically) before that; the one processor thread (`vq.serve.processor`)
runs uploads in arrival order, and queries in a lane of their own beside it. Bad
requests get a 4xx with a one-line reason.
"""

from __future__ import annotations

import hmac
import os
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from vq.errors import UsageError
from vq.fsutil import is_url

CHUNK = 1 << 20


@dataclass
class ServeSettings:
    libraries: list[Path]
    state: Path  # jobs.sqlite and kept uploads
    token: str
    root: Path | None = None  # paths a client may name are confined here (None: uploads only)
    url_prefixes: tuple[str, ...] = ()  # URLs a client may name must start with one of these
    backend: str = "auto"
    max_upload_bytes: int = 2 << 30
    max_pixels: int = 3840 * 2160
    deadline: float | None = 8.0  # decoding seconds before the seed's fallback path
    quality: Any = None  # `vq.pipelines.upload.QualityOptions` for --score
    workers: int = 2  # videos staged (decoded, embedded) at once, ahead of the one writer
    read_only: bool = False  # a query replica: no ingest, libraries opened read-only
    keep_uploads_days: float | None = 7.0  # uploads deleted this long after their job finished
    cluster: str | None = None  # search sharded libraries through their Ray shards at this address


def read_token(token_file: Path | None) -> str:
    """The bearer token: `--token-file` first, then `VQ_SERVE_TOKEN`; required."""
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as e:
            raise UsageError(f"--token-file {token_file}: {e.strerror}") from None
    else:
        token = os.environ.get("VQ_SERVE_TOKEN", "").strip()
    if len(token) < 16:
        raise UsageError(
            "vq serve needs a bearer token of >= 16 characters: set VQ_SERVE_TOKEN or --token-file"
        )
    return token


def create_app(settings: ServeSettings):
    """The ASGI app; the processor starts with the app (lifespan) and stops with it."""
    from vq.serve.jobs import JobStore
    from vq.serve.metrics import ServiceMetrics
    from vq.serve.processor import Processor

    settings.state.mkdir(parents=True, exist_ok=True)
    uploads = settings.state / "uploads"
    uploads.mkdir(exist_ok=True)
    store = JobStore(settings.state / "jobs.sqlite")
    metrics = ServiceMetrics(store)
    processor = Processor(
        store,
        settings.libraries,
        backend=settings.backend,
        deadline=settings.deadline,
        quality=settings.quality,
        observe=metrics.observe,
        workers=settings.workers,
        read_only=settings.read_only,
        uploads=uploads,
        keep_uploads=None if settings.keep_uploads_days is None else settings.keep_uploads_days * 86400.0,
        cluster=settings.cluster,
    )

    @asynccontextmanager
    async def lifespan(app):
        store.requeue_running()
        processor.start()
        processor.ready.wait()
        if processor.failure is not None:
            raise processor.failure
        yield
        processor.stop()
        store.close()

    app = FastAPI(title="vq", version="1", lifespan=lifespan)
    app.state.store, app.state.processor = store, processor

    def writer(authorization: str | None = Header(default=None)) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), settings.token):
            raise HTTPException(
                401, "a bearer token is required for this endpoint", {"WWW-Authenticate": "Bearer"}
            )

    async def accept(request: Request, file: UploadFile | None, path: str | None, ingest: bool, wait: float):
        if (file is None) == (path is None):
            raise HTTPException(400, "send either a multipart 'file' or a 'path' / URL (one of them)")
        if file is not None:
            declared = request.headers.get("content-length") or "0"
            if not declared.isdigit():
                raise HTTPException(400, "Content-Length is not a number")
            if int(declared) > settings.max_upload_bytes + CHUNK:
                raise HTTPException(413, f"upload larger than {settings.max_upload_bytes} bytes")
            name = Path(file.filename or "upload").name
            source = await store_upload(file, uploads, Path(name).suffix, settings.max_upload_bytes)
        elif is_url(path):
            source, name = allowed_url(path, settings.url_prefixes), path
        else:
            source, name = confined(path, settings.root), path
        # A probe reads the file (or the network): off the event loop, as are the queue's
        # fsynced commit and the wait, so one slow request never stalls the others.
        await run_in_threadpool(check_pixels, source, settings.max_pixels, file is not None)
        job = await run_in_threadpool(store.submit, str(source), name, ingest)
        metrics.accepted()
        if wait > 0:
            job = await run_in_threadpool(store.wait_finished, job.id, wait)
        return JSONResponse(job.to_json(), status_code=200 if job.status in ("done", "error") else 202)

    @app.post("/v1/videos", dependencies=[Depends(writer)], summary="Match, then add to the library")
    async def post_video(
        request: Request,
        file: UploadFile | None = File(default=None),
        path: str | None = Form(default=None),
        wait: float = Query(0.0, ge=0, le=300, description="Seconds to wait for the record"),
    ):
        if settings.read_only:
            raise HTTPException(
                403, "this server is a read-only replica: send uploads to the library's writer"
            )
        return await accept(request, file, path, True, wait)

    @app.post("/v1/query", dependencies=[Depends(writer)], summary="Match only (nothing is added)")
    async def post_query(
        request: Request,
        file: UploadFile | None = File(default=None),
        path: str | None = Form(default=None),
        wait: float = Query(0.0, ge=0, le=300),
    ):
        return await accept(request, file, path, False, wait)

    @app.get("/v1/videos/{job_id}", summary="A job and, when finished, its record")
    def get_video(job_id: str):
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job.to_json()

    @app.get("/v1/videos/{job_id}/report", response_class=HTMLResponse, summary="The review page")
    def get_report(job_id: str):
        from vq.report import render_report

        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        if job.record is None:
            raise HTTPException(409, f"job {job_id} is {job.status}: no record yet")
        return HTMLResponse(render_report([job.record], title=f"vq review: {job.name}"))

    @app.get("/healthz")
    def healthz():
        alive = processor.is_alive()
        body = {"status": "ok" if alive else "down", "queue": store.counts().get("queued", 0)}
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    def get_metrics():
        return PlainTextResponse(metrics.text(), media_type="text/plain; version=0.0.4")

    return app


async def store_upload(file: Any, folder: Path, suffix: str, limit: int) -> Path:
    """The upload, whole, under `folder` (renamed into place only once complete: a
    half-received file is never queued); 413 past `limit` bytes."""
    suffix = suffix if suffix.isascii() and len(suffix) <= 10 else ""
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=folder)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"upload larger than {limit} bytes")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        final = folder / (Path(tmp).name.removeprefix(".upload-"))
        os.replace(tmp, final)
        return final
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def confined(path: str, root: Path | None) -> Path:
    """`path` resolved (symlinks followed) and required to stay under `root`."""
    if root is None:
        raise HTTPException(403, "this server takes uploads only (start it with --root to allow paths)")
    base = root.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise HTTPException(403, "path is outside the server's --root")
    if not target.is_file():
        raise HTTPException(404, f"no such file under --root: {path}")
    return target


def allowed_url(url: str, prefixes: tuple[str, ...]) -> str:
    """`url` if it is http(s) under one of the configured prefixes (no `..` climbing out)."""
    import posixpath
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HTTPException(403, "only http(s) URLs are read")
    clean = urlunsplit(parts._replace(path=posixpath.normpath(parts.path or "/"), fragment=""))
    if not any(clean.startswith(p if p.endswith("/") else p + "/") for p in prefixes):
        raise HTTPException(403, "URL is outside the server's --url-prefix list")
    return clean


def check_pixels(source: Path | str, max_pixels: int, remove: bool) -> None:
    """Refuse what is not a video, or is too large to decode, before it is queued."""
    from vq.errors import VqError
    from vq.media import probe

    try:
        info = probe(source)
        reason = None
        if info.width * info.height > max_pixels:
            reason = f"{info.width}x{info.height} is more than {max_pixels} pixels"
    except VqError as e:
        reason = str(e).replace(str(source), Path(str(source)).name)
    if reason is not None:
        if remove:
            Path(source).unlink(missing_ok=True)
        raise HTTPException(422, reason)
