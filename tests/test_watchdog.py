"""One input never stalls or kills a batch: the per-item watchdog, alone and in `vq run`."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from media_factory import make_clip

from vq.cli.app import main
from vq.errors import UsageError, VqError
from vq.pipelines.watchdog import Stalled, run_isolated

from helpers import SlowOrCrashingWorker, refusing_worker


def test_a_stuck_or_crashing_item_becomes_a_record_and_the_batch_goes_on():
    start = time.monotonic()
    results = list(run_isolated([1, "sleep", 3, "crash", 5], SlowOrCrashingWorker, (2,), timeout=3.0))
    assert time.monotonic() - start < 60
    assert [r[1] for r in (results[0], results[2], results[4])] == [2, 6, 10]
    stuck, crashed = results[1], results[3]
    assert isinstance(stuck, Stalled) and stuck.reason == "timeout" and stuck.item == "sleep"
    assert 3.0 <= stuck.seconds < 10
    assert isinstance(crashed, Stalled) and crashed.reason == "crash" and "exit code 3" in crashed.detail
    # a fresh worker took over after each incident, and only then
    pids = [results[0][0], results[2][0], results[4][0]]
    assert len(set(pids)) == 3


def test_an_item_that_raises_is_an_error_record_and_the_worker_stays():
    results = list(run_isolated([1, "raise", 3], SlowOrCrashingWorker, (2,), timeout=30.0))
    err = results[1]
    assert isinstance(err, Stalled) and err.reason == "error"
    assert err.detail == "ValueError: cannot double this"  # one line
    assert results[0][0] == results[2][0]  # the same worker went on


def test_a_worker_that_cannot_start_fails_the_job_with_its_own_error():
    with pytest.raises(VqError, match="library is locked") as info:
        list(run_isolated([1, 2], refusing_worker, ("library is locked",), timeout=5.0))
    assert info.value.exit_code == UsageError.exit_code


def _slow_loris_server() -> tuple[socket.socket, int]:
    """An HTTP server that answers with a video's headers, then one byte every half
    second: every read succeeds, so no read timeout ever fires; only a watchdog stops it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    def trickle(conn):
        try:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 50000000\r\n\r\n")
            while True:
                conn.sendall(b"\0")
                time.sleep(0.5)
        except OSError:
            return

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


@pytest.mark.timeout(300)
def test_vq_run_gives_a_stalled_source_an_error_record(tmp_path, capsys):
    good = make_clip(tmp_path / "good.mp4", n=40, fps=10)
    other = make_clip(tmp_path / "other.mp4", n=30, fps=10)
    server, port = _slow_loris_server()
    stalled = f"http://127.0.0.1:{port}/upload.mp4"
    try:
        start = time.monotonic()
        code = main(
            [
                "run",
                str(good),
                stalled,
                str(other),
                "--library",
                str(tmp_path / "lib"),
                "--create",
                "--timeout",
                "4",
                "--json",
            ]
        )
        elapsed = time.monotonic() - start
    finally:
        server.close()
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and elapsed < 120
    assert [r["status"] for r in records] == ["ok", "error", "ok"]
    assert records[1]["path"] == stalled and "--timeout" in records[1]["error"]
    assert "\n" not in records[1]["error"]
    assert records[0]["ingested"] and records[2]["ingested"]  # the batch went on, library intact
    assert main(["run", str(good), "--library", str(tmp_path / "lib"), "--timeout", "-1"]) == 2
