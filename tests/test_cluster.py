"""Sharded libraries on a real local Ray cluster (`vq index shard`, `vq run --cluster`) and
batch ingest with Ray Data (`vq index backfill`), each checked against the single-process
library: same top k, same copies reported, same vectors stored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vq.cli.app import main
from vq.index.library import Library, LibraryConfig
from vq.index.shards import Shard, make_template, merge_shortlists, top_k_exact

from helpers import run_json

ray = pytest.importorskip("ray", reason="needs the 'cluster' extra (Ray)")

DIM = 64


def synthetic_library(root, videos: int = 40, frames: int = 100, flat_limit: int = 2000) -> Library:
    """Videos of frames around a centre each (like a copy library's), past `flat_limit` so
    the index is IVF-PQ; one removed."""
    rng = np.random.default_rng(0)
    lib = Library.create(root, LibraryConfig(model="m", model_sha256="x", dim=DIM, flat_limit=flat_limit))
    for v in range(videos):
        x = rng.standard_normal(DIM) + 0.8 * rng.standard_normal((frames, DIM))
        lib.add_video(f"v{v}", x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(frames) * 2.0)
    lib.remove_video("v3")
    return lib


def queries(n: int = 64, seed: int = 1) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@pytest.mark.parametrize("flat_limit", [2000, 1_000_000])  # IVF-PQ, Flat
def test_shards_merged_give_the_single_index_top_k(tmp_path, flat_limit):
    """The merge is exact: shards built from the library's template, searched on their
    own and merged, return what the one index returns (removed video skipped)."""
    with synthetic_library(tmp_path / "lib", flat_limit=flat_limit) as lib:
        make_template(lib.trained_index(), lib.root)
        q = queries()
        want = max(10, lib.rerank_for(lib.total)) + 32
        shards = [Shard(lib.root, s, 3, lib.config.nprobe) for s in range(3)]
        gone = np.array(sorted(lib._removed))
        parts = [s.search(q, want, lib.total, gone) for s in shards]
        scores, ids = top_k_exact(merge_shortlists(parts, want), 10)
        ref_scores, ref_ids = lib.search(q, 10)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-6)
        removed = next(v.first_vector for v in lib.videos.values() if v.name == "v3")
        assert not np.isin(ids, np.arange(removed, removed + 100)).any()
        assert sum(s.refresh()["vectors"] for s in shards) == lib.total

        # A shard that has read past its router (another writer's commits) answers as
        # the router's view: vector ids below what the router holds.
        writer_view = lib.total
        lib.add_video("later", q[:5], np.arange(5.0))
        for s in shards:
            s.refresh()
        parts = [s.search(q[:5], want, writer_view, gone) for s in shards]
        _, ids = top_k_exact(merge_shortlists(parts, want), 1)
        assert (ids < writer_view).all()


def test_shards_with_fewer_vectors_than_the_shortlist_or_none(tmp_path):
    """4 videos of 50 vectors over 5 shards (one empty, one video removed): the shortlist is
    longer than any shard, and the merge still gives the single library's top k, padded."""
    with synthetic_library(tmp_path / "lib", videos=4, frames=50, flat_limit=10_000) as lib:
        make_template(lib.trained_index(), lib.root)
        q = queries(8)
        want = max(200, lib.rerank_for(lib.total)) + 32  # as Library.search computes it for k=200
        shards = [Shard(lib.root, s, 5, lib.config.nprobe) for s in range(5)]
        assert sorted(s.refresh()["vectors"] for s in shards) == [0, 50, 50, 50, 50]
        removed = np.array(sorted(lib._removed))
        parts = [s.search(q, want, lib.total, removed) for s in shards]
        scores, ids = top_k_exact(merge_shortlists(parts, want), 200)
        _, ref_ids = lib.search(q, 200)
        np.testing.assert_array_equal(ids, ref_ids)
        assert (ids[:, 150:] == -1).all() and np.isneginf(scores[:, 150:]).all()  # 150 live vectors


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray instance for this module (the library's `local` address joins it)."""
    from vq.index.cluster import connect, disconnect

    connect("local")
    yield
    disconnect()


def test_sharded_library_on_ray_matches_the_single_process_library(tmp_path, local_ray):
    """4 shards x 2 replicas: same top k and video means; a writer's new video and a
    removal reach the shards; a dead replica is stepped over."""
    from vq.index.sharding import shard_library

    root = tmp_path / "lib"
    synthetic_library(root).close()
    config = shard_library(root, shards=4, replicas=2, address="local")
    assert (config.shards, config.replicas) == (4, 2)
    q = queries()
    with Library.open(root) as single:
        ref = single.search(q, 10)
        ref_means = single.video_means()
    with Library.open(root, write=True, cluster="local") as sharded:
        stats = sharded.stats()
        assert stats["searched_by"] == "shards"
        assert stats["cluster"]["template"] == "IVF256,PQ32" and not stats["cluster"]["reshard_advised"]
        for _ in range(3):  # round robin over replicas: every one answers the same
            ids = sharded.search(q, 10)[1]
            np.testing.assert_array_equal(ids, ref[1])
        means = sharded.video_means()
        np.testing.assert_array_equal(means[0], ref_means[0])
        np.testing.assert_allclose(means[1], ref_means[1], atol=1e-6)

        # The writer commits; every replica catches up before the next search.
        new = q[:5] * 1.0
        added = sharded.add_video("fresh", new, np.arange(5.0))
        found = sharded.search(q[:5], 1)[1][:, 0]
        np.testing.assert_array_equal(found, np.arange(added.first_vector, added.first_vector + 5))
        x, _ = sharded.vectors_of(added.id)  # read from the segment file
        np.testing.assert_allclose(x, new, atol=1e-3)
        assert sharded.remove_video("fresh")
        assert not np.isin(sharded.search(q[:5], 10)[1], found).any()
        again = sharded.add_video("fresh", q[5:10], np.arange(5.0))  # the name re-used
        assert sharded.remove_video("v7")  # a removal after it: the shards re-read the live set
        ids = sharded.search(q[:10], 1)[1][:, 0]
        assert not np.isin(ids[:5], found).any()
        np.testing.assert_array_equal(ids[5:], np.arange(again.first_vector, again.first_vector + 5))

        # After all that, still the single-process library's answer (it reads the same
        # catalog); then one replica of every shard dies, and the other one answers.
        with Library.open(root) as now:
            expected = now.search(q, 10)[1]
        np.testing.assert_array_equal(sharded.search(q, 10)[1], expected)
        for row in sharded._remote.replicas:
            ray.kill(row[0])
        for _ in range(2):  # both turns of the round robin
            np.testing.assert_array_equal(sharded.search(q, 10)[1], expected)


def test_cluster_on_an_unsharded_library_is_one_line(tmp_path, capsys):
    lib = tmp_path / "lib"
    synthetic_library(lib, videos=2, frames=10).close()
    assert main(["index", "query", str(tmp_path / "x.mp4"), "-l", str(lib), "--cluster", "local"]) != 0
    err = capsys.readouterr().err
    assert "none of the libraries is sharded" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def clips(shared_data):
    videos = shared_data / "videos"
    return [videos / "big_buck_bunny_0_30.webm", videos / "example2.mp4", videos / "example3.mp4"]


def copies(records: list[dict]) -> list[tuple]:
    return [
        (
            r["path"],
            m["ref_id"],
            round(m["score"], 5),
            [(s["query_start"], s["ref_start"]) for s in m["segments"]],
        )
        for r in records
        for m in r["matches"]
    ]


def test_vq_run_on_shards_reports_the_same_copies(clips, tmp_path, capsys, local_ray):
    """The README's job into a new library, single-process and through 2 x 2 shards (the
    library's and its default companion's: eight actors on a 2-core machine)."""
    from vq.index.library import companions_of, read_config

    single, sharded = tmp_path / "single", tmp_path / "sharded"
    args = ["--timeout", "0", "--json"]
    code, expected = run_json(
        capsys, ["run", *map(str, clips), "-l", str(single), "--create", "--fps", "2", *args]
    )
    assert code == 0 and any(r["matches"] for r in expected)
    assert main(["index", "create", str(sharded), "--fps", "2"]) == 0
    assert (
        main(["index", "shard", str(sharded), "--shards", "2", "--replicas", "2", "--address", "local"]) == 0
    )
    (companion,) = companions_of(sharded)  # sharded alike: the router holds no vectors of its own
    assert read_config(companion).cluster is not None
    capsys.readouterr()
    code, got = run_json(capsys, ["run", *map(str, clips), "-l", str(sharded), "--cluster", "local", *args])
    assert code == 0
    assert copies(got) == copies(expected)


def test_backfill_stores_what_sequential_ingest_stores(clips, tmp_path, capsys, local_ray):
    """Ray Data backfill: the same vectors and times per video as `vq index add`, in the
    library and its companion; a bad file is an error record and the rest commit; a
    re-run skips what is there."""
    from vq.index.library import companions_of

    sequential, backfilled = tmp_path / "sequential", tmp_path / "backfilled"
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(clips[0].read_bytes()[:3000])
    for lib in (sequential, backfilled):
        assert main(["index", "create", str(lib), "--fps", "2", "--companion", "vq-embed-luma"]) == 0
    assert main(["index", "add", *map(str, clips), "-l", str(sequential), "--timeout", "0"]) == 0
    capsys.readouterr()
    inputs = [*map(str, clips), str(corrupt)]
    code, records = run_json(
        capsys, ["index", "backfill", *inputs, "-l", str(backfilled), "--workers", "2", "--json"]
    )
    assert code == 1  # the corrupt file
    assert [r["status"] for r in records] == ["ok", "ok", "ok", "error"]
    assert [r["path"] for r in records] == inputs  # committed in input order
    pairs = [
        (sequential, backfilled),
        *zip(companions_of(sequential), companions_of(backfilled), strict=True),
    ]
    assert len(pairs) == 2
    for one, two in pairs:
        with Library.open(one) as a, Library.open(two) as b:
            assert len(b.live_videos()) == len(clips)
            for video in a.live_videos():
                other = b.video_by_name(video.name)
                for x, y in zip(a.vectors_of(video.id), b.vectors_of(other.id), strict=True):
                    np.testing.assert_array_equal(x, y)
    code, records = run_json(capsys, ["index", "backfill", *map(str, clips), "-l", str(backfilled), "--json"])
    assert code == 0 and records == []  # resumable: nothing left to do


def test_shards_on_a_shared_cluster_outlive_a_run_and_are_released(clips, tmp_path):
    """On a cluster the run did not start (`ray start --head`), the shards are named
    detached actors: a second `vq run --cluster auto` finds them, `--release` ends them."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    import tempfile

    short = tempfile.mkdtemp(prefix="vqray", dir="/tmp")  # Ray's socket paths must stay < 108 bytes
    env = {**os.environ, "RAY_TMPDIR": short}
    # `--block` keeps the head's processes under this one: stopping it stops that head only
    # (`ray stop` would stop every Ray instance here, this test run's own included).
    head = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--disable-usage-stats",
            "--include-dashboard=false",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import time

        deadline = time.monotonic() + 120
        while subprocess.run([ray_bin, "status"], env=env, capture_output=True, check=False).returncode:
            assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(1)
        lib = tmp_path / "lib"

        def vq(*args: str) -> subprocess.CompletedProcess:
            cmd = [sys.executable, "-m", "vq.cli.app", *args]
            return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=300)

        assert vq("index", "create", str(lib), "--fps", "2").returncode == 0
        assert vq("index", "shard", str(lib), "--shards", "2", "--replicas", "1").returncode == 0
        first = vq("run", str(clips[0]), str(clips[1]), "-l", str(lib), "--cluster", "auto", "--json")
        assert first.returncode == 0, first.stderr
        second = vq("index", "query", str(clips[1]), "-l", str(lib), "--cluster", "auto", "--json")
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout.splitlines()[-1])["matches"]  # the shards held the first run's videos
        released = vq("index", "shard", str(lib), "--release", "--json")
        assert json.loads(released.stdout)["released"] == 4, released.stderr  # and the companion's 2
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        shutil.rmtree(short, ignore_errors=True)


def test_vq_serve_searches_a_sharded_library(clips, tmp_path, local_ray):
    """`vq serve --cluster`: uploads commit and reach the shards; a query is matched by them."""
    fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed")
    del fastapi
    from fastapi.testclient import TestClient

    from vq.index.sharding import shard_library
    from vq.pipelines.library import create_library
    from vq.serve.app import ServeSettings, create_app

    lib = tmp_path / "lib"
    create_library(lib, None, fps=2)
    shard_library(lib, shards=2, replicas=1, address="local")
    token = "test-token-0123456789abcdef"
    auth = {"Authorization": f"Bearer {token}"}
    settings = ServeSettings(
        libraries=[lib], state=tmp_path / "state", token=token, root=clips[0].parent, cluster="local"
    )
    with TestClient(create_app(settings)) as client:
        upload = client.post("/v1/videos?wait=120", data={"path": clips[0].name}, headers=auth).json()
        assert upload["record"]["ingested"]
        query = client.post("/v1/query?wait=120", data={"path": clips[1].name}, headers=auth).json()
        assert [m["ref_id"] for m in query["record"]["matches"]] == [upload["id"]]


def test_an_address_nothing_answers_at_is_one_line_at_once(tmp_path):
    """Ray would retry a dead address for minutes; vq says so in one line, at once."""
    import subprocess
    import sys

    from vq.index.sharding import shard_library

    lib = tmp_path / "lib"
    synthetic_library(lib, videos=2, frames=10).close()
    shard_library(lib, shards=2, replicas=1, address="auto")
    for address, why in (("127.0.0.1:1", "nothing answers"), ("nonsense", "expected auto, local")):
        cmd = [sys.executable, "-m", "vq.cli.app", "index", "query", str(tmp_path / "x.mp4"), "-l", str(lib)]
        done = subprocess.run(
            [*cmd, "--cluster", address, "--timeout", "0"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 7 and why in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
