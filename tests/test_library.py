"""vq.index.library: search, removal, index growth, crash safety and one writer at a time."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vq.index.library import Library, LibraryConfig, LibraryError, open_library

DIM = 32


def config(**kw) -> LibraryConfig:
    return LibraryConfig(model="test-model", model_sha256="0" * 64, dim=DIM, **kw)


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_add_search_remove_and_reopen(tmp_path):
    root = tmp_path / "lib"
    with Library.create(root, config()) as lib:
        a, b = unit(20, 1), unit(30, 2)
        lib.add_video(
            "a", a, np.arange(20) * 2.0, path="/v/a.mp4", duration=40.0, metadata={"uploader": "ann"}
        )
        lib.add_video("b", b, np.arange(30) * 2.0)
        scores, ids = lib.search(b[:3], k=2)
        assert list(lib.video_of(ids[:, 0])) == [lib.video_by_name("b").id] * 3
        np.testing.assert_allclose(scores[:, 0], 1.0, atol=2e-3)  # float16 storage
        with pytest.raises(LibraryError, match="already in the library"):
            lib.add_video("a", a, np.arange(20) * 2.0)
        assert lib.remove_video("b")
        _, ids = lib.search(b[:3], k=2)
        assert lib.video_by_name("b") is None and not np.isin(lib.video_of(ids[ids >= 0]), [2]).any()
    with open_library(root) as lib:  # reopened read-only: same state, index rebuilt or loaded
        stats = lib.stats()
        assert (stats["videos"], stats["removed"], stats["vectors"]) == (1, 1, 50)
        vecs, _times = lib.vectors_of(lib.video_by_name("a").id)
        np.testing.assert_allclose(vecs, a, atol=2e-3)
        assert lib.video_by_name("a").metadata == {"uploader": "ann"}
        with pytest.raises(LibraryError, match="read-only"):
            lib.add_video("c", a, np.zeros(20))


def test_index_moves_from_flat_to_ivf_pq_and_keeps_finding(tmp_path):
    root = tmp_path / "lib"
    with Library.create(root, config(flat_limit=500, nprobe=16, rerank=50)) as lib:
        for i in range(6):
            lib.add_video(f"v{i}", unit(200, 10 + i), np.arange(200) * 2.0)
        assert lib.factory_for(lib.total).startswith("IVF") and "PQ" in lib.factory_for(lib.total)
        probe = unit(200, 13)[:20]
        _, ids = lib.search(probe, k=1)
        assert (lib.video_of(ids[:, 0]) == lib.video_by_name("v3").id).mean() >= 0.9  # re-ranked
    with open_library(root) as lib:
        assert lib.meta("index_factory").startswith("IVF")
        _, ids = lib.search(probe, k=1)
        assert (lib.video_of(ids[:, 0]) == lib.video_by_name("v3").id).mean() >= 0.9


def test_bad_inputs(tmp_path):
    with pytest.raises(LibraryError, match="not a library"):
        Library.open(tmp_path)
    root = tmp_path / "lib"
    with (
        Library.create(root, config()) as lib,
        pytest.raises(LibraryError, match=r"vectors must be \(n, 32\)"),
    ):
        lib.add_video("x", np.zeros((3, 8)), np.zeros(3))
    with pytest.raises(LibraryError, match="already holds a library"):
        Library.create(root, config())
    (root / "library.toml").write_text("name = [broken")
    with pytest.raises(LibraryError, match="malformed"):
        Library.open(root)


WRITER = """
import sys, time, numpy as np
from vq.index.library import Library
lib = Library.open(sys.argv[1], write=True, lock_timeout=float(sys.argv[2]))
print("locked", flush=True)
if sys.argv[3] == "hold":
    time.sleep(30)
else:
    rng = np.random.default_rng(0)
    for i in range(10_000):
        x = rng.standard_normal((50, 32)).astype(np.float32)
        lib.add_video(f"w{i}", x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(50) * 2.0)
        print("added", i, flush=True)
