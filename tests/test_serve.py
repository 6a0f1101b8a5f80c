"""`vq serve`: the upload-time service, in process (FastAPI's TestClient runs the app's
lifespan, so the real processor thread, library and model run behind the real routes)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from vq import synth as E  # noqa: E402
from vq.pipelines.library import create_library  # noqa: E402

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def videos(shared_data, tmp_path_factory):
    """Under one root: 8 s of Big Buck Bunny, 4 s of it cut from the middle (a copy), and an
    unrelated clip; outside the root, a file a symlink points to."""
    root = tmp_path_factory.mktemp("root")
    src = shared_data / "videos" / "big_buck_bunny_0_30.webm"
    E.render(src, root / "original.mp4", [E.Trim(10.0, 18.0)], fps=10, size=(320, 180), audio=False)
    E.render(src, root / "copy.mp4", [E.Trim(12.0, 16.0)], fps=10, size=(320, 180), audio=False)
    chaplin = shared_data / "videos" / "chaplin.mp4"
    E.render(chaplin, root / "other.mp4", [E.Trim(0.0, 4.0)], fps=10, size=(320, 180), audio=False)
    outside = tmp_path_factory.mktemp("outside") / "secret.mp4"
    outside.write_bytes((root / "other.mp4").read_bytes())
    (root / "link.mp4").symlink_to(outside)
    return root


def make_app(tmp_path: Path, root: Path, **kw):
    from vq.serve.app import ServeSettings, create_app

    lib = tmp_path / "lib"
    if not (lib / "library.toml").exists():
        create_library(lib, None, fps=2)
    settings = ServeSettings(libraries=[lib], state=tmp_path / "state", token=TOKEN, root=root, **kw)
    return create_app(settings), lib


def post(client, path: str, *, wait: float = 120, endpoint: str = "/v1/videos", headers=AUTH):
    return client.post(f"{endpoint}?wait={wait}", data={"path": path}, headers=headers)


def test_serve_matches_in_arrival_order_and_refuses_bad_requests(videos, tmp_path):
    from vq.index.library import open_library

    app, lib = make_app(tmp_path, videos, max_upload_bytes=400_000)
    with TestClient(app) as client:
        # Writes need the token.
        assert post(client, "original.mp4", headers={}).status_code == 401
        assert post(client, "original.mp4", headers={"Authorization": "Bearer wrong"}).status_code == 401

        first = post(client, "original.mp4")
        assert first.status_code == 200, first.text
        original = first.json()
        assert original["status"] == "done" and original["record"]["ingested"] is True
        assert original["record"]["matches"] == []

        # An upload (multipart) of the copy is matched to the first job's video.
        with open(videos / "copy.mp4", "rb") as f:
            reply = client.post("/v1/videos?wait=120", files={"file": ("copy.mp4", f)}, headers=AUTH)
        copy = reply.json()
        assert reply.status_code == 200 and copy["status"] == "done", reply.text
        [match] = copy["record"]["matches"]
        assert match["ref_id"] == original["id"]
        seg = match["segments"][0]
        assert seg["ref_start"] == pytest.approx(2.0, abs=1.0) and seg["ref_end"] == pytest.approx(
            6.0, abs=1.0
        )

        # A query matches (the same file was just uploaded) and adds nothing.
        query = post(client, "copy.mp4", endpoint="/v1/query").json()
        assert query["record"]["matches"][0]["ref_id"] == copy["id"] and not query["record"]["ingested"]

        # The job, its review page, health and metrics.
        got = client.get(f"/v1/videos/{copy['id']}").json()
        assert got["record"] == copy["record"]
        page = client.get(f"/v1/videos/{copy['id']}/report")
        assert page.status_code == 200 and "COPY" in page.text and "<script src" not in page.text
        assert client.get("/v1/videos/nope").status_code == 404
        assert client.get("/healthz").json() == {"status": "ok", "queue": 0}
        metrics = client.get("/metrics").text
        assert "vq_queue_depth 0.0" in metrics and 'vq_stage_seconds_count{stage="embed"} 3.0' in metrics

        # Bad requests: 4xx with one line, nothing queued.
        for bad, code in [("../outside.mp4", 403), ("link.mp4", 403), ("missing.mp4", 404)]:
            reply = post(client, bad)
            assert reply.status_code == code and "\n" not in reply.json()["detail"], (bad, reply.text)
        reply = client.post(
            "/v1/videos", files={"file": ("x.mp4", b"\x00\x00\x00\x18ftypmp42 junk")}, headers=AUTH
        )
        assert reply.status_code == 422 and "\n" not in reply.json()["detail"]
        big = b"\x00" * 500_000
        reply = client.post("/v1/videos", files={"file": ("big.mp4", big)}, headers=AUTH)
        assert reply.status_code == 413
        reply = client.post("/v1/videos", headers=AUTH)
        assert reply.status_code == 400
        assert not [p for p in (tmp_path / "state" / "uploads").iterdir() if p.name.startswith(".")]
    with open_library(lib) as library:
        assert sorted(v.name for v in library.live_videos()) == sorted([original["id"], copy["id"]])


def test_accepted_jobs_survive_a_kill_and_run_exactly_once(videos, tmp_path):
    """A job the processor was running when the server died (its ingest may have committed)
    and a job still queued both finish after a restart, each in the library once."""
    from vq.index.library import open_library
    from vq.serve.jobs import JobStore

    app, lib = make_app(tmp_path, videos)
    with TestClient(app) as client:
        done = post(client, "original.mp4").json()
        assert done["record"]["ingested"]
    # Simulate the kill: the finished job goes back to 'running' (its ingest committed,
    # its record was never written), and a second job was accepted but never started.
    db = sqlite3.connect(tmp_path / "state" / "jobs.sqlite")
    db.execute("UPDATE jobs SET status = 'running', record = NULL WHERE id = ?", (done["id"],))
    db.commit()
    db.close()
    store = JobStore(tmp_path / "state" / "jobs.sqlite")
    queued = store.submit(str(videos / "other.mp4"), "other.mp4", True)
    store.close()

    app, lib = make_app(tmp_path, videos)
    with TestClient(app) as client:
        store = app.state.store
        rerun = store.wait_finished(done["id"], 120)
        other = store.wait_finished(queued.id, 120)
        assert rerun.status == "done" and rerun.record["ingested"] is True
        assert rerun.record["matches"] == []  # not a copy of itself
        assert other.status == "done" and other.record["ingested"] is True
    with open_library(lib) as library:
        names = [v.name for v in library.live_videos()]
    assert sorted(names) == sorted([done["id"], queued.id])
    rows = json.loads(json.dumps(names))
    assert len(rows) == len(set(rows))


def test_a_read_only_replica_answers_queries_beside_the_writer(videos, tmp_path):
    """A replica opens the libraries read-only (no write lock), so it runs beside the
    writer; it answers /v1/query, refuses uploads, and sees what the writer commits after
    it started."""
    app, lib = make_app(tmp_path, videos)
    with TestClient(app) as writer:
        first = post(writer, "original.mp4").json()
        assert first["record"]["ingested"]
        from vq.serve.app import ServeSettings, create_app

        replica = create_app(
            ServeSettings(
                libraries=[lib], state=tmp_path / "replica", token=TOKEN, root=videos, read_only=True
            )
        )
        with TestClient(replica) as reader:
            later = post(writer, "other.mp4").json()  # committed after the replica opened
            assert later["record"]["ingested"]
            assert post(reader, "copy.mp4").status_code == 403
            query = post(reader, "copy.mp4", endpoint="/v1/query").json()
            assert query["record"]["matches"][0]["ref_id"] == first["id"]
            query = post(reader, "other.mp4", endpoint="/v1/query").json()
            assert [m["ref_id"] for m in query["record"]["matches"]] == [later["id"]]


def test_queries_do_not_wait_behind_queued_uploads(videos, tmp_path):
    """A query is answered while uploads accepted before it are still in line."""
    from vq.serve.jobs import JobStore

    app, _lib = make_app(tmp_path, videos)
    with TestClient(app) as client:
        first = post(client, "original.mp4").json()
        assert first["record"]["ingested"]
    store = JobStore(tmp_path / "state" / "jobs.sqlite")
    uploads = [store.submit(str(videos / "original.mp4"), f"again{i}.mp4", True) for i in range(12)]
    store.close()
    app, _lib = make_app(tmp_path, videos)
    with TestClient(app) as client:
        query = post(client, "copy.mp4", endpoint="/v1/query").json()
        assert query["status"] == "done"
        assert query["record"]["matches"][0]["ref_id"] == first["id"]
        assert "ingested" not in query["record"] or not query["record"]["ingested"]
        store = app.state.store
        waiting = [store.get(u.id).status for u in uploads]
        assert waiting.count("done") < len(uploads), waiting  # the query did not wait for them
        last = store.wait_finished(uploads[-1].id, 300)
        assert last.status == "done"
        assert store.get(query["id"]).finished < last.finished


def test_uploads_are_deleted_after_the_retention(videos, tmp_path):
    """Kept uploads go once their job is finished and the retention has passed; files
    named by path are never touched."""
    import time

    app, _lib = make_app(tmp_path, videos, keep_uploads_days=1e-5)  # 0.864 s
    with TestClient(app) as client:
        data = (videos / "original.mp4").read_bytes()
        reply = client.post("/v1/videos?wait=120", files={"file": ("up.mp4", data)}, headers=AUTH).json()
        assert reply["status"] == "done"
        assert post(client, "other.mp4").json()["status"] == "done"
        kept = Path(reply["record"]["path"])
        deadline = time.monotonic() + 30
        while kept.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not kept.exists()
        assert (videos / "other.mp4").exists()
        assert client.get(f"/v1/videos/{reply['id']}/report").status_code == 200


def test_urls_are_read_only_under_the_configured_prefixes(videos, tmp_path):
    import functools
    import http.server
    import threading

    import av

    # A file a plain HTTP server can serve: Matroska keeps its duration up front (an MP4 needs Range).
    served = tmp_path / "www"
    (served / "videos").mkdir(parents=True)
    with (
        av.open(str(videos / "original.mp4")) as src,
        av.open(str(served / "videos" / "original.mkv"), "w", format="matroska") as out,
    ):
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        app, _ = make_app(tmp_path, None, url_prefixes=(f"{base}/videos",))
        with TestClient(app) as client:
            done = post(client, f"{base}/videos/original.mkv").json()
            assert done["status"] == "done" and done["record"]["ingested"], done["record"]
            assert done["record"]["path"] == f"{base}/videos/original.mkv"
            for bad in (f"{base}/videos/../secret.mkv", f"{base}/videosX/a.mkv", "http://example.com/a.mp4"):
                reply = post(client, bad)
                assert reply.status_code == 403, (bad, reply.text)
            assert post(client, "original.mp4").status_code == 403  # no --root: uploads and URLs only
    finally:
        httpd.shutdown()


def test_serve_refuses_to_start_without_a_token(tmp_path, monkeypatch, capsys):
    from vq.cli.app import main

    monkeypatch.delenv("VQ_SERVE_TOKEN", raising=False)
    lib = tmp_path / "lib"
    create_library(lib, None)
    assert main(["serve", "--library", str(lib)]) == 2
    assert "bearer token" in capsys.readouterr().err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`vq serve` in its own process, as an operator runs it."""

    def __init__(self, lib: Path, root: Path, state: Path):
        import os
        import subprocess
        import sys

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            "serve",
            "--library",
            str(lib),
            "--root",
            str(root),
            "--state",
            str(state),
            "--port",
            str(self.port),
        ]
        env = {**os.environ, "VQ_SERVE_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vq.cli.app", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 120.0) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vq serve exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("vq serve did not come up")

    def kill(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def kill_rounds(videos: Path, tmp_path: Path, rounds: int, wait_before_kill) -> None:
    """Per round: 3 jobs accepted, `wait_before_kill(server, round's job ids)`, then the
    server killed (-9) and restarted. At the end every accepted job is done and ingested,
    and each is in the library exactly once."""
    import time

    import httpx

    from vq.index.library import open_library

    lib, state = tmp_path / "lib", tmp_path / "state"
    create_library(lib, None, fps=2)
    server = Server(lib, videos, state)
    accepted = []
    try:
        for _round in range(rounds):
            for name in ("original.mp4", "copy.mp4", "other.mp4"):
                reply = httpx.post(f"{server.url}/v1/videos", data={"path": name}, headers=AUTH, timeout=30)
                assert reply.status_code == 202, reply.text
                accepted.append(reply.json()["id"])
            wait_before_kill(server, accepted[-3:])
            server.kill()
            server = Server(lib, videos, state)
        deadline = time.monotonic() + 300
        records = {}
        while len(records) < len(accepted) and time.monotonic() < deadline:
            for job in accepted:
                got = httpx.get(f"{server.url}/v1/videos/{job}", timeout=10).json()
                if got["status"] in ("done", "error"):
                    records[job] = got
            time.sleep(0.2)
    finally:
        server.stop()
    assert sorted(records) == sorted(accepted)
    assert all(r["status"] == "done" and r["record"]["ingested"] for r in records.values())
    with open_library(lib) as library:
        names = [v.name for v in library.live_videos()]
    assert sorted(names) == sorted(accepted)  # each accepted job's video once, nothing else


def test_kill_9_mid_ingest_loses_and_duplicates_nothing(videos, tmp_path):
    """Killed as soon as the first job of a round has finished (the next is mid-way), twice."""
    import time

    import httpx

    def first_done(server, jobs):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if httpx.get(f"{server.url}/v1/videos/{jobs[0]}", timeout=10).json()["status"] == "done":
                return
            time.sleep(0.05)

    kill_rounds(videos, tmp_path, 2, first_done)


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(videos, tmp_path):
    """Killed at 10 random moments of a round (0-3 s after its jobs were accepted: while
    decoding, embedding, writing a segment, committing, or recording the result). Other
    moments: VQ_KILL_SEED=n."""
    import os
    import random
    import time

    moments = random.Random(int(os.environ.get("VQ_KILL_SEED", "20261201"))).sample(range(300), 10)
    kill_rounds(videos, tmp_path, len(moments), lambda server, jobs: time.sleep(moments.pop() / 100))