"""


def test_one_writer_at_a_time(tmp_path):
    root = tmp_path / "lib"
    Library.create(root, config()).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), "5", "hold"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    second = subprocess.run(
        [sys.executable, "-c", WRITER, str(root), "1", "hold"], capture_output=True, text=True, timeout=60
    )
    holder.kill()
    holder.wait()
    assert second.returncode != 0 and "another process is writing" in second.stderr
    with open_library(root) as lib:  # readers are never blocked
        assert lib.stats()["videos"] == 0


def test_kill_9_mid_ingest_leaves_every_committed_video(tmp_path):
    root = tmp_path / "lib"
    Library.create(root, config()).close()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), "5", "ingest"], stdout=subprocess.PIPE, text=True
    )
    committed = -1
    deadline = time.monotonic() + 60
    while committed < 20 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if line.startswith("added"):
            committed = int(line.split()[1])
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with open_library(root, write=True) as lib:  # the next writer opens, sweeps, goes on
        names = {v.name for v in lib.live_videos()}
        assert {f"w{i}" for i in range(committed + 1)} <= names
        for v in lib.live_videos():
            vecs, _ = lib.vectors_of(v.id)
            assert vecs.shape == (50, 32)
        _, ids = lib.search(lib.vectors_of(lib.video_by_name("w3").id)[0][:1], k=1)
        assert lib.video_of(ids[:, 0])[0] == lib.video_by_name("w3").id
        segments = {p.name for p in (root / "segments").iterdir()}
        assert segments == {f"{v.first_vector}.npz" for v in lib.videos.values()}  # no orphans
        lib.add_video("after-crash", unit(5, 99), np.arange(5) * 2.0)


def test_gpu_search_mirrors_the_cpu_index(tmp_path):
    """Where faiss sees a GPU, search runs there and returns what the CPU index returns;
    elsewhere use_gpu() says no and nothing changes."""
    from conftest import gpu_available

    with Library.create(tmp_path / "lib", config()) as lib:
        for i in range(4):
            lib.add_video(f"v{i}", unit(50, i), np.arange(50) * 2.0)
        probe = lib.vectors_of(lib.video_by_name("v2").id)[0][:5]
        cpu = lib.search(probe, k=3)
        on_gpu = lib.use_gpu()
        if not gpu_available():
            assert on_gpu is False
            return
        if not on_gpu:
            pytest.skip("a GPU is present but this faiss build has no GPU support (install vq[gpu])")
        gpu = lib.search(probe, k=3)
        np.testing.assert_array_equal(cpu[1], gpu[1])
        lib.add_video("late", unit(20, 9), np.arange(20) * 2.0)  # the mirror takes new vectors
        _, ids = lib.search(lib.vectors_of(lib.video_by_name("late").id)[0][:1], k=1)
        assert lib.video_of(ids[:, 0])[0] == lib.video_by_name("late").id


def test_a_video_with_no_vectors_is_catalogued_without_a_segment(tmp_path):
    """An all-black upload has no informative frames: it is recorded (it was seen) but
    owns no vectors, and the next video's segment does not collide with it."""
    root = tmp_path / "lib"
    with Library.create(root, config()) as lib:
        lib.add_video("a", unit(5, 1), np.arange(5) * 2.0)
        lib.add_video("blank", np.zeros((0, 32)), np.zeros(0))
        lib.add_video("b", unit(7, 2), np.arange(7) * 2.0)
    with open_library(root) as lib:
        assert {v.name for v in lib.live_videos()} == {"a", "blank", "b"}
        b = lib.video_by_name("b")
        assert lib.vectors_of(b.id)[0].shape == (7, 32)
        _, ids = lib.search(lib.vectors_of(b.id)[0][:1], k=1)
        assert lib.video_of(ids[:, 0])[0] == b.id


def test_coarse_stages_find_the_copied_video(tmp_path):
    """Both coarse modes put the source video first: top-k voting (with two views of the
    query frames counting once per frame) and mean-vector recall (cached means)."""
    from vq.match.coarse import mean_vector, vote

    def frames_of_one_video(seed: int) -> np.ndarray:  # frames share the video's look
        x = unit(1, 100 + seed) + 0.8 * unit(40, seed)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    with Library.create(tmp_path / "lib", config()) as lib:
        for i in range(6):
            lib.add_video(f"v{i}", frames_of_one_video(i), np.arange(40) * 2.0)
        target = lib.video_by_name("v4").id
        src = lib.vectors_of(target)[0][10:25]
        noisy = src + np.random.default_rng(0).normal(0, 0.05, src.shape)
        query = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
        ranked = vote(lib, query, k=5, top_n=3)
        assert ranked[0][0] == target and ranked[0][1] == len(query)
        two_views = vote(lib, [query, query], k=5, top_n=3)
        assert two_views[0] == (target, len(query))  # a frame votes once, whichever view
        assert mean_vector(lib, query, threshold=0.0, top_n=3)[0][0] == target
        lib.remove_video("v4")  # the cache follows the catalog
        assert all(vid != target for vid, _ in mean_vector(lib, query, threshold=-1.0, top_n=10))


def test_look_alike_references_do_not_crowd_a_short_copy_out_of_the_vote(tmp_path):
    """Five references cut from one fixed camera each take a vote from every frame of that
    camera in the query; a short copy of another video spliced between two such stretches
    polls below all five, but each of its frames is nearest to it, so it is still aligned
    (and only then: with `min_nearest=0` it is lost)."""
    from vq.match.coarse import vote

    rng = np.random.default_rng(3)
    camera = unit(1, 7)[0]  # the fixed camera's look, shared by its five references

    def clip(look: np.ndarray, n: int, spread: float) -> np.ndarray:
        x = look + spread * rng.normal(size=(n, look.size))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    with Library.create(tmp_path / "lib", config()) as lib:
        for i in range(5):
            lib.add_video(f"camera@{i}", clip(camera, 12, 0.02), np.arange(12) * 0.5)
        lib.add_video("photo", clip(unit(1, 8)[0], 12, 0.02), np.arange(12) * 0.5)
        photo = lib.video_by_name("photo").id
        copy = lib.vectors_of(photo)[0][3:9]
        query = np.concatenate([clip(camera, 8, 0.02), copy, clip(camera, 8, 0.02)])
        by_votes = vote(lib, query, k=10, top_n=5, min_nearest=0)
        assert photo not in [vid for vid, _ in by_votes]  # crowded out
        ranked = vote(lib, query, k=10, top_n=5)
        assert [vid for vid, _ in ranked][:5] == [vid for vid, _ in by_votes]
        assert (photo, len(copy)) in ranked


def test_a_writer_sweeps_temporary_files_a_killed_writer_left(tmp_path):
    """kill -9 during a segment or index write leaves `.NAME.XXXX.tmp` beside it; the next
    writer removes them (readers never look at them)."""
    root = tmp_path / "lib"
    Library.create(root, config()).close()
    (root / "segments").mkdir(exist_ok=True)
    stale = [root / "segments" / ".0.npz.abc123.tmp", root / ".index.faiss.def456.tmp"]
    for f in stale:
        f.write_bytes(b"half")
    with open_library(root) as lib:  # a reader leaves them alone
        assert lib.stats()["videos"] == 0
    assert all(f.exists() for f in stale)
    with open_library(root, write=True):
        pass
    assert not any(f.exists() for f in stale)


def test_searches_on_other_threads_while_the_writer_ingests(tmp_path):
    """`vq serve` searches on several threads while its writer ingests, crossing the
    Flat -> IVF-PQ rebuild: no search fails, and every video committed before a search
    began is found by it."""
    import threading

    with Library.create(tmp_path / "lib", config(flat_limit=600, nprobe=128, rerank=4000)) as lib:
        videos = [unit(40, 100 + i) for i in range(30)]
        committed: list[int] = []  # videos whose add_video returned
        errors: list[BaseException] = []
        done = threading.Event()

        def search_forever(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                while not done.is_set():
                    time.sleep(0.01)  # leave the writer most of the GIL: the writes are what is slow
                    known = len(committed)
                    if not known:
                        continue
                    i = int(rng.integers(known))
                    _, ids = lib.search(videos[i][:4], k=1)
                    found = lib.video_of(ids[:, 0])
                    assert (found == committed[i]).all(), (i, found, committed[i])
            except BaseException as e:
                errors.append(e)

        readers = [threading.Thread(target=search_forever, args=(s,)) for s in range(2)]
        for t in readers:
            t.start()
        for i, vectors in enumerate(videos):
            committed.append(lib.add_video(f"v{i}", vectors, np.arange(40.0)).id)
        done.set()
        for t in readers:
            t.join()
        assert not errors, errors[0]
        assert lib.stats()["index"].startswith("IVF")


def test_a_reader_refreshes_to_what_the_writer_committed(tmp_path):
    root = tmp_path / "lib"
    with Library.create(root, config()) as writer:
        a, b = unit(20, 1), unit(25, 2)
        writer.add_video("a", a, np.arange(20.0))
        reader = Library.open(root)
        try:
            writer.add_video("b", b, np.arange(25.0))
            writer.add_video("blank", np.zeros((0, DIM), np.float32), np.zeros(0))
            _, ids = reader.search(b[:2], k=1)
            assert not np.isin(reader.video_of(ids[ids >= 0]), [writer.video_by_name("b").id]).any()
            assert reader.refresh()
            _, ids = reader.search(b[:2], k=1)
            assert list(reader.video_of(ids[:, 0])) == [writer.video_by_name("b").id] * 2
            assert reader.video_by_name("blank") is not None
            assert not reader.refresh()  # nothing new
            writer.remove_video("a")
            writer.add_video("a", a, np.arange(20.0))  # the name again: the removed row is gone
            assert reader.refresh()
            assert [v.name for v in reader.live_videos()].count("a") == 1
            _, ids = reader.search(a[:2], k=1)
            assert list(reader.video_of(ids[:, 0])) == [writer.video_by_name("a").id] * 2
        finally:
            reader.close()


def test_audio_fingerprints_are_stored_matched_refreshed_removed_and_swept(tmp_path):
    """A video's sound is stored with it (atomically, in the same commit), found by
    `audio_search`, seen by a reader after `refresh`, hidden when removed, and a file a
    killed ingest left behind is swept."""
    from vq.audio.landmarks import fingerprint

    rng = np.random.default_rng(0)
    sound = np.repeat(rng.standard_normal(160), 1000).astype(np.float32) * 0.3  # 10 s of steps
    sound += 0.05 * rng.standard_normal(len(sound)).astype(np.float32)
    fp = fingerprint(sound)
    query = fingerprint(sound[16000 * 2 : 16000 * 8])
    root = tmp_path / "lib"
    with Library.create(root, config()) as writer:
        reader = Library.open(root)
        try:
            writer.add_video("a", unit(5, 1), np.arange(5.0), audio=fp)
            writer.add_video("b", unit(5, 2), np.arange(5.0))  # no sound
            (hit,) = writer.audio_search(query, 20, 0.03)
            assert hit.video == writer.video_by_name("a").id and abs(hit.offset - 2.0) < 0.05
            assert reader.audio_search(query, 20, 0.03) == []
            assert reader.refresh() and len(reader.audio_search(query, 20, 0.03)) == 1
            writer.remove_video("a")
            assert writer.audio_search(query, 20, 0.03) == []
        finally:
            reader.close()
    (root / "segments" / "audio-orphan.npz").write_bytes(b"left by a killed ingest")
    with open_library(root, write=True) as lib:
        assert not (root / "segments" / "audio-orphan.npz").exists()
        assert lib.stats()["audio_hashes"] == len(fp.hashes)  # kept until compacted, not searched


def test_a_name_removed_and_ingested_again_is_found_by_the_writer_and_a_reader(tmp_path):
    """Re-ingesting the last video's name after removing it must not re-use its id: the
    writer and every reader keep the old id as removed, and would hide the new video."""
    root = tmp_path / "lib"
    old, new = unit(10, 1), unit(10, 2)
    with Library.create(root, config()) as lib:
        lib.add_video("a", unit(10, 3), np.arange(10.0))
        lib.add_video("b", old, np.arange(10.0))
        reader = Library.open(root)
        assert lib.remove_video("b")
        again = lib.add_video("b", new, np.arange(10.0))
        assert again.id != lib.video_by_name("a").id + 1  # not the removed row's id
        for view in (lib, reader):
            view.refresh()
            _, ids = view.search(new, k=1)
            assert list(view.video_of(ids[:, 0])) == [again.id] * 10
            _, ids = view.search(old, k=5)
            assert not np.isin(ids, np.arange(10, 20)).any()  # the removed vectors stay hidden
        reader.close()


def test_the_index_policy_reaches_a_million_lists_with_an_hnsw_quantizer():
    import faiss

    from vq.index.library import index_factory_for, rerank_depth, training_size

    assert index_factory_for(100_000, 256, 200_000) == "Flat"
    assert index_factory_for(10_000_000, 256, 200_000) == "IVF16384,PQ32"
    huge = index_factory_for(10**9, 256, 200_000)
    assert huge == "IVF131072_HNSW32,PQ32"  # a flat quantizer would cost 131072 dots a vector
    assert index_factory_for(10**12, 256, 200_000).startswith("IVF1048576_HNSW32")
    assert index_factory_for(10_000_000, 256, 200_000, binary=True) == "BIVF16384"
    index = faiss.index_factory(256, "IVF65536_HNSW32,PQ32", faiss.METRIC_INNER_PRODUCT)
    assert faiss.extract_index_ivf(index).nlist == 65536  # faiss parses what the policy writes
    assert training_size(huge, 10**9) == 64 * 131072 and training_size("BIVF1024", 5000) == 5000
    assert rerank_depth(10_000) == 100 and (rerank_depth(10**6), rerank_depth(10**7)) == (200, 356)


def test_a_weak_landmark_lead_is_confirmed_by_the_stored_learned_vectors(tmp_path):
    """A reference's learned window vectors are stored with its landmarks (and seen by a
    reader); a lead of a few agreeing landmarks becomes a sound match only where the
    query's vectors match the stored ones at the landmarks' offset."""
    from vq.audio.landmarks import Fingerprint
    from vq.pipelines.dedup import confirmed_leads
    from vq.stages.audio_fingerprint import WINDOW_HOP

    rng = np.random.default_rng(0)
    hashes = np.sort(rng.choice(1 << 30, 400, replace=False)).astype(np.int64)
    times = rng.integers(0, 1875, 400).astype(np.int32)  # 30 s of 16 ms frames
    ref = Fingerprint(hashes, times[np.argsort(hashes, kind="stable")], 30.0)
    ref_vectors = rng.standard_normal((59, 128)).astype(np.float32)
    ref_vectors /= np.linalg.norm(ref_vectors, axis=1, keepdims=True)
    # The query: 8 of the reference's hashes, 10 s (625 frames) earlier, among others.
    pick = np.flatnonzero(ref.times >= 625)[:8]
    q_hashes = np.concatenate([ref.hashes[pick], rng.choice(1 << 30, 200).astype(np.int64) + (1 << 31)])
    q_times = np.concatenate([ref.times[pick] - 625, rng.integers(0, 500, 200)]).astype(np.int32)
    order = np.argsort(q_hashes, kind="stable")
    query = Fingerprint(q_hashes[order], q_times[order], 8.0)
    same = ref_vectors[int(10 / WINDOW_HOP) : int(10 / WINDOW_HOP) + 15]  # the same 8 s, 10 s in
    root = tmp_path / "lib"
    with Library.create(root, config()) as lib:
        vid = lib.add_video(
            "a", unit(5, 1), np.arange(5.0), audio=ref, audio_vectors=ref_vectors, audio_model="sha-1"
        ).id
        assert lib.audio_search(query, 20, 0.03) == []  # too few to decide alone
        (hit,) = confirmed_leads(lib, query, same, set())
        assert hit.video == vid and hit.learned == pytest.approx(1.0, abs=1e-3)
        assert abs(hit.offset - 10.0) < 0.05 and hit.to_json()["learned"] == pytest.approx(1.0, abs=1e-3)
        other = rng.standard_normal((15, 128)).astype(np.float32)
        other /= np.linalg.norm(other, axis=1, keepdims=True)
        assert confirmed_leads(lib, query, other, set()) == []  # the vectors disagree
        shifted = ref_vectors[:15]  # they agree, but 10 s from where the landmarks put it
        assert confirmed_leads(lib, query, shifted, set()) == []
        assert confirmed_leads(lib, query, same, {vid}) == []  # already matched
        assert confirmed_leads(lib, query, same[:, :64], set()) == []  # another model's vectors
        assert len(confirmed_leads(lib, query, same, set(), "sha-1")) == 1
        assert confirmed_leads(lib, query, same, set(), "sha-2") == []  # recorded as another model's
        lib.add_video("b", unit(5, 2), np.arange(5.0), audio=ref)  # stored without vectors
    with Library.open(root) as reader:
        np.testing.assert_allclose(reader.audio_vectors(vid), ref_vectors, atol=1e-3)
        assert reader.audio_vectors(reader.video_by_name("b").id) is None


def test_a_whole_overlap_follows_the_hits_speed():
    from vq.index.audio import AudioHit
    from vq.pipelines.dedup import whole_overlap

    seg = whole_overlap(AudioHit(1, 9, 0.1, 10.0, [], speed=1.05), 30.0)
    assert (seg.query_start, seg.query_end, seg.ref_start, seg.ref_end) == pytest.approx((0, 30, 10, 41.5))
    seg = whole_overlap(AudioHit(1, 9, 0.1, -4.2, [], speed=1.05), 30.0)  # the reference starts 4 s in
    assert seg.query_start == pytest.approx(4.0) and seg.ref_start == pytest.approx(0.0)


def test_a_damaged_segment_file_is_one_library_error_line(tmp_path):
    from vq.index.store import LibraryError, read_audio, read_audio_vectors, read_segment

    truncated = tmp_path / "seg.npz"
    np.savez(truncated, vectors=np.zeros((3, 4), np.float16), times=np.arange(3.0))
    truncated.write_bytes(truncated.read_bytes()[:40])  # a zip cut short
    for read in (lambda p: read_segment(p, 3), lambda p: read_audio(p, 3), read_audio_vectors):
        with pytest.raises(LibraryError, match="unreadable") as err:
            read(truncated)
        assert "\n" not in str(err.value)
    np.savez(tmp_path / "old.npz", hashes=np.arange(3), times=np.arange(3))
    assert read_audio_vectors(tmp_path / "old.npz") is None  # stored before learned vectors
    with pytest.raises(LibraryError, match="unreadable"):
        read_segment(tmp_path / "old.npz", 3)  # a required array missing


def test_a_new_library_takes_the_look_alike_cut_of_its_rate(tmp_path):
    """vq-embed's card gives `min_motion` per library rate (the test sees more reference
    frames at 2 fps, and its best cut moves up); `vq index create` picks the nearest rate."""
    from vq.index.library import read_config
    from vq.models import load_model
    from vq.pipelines.library import create_library

    table = load_model("vq-embed").card.extra["matching"]["min_motion_at_fps"]
    assert table == {"1": 0.3, "2": 0.4}
    for fps, cut in ((2.0, 0.4), (1.0, 0.3), (0.5, 0.3), (4.0, 0.4), (1.5, 0.3)):
        lib = tmp_path / f"lib-{fps:g}"
        create_library(lib, None, fps=fps)
        assert read_config(lib).thresholds.min_motion == cut, fps
    # A model whose card gives one cut uses it at every rate.
    create_library(tmp_path / "luma", "vq-embed-luma", fps=1.0)
    assert read_config(tmp_path / "luma").thresholds.min_motion == 0.3
    # The moving-query test over still references comes from the card too; a library made
    # before it (no such key in library.toml) has it off.
    assert read_config(lib).thresholds.moving_query == 0.2
    from vq.match.motion import NO_MOVING_QUERY
    from vq.match.thresholds import Thresholds

    assert Thresholds.from_mapping({"min_motion": 0.3}).moving_query == NO_MOVING_QUERY
