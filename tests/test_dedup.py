"""The copy-detection job end to end with the shipped embedding: `vq index`, `vq run`,
`vq index query`, bad inputs in a batch, two writers, and `vq eval dedup` on a small set."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from vq import synth as E
from vq.cli.app import main
from vq.index.library import open_library

from helpers import run_json


@pytest.fixture(scope="module")
def clips(shared_data, tmp_path_factory):
    """An original (12 s of Big Buck Bunny), an edited partial copy of it, an unrelated clip,
    and a corrupt file."""
    folder = tmp_path_factory.mktemp("clips")
    src = shared_data / "videos" / "big_buck_bunny_0_30.webm"
    original = folder / "original.mp4"
    E.render(src, original, [E.Trim(12.0, 24.0)], fps=10, size=(320, 180), audio=False)
    copy = folder / "copy.mp4"
    edits = [E.Border(30, 30, 0, 0, color=(0, 0, 0)), E.Watermark("@reposter", "br", 0.8)]
    E.splice(
        [(shared_data / "videos" / "chaplin.mp4", 0.0, 3.0), (original, 2.0, 9.0)],
        copy,
        edits,
        fps=10,
        size=(320, 180),
    )
    other = folder / "other.mp4"
    E.render(shared_data / "videos" / "chaplin.mp4", other, [E.Trim(3.0, 9.0)], fps=10, size=(320, 180))
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(original.read_bytes()[:3000])
    return {"original": original, "copy": copy, "other": other, "corrupt": corrupt}


def test_run_finds_the_copy_and_skips_bad_files(clips, tmp_path, capsys):
    lib = tmp_path / "lib"
    assert main(["index", "create", str(lib), "--fps", "1"]) == 0
    capsys.readouterr()

    # The corrupt file is reported in its record, the batch goes on, and the exit code says so.
    out = tmp_path / "results.jsonl"
    code, records = run_json(
        capsys,
        [
            "run",
            str(clips["original"]),
            str(clips["corrupt"]),
            str(clips["other"]),
            "--library",
            str(lib),
            "--json",
            "--out",
            str(out),
        ],
    )
    assert code == 1
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in records}
    assert by_name["corrupt.mp4"]["status"] == "error" and by_name["corrupt.mp4"]["error"]
    assert by_name["original.mp4"]["status"] == "ok" and by_name["original.mp4"]["matches"] == []
    assert by_name["other.mp4"]["matches"] == []  # chaplin is no copy of the bunny
    assert len(out.read_text().splitlines()) == 3
    with open_library(lib) as opened:
        names = {v.path.rsplit("/", 1)[-1] for v in opened.live_videos()}
        assert names == {"original.mp4", "other.mp4"}  # nothing of the corrupt file
        before = opened.stats()["vectors"]

    # A query never ingests; it finds the copied stretch: query 3-10 s <- original 2-9 s.
    code, (record,) = run_json(
        capsys, ["index", "query", str(clips["copy"]), "--library", str(lib), "--json"]
    )
    assert code == 0
    top = record["matches"][0]
    assert top["ref_id"].endswith("original.mp4")
    seg = max(top["segments"], key=lambda s: s["query_end"] - s["query_start"])
    assert seg["query_start"] == pytest.approx(3.0, abs=1.6) and seg["query_end"] == pytest.approx(
        10.0, abs=1.6
    )
    assert seg["ref_start"] == pytest.approx(2.0, abs=1.6) and seg["ref_end"] == pytest.approx(9.0, abs=1.6)
    assert {"decode", "embed", "match", "total"} <= set(record["timings"])
    with open_library(lib) as opened:
        assert opened.stats()["vectors"] == before

    # Past its decoding deadline a video falls back to snapshots: still matched, not ingested.
    code, (record,) = run_json(
        capsys, ["run", str(clips["copy"]), "--library", str(lib), "--json", "--deadline", "0"]
    )
    assert code == 0 and record["mode"] == "fallback" and record["ingested"] is False
    assert record["matches"][0]["ref_id"].endswith("original.mp4")
    with open_library(lib) as opened:
        assert opened.stats()["vectors"] == before

    # Remove hides the original from later queries.
    assert main(["index", "remove", top["ref_id"], "--library", str(lib)]) == 0
    capsys.readouterr()
    code, (record,) = run_json(
        capsys, ["index", "query", str(clips["copy"]), "--library", str(lib), "--json"]
    )
    assert all(not m["ref_id"].endswith("original.mp4") for m in record["matches"])


def test_a_luma_library_finds_a_strongly_graded_copy(clips, tmp_path, capsys):
    """`vq run --create --model vq-embed-luma`: the library is bound to the luma model, and
    a copy under a strong grade (hue turned a third round, desaturated, a film curve) is
    found with its stretch."""
    from vq.synth.pixel import ColorGrade

    graded = tmp_path / "graded.mp4"
    look = ColorGrade(hue=120.0, saturation=0.4, gamma=0.7, contrast=0.5, highlights=(0.12, 0.06, 0.0))
    E.render(clips["original"], graded, [look], fps=10, size=(320, 180), audio=False)
    lib = tmp_path / "lib"
    args = ["run", str(clips["original"]), str(graded), "--library", str(lib), "--json"]
    code, records = run_json(capsys, [*args, "--create", "--model", "vq-embed-luma"])
    assert code == 0
    with open_library(lib) as opened:
        assert opened.config.model == "vq-embed-luma" and opened.config.fps == 2.0
    (match,) = records[1]["matches"]
    assert match["ref_id"].endswith("original.mp4")
    seg = max(match["segments"], key=lambda s: s["query_end"] - s["query_start"])
    assert seg["query_end"] - seg["query_start"] > 8 and abs(seg["ref_start"] - seg["query_start"]) < 1.1
    # The model is chosen when the library is made, not later; the same command again is
    # fine, a misspelt model fails before anything is made.
    assert main(["run", str(graded), "--library", str(lib), "--model", "vq-embed-luma"]) == 2
    assert main([*args, "--no-ingest", "--create", "--model", "vq-embed-luma"]) == 0
    fresh = tmp_path / "fresh"
    make = ["run", str(graded), "-l", str(lib), "-l", str(fresh), "--no-ingest", "--create"]
    assert main([*make, "--model", "vq-embd"]) == 4  # no such model
    assert main([*make, "--companion", "vq-embd"]) == 4
    assert not fresh.exists()
    # A run's libraries may use different models: each is searched with its own vectors.
    capsys.readouterr()
    code, (record,) = run_json(capsys, [*make, "--model", "vq-embed", "--json"])
    assert code == 0 and [m["library"] for m in record["matches"]] == ["main"]
    with open_library(fresh) as opened:
        assert opened.config.model == "vq-embed"


def test_a_companion_library_finds_what_either_model_finds(clips, tmp_path, capsys):
    """`vq run --create` (the shipped model's default companion, `vq-embed-luma`): every
    video is embedded by both models, the companion library inside the main one holds the
    luma vectors, and the strongly graded copy that the colour model misses is one match of
    the main library, said to be found by the luma model."""
    from vq.index.library import companions_of
    from vq.synth.pixel import ColorGrade

    graded = tmp_path / "graded.mp4"
    look = ColorGrade(hue=120.0, saturation=0.4, gamma=0.7, contrast=0.5, highlights=(0.12, 0.06, 0.0))
    E.render(clips["original"], graded, [look], fps=10, size=(320, 180), audio=False)
    lib = tmp_path / "lib"
    args = ["run", str(clips["original"]), str(clips["copy"]), str(graded), "--library", str(lib)]
    code, records = run_json(capsys, [*args, "--json", "--create"])
    assert code == 0
    (companion,) = companions_of(lib)
    with open_library(lib) as main_lib, open_library(companion) as partner:
        assert main_lib.config.model == "vq-embed" and partner.config.model == "vq-embed-luma"
        assert partner.config.companion_of == "main" and partner.config.fps == main_lib.config.fps
        assert [v.name for v in partner.live_videos()] == [v.name for v in main_lib.live_videos()]
        assert partner.stats()["vectors"] > 0
    for record in records[1:]:  # the cropped copy and the graded one: one match each
        (match,) = record["matches"]
        assert match["library"] == "main" and match["ref_id"].endswith("original.mp4")
        assert set(match["models"]) <= {"vq-embed", "vq-embed-luma"} and match["models"]
        starts = [s["query_start"] for s in match["segments"]]
        assert starts == sorted(starts)
    assert "vq-embed-luma" in records[2]["matches"][0]["models"]

    # stats names the companions; remove hides a video in both.
    code = main(["index", "stats", "--library", str(lib), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["companions"] == "vq-embed-luma"
    assert main(["index", "remove", records[0]["id"], "--library", str(lib)]) == 0
    code, (record,) = run_json(capsys, ["index", "query", str(graded), "--library", str(lib), "--json"])
    assert code == 0 and not any(m["ref_id"].endswith("original.mp4") for m in record["matches"])

    # A companion under the library's own model is refused before anything is made.
    twin = tmp_path / "twin"
    assert main(["index", "create", str(twin), "--companion", "vq-embed"]) == 2
    assert not twin.exists()
    # `none`: one model; alone, or it is refused. The luma model has no default companion.
    assert main(["index", "create", str(tmp_path / "single"), "--companion", "none"]) == 0
    assert companions_of(tmp_path / "single") == []
    assert main(["index", "create", str(twin), "--companion", "none", "--companion", "vq-embed-luma"]) == 2
    assert not twin.exists()
    assert main(["index", "create", str(tmp_path / "luma"), "--model", "vq-embed-luma"]) == 0
    assert companions_of(tmp_path / "luma") == []


def test_a_second_writer_waits_then_fails_clearly(clips, tmp_path):
    lib = tmp_path / "lib"
    assert main(["index", "create", str(lib)]) == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from vq.index.library import Library; "
            "lib = Library.open(sys.argv[1], write=True); print('locked', flush=True); time.sleep(60)",
            str(lib),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "vq.cli.app",
                "run",
                str(clips["original"]),
                "-l",
                str(lib),
                "--lock-timeout",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode != 0
    assert "another process is writing" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    with open_library(lib) as opened:
        assert opened.stats()["videos"] == 0


def test_blank_frames_are_not_indexed():
    from vq.preprocess.content_box import informative_frames

    frames = np.zeros((4, 64, 64, 3), np.uint8)
    frames[1] = 255
    frames[2, :, 32:] = 200  # half and half: a picture
    frames[3] = np.random.default_rng(0).integers(0, 255, (64, 64, 3))
    assert informative_frames(frames).tolist() == [False, False, True, True]


@pytest.mark.slow
def test_eval_dedup_small_benchmark(shared_data, tmp_path, capsys):
    """Two sources -> references, copies and look-alikes; the model must beat chance clearly."""
    report_path = tmp_path / "dedup.json"
    videos = shared_data / "videos"
    code = main(
        [
            "eval",
            "dedup",
            "--sources",
            str(videos / "big_buck_bunny_0_30.webm"),
            "--sources",
            str(videos / "example.mp4"),
            "--sources",
            str(videos / "fire2.mp4"),
            "--work",
            str(tmp_path / "work"),
            "--clip-seconds",
            "5",
            "--suite",
            "classic",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    bench = report["benchmark"]
    assert bench["references"] >= 3 and bench["kinds"]["non_copy"] >= 3
    from vq.pipelines.dedup import DedupConfig

    assert report["min_nearest"] == DedupConfig().min_nearest  # the eval runs the product's rule
    model, pdq = report["methods"]["vq-embed+vq-embed-luma"], report["methods"]["pdq"]  # the default library
    for method in (model, pdq):
        assert 0.0 <= method["segment_uap"] <= 1.0 and 0.0 <= method["vcsl"]["f1"] <= 1.0
        assert not method["errors"]
    assert model["video"]["f1"] >= 0.8
    assert model["segment_uap"] > pdq["segment_uap"]


def test_downstream_libraries_and_metadata_filters(clips, tmp_path, capsys):
    """A query checks several libraries (only the first is ingested into); a library's
    same-uploader rule drops re-uploads by the original's uploader (sidecar metadata)."""
    main_lib, blocklist = tmp_path / "main", tmp_path / "blocklist"
    assert main(["index", "create", str(main_lib), "--fps", "1", "--filter", "same_uploader"]) == 0
    assert main(["index", "create", str(blocklist), "--fps", "1", "--name", "blocklist"]) == 0
    assert main(["index", "add", str(clips["original"]), "-l", str(blocklist)]) == 0
    assert main(["run", str(clips["original"]), "-l", str(main_lib), "--meta", "uploader=ann"]) == 0
    capsys.readouterr()
    assert "[filters.same_uploader]" in (main_lib / "library.toml").read_text()

    copy = tmp_path / "copy.mp4"
    copy.write_bytes(clips["copy"].read_bytes())
    (tmp_path / "copy.mp4.json").write_text(json.dumps({"uploader": "ann", "title": "my own clip again"}))
    code, (record,) = run_json(
        capsys, ["run", str(copy), "-l", str(main_lib), "-l", str(blocklist), "--no-ingest", "--json"]
    )
    assert code == 0
    assert [m["library"] for m in record["matches"]] == ["blocklist"]  # main: same uploader, dropped

    (tmp_path / "copy.mp4.json").write_text(json.dumps({"uploader": "bob"}))
    code, (record,) = run_json(
        capsys, ["run", str(copy), "-l", str(main_lib), "-l", str(blocklist), "--no-ingest", "--json"]
    )
    assert sorted(m["library"] for m in record["matches"]) == ["blocklist", "main"]
    assert main(["index", "create", str(tmp_path / "x"), "--filter", "no_such_rule"]) == 2


def test_heldout_suite_has_short_partials_grades_and_look_alikes(shared_data, tmp_path):
    """The held-out suite's query kinds: 3-5 s partial copies inside 3-5 s of other footage
    on each side, strongly graded copies, and other moments of a reference's video kept
    as look-alike non-copies."""
    from vq.eval.dedup import build_benchmark, summary

    videos = shared_data / "videos"
    bench = build_benchmark(
        [videos / "big_buck_bunny_0_30.webm", videos / "chaplin.mp4"],
        tmp_path / "work",
        suite="heldout",
        clip_seconds=5.0,
        fps=5.0,
        max_side=160,
    )
    info = summary(bench)
    assert bench.params["suite"] == "heldout"
    assert {"full", "stacked", "speed", "partial", "graded", "non_copy"} <= set(info["kinds"])
    assert info["look_alikes"] >= 3
    for query in bench.queries:
        if query.kind == "partial":
            (truth,) = query.truth
            assert 3.0 - 0.3 <= truth["query_end"] - truth["query_start"] <= 5.0 + 0.3
            assert truth["query_start"] >= 2.5  # hosted: other footage comes first
        if query.kind == "graded":
            assert query.families[0] == "grade" and query.truth


def test_a_copy_played_backwards_is_found_and_said_to_be(clips, tmp_path, capsys):
    """6 s of the original reversed (and bordered): one match, its segment reversed, the
    reference span where the copy came from."""
    backwards = tmp_path / "backwards.mp4"
    record = E.render(
        clips["original"],
        backwards,
        [E.Trim(3.0, 9.0), E.Reverse(), E.Border(20, 20, 0, 0, color=(0, 0, 0))],
        fps=10,
        size=(320, 180),
        audio=False,
    )
    assert record.segments[0][2:] == pytest.approx((3.0, 9.0), abs=0.15)  # source span, low to high
    lib = tmp_path / "lib"
    assert main(["index", "create", str(lib)]) == 0  # the default rates: 2 fps stored and matched
    assert main(["run", str(clips["original"]), "--library", str(lib)]) == 0
    capsys.readouterr()
    code, records = run_json(capsys, ["run", str(backwards), "--library", str(lib), "--no-ingest", "--json"])
    assert code == 0
    (match,) = records[0]["matches"]
    (segment,) = match["segments"]
    assert segment.get("reversed") is True
    assert segment["ref_start"] == pytest.approx(3.0, abs=1.6) and segment["ref_end"] == pytest.approx(
        9.0, abs=1.6
    )
    # The original itself is matched forwards.
    code, records = run_json(
        capsys, ["run", str(clips["original"]), "--library", str(lib), "--no-ingest", "--json"]
    )
    assert all("reversed" not in s for m in records[0]["matches"] for s in m["segments"])


def test_a_kept_soundtrack_under_a_new_picture_is_found_by_its_sound(shared_data, tmp_path, capsys):
    """A new picture (Chaplin) over 8 s of the original's soundtrack: found by the sound
    alone, at the right place; the original matched against itself has both kinds of
    evidence; the same picture with no sound matches nothing."""
    from vq.media import open_video
    from vq.media.audio import decode_audio
    from vq.media.encode import write_audio, write_video
    from vq.pipelines.dedup import Dedup, DedupConfig
    from vq.stages.embed import Embedder
    from vq.synth.audio import change_speed

    original = tmp_path / "original.mp4"
    E.render(
        shared_data / "videos" / "big_buck_bunny_0_30.webm",
        original,
        [E.Trim(0.0, 20.0)],
        fps=10,
        size=(320, 180),
    )
    with open_video(shared_data / "videos" / "chaplin.mp4") as video:
        picture = video.sample(times=np.arange(80) / 10.0, size=(320, 180)).images
    dubbed, silent = tmp_path / "dubbed.mp4", tmp_path / "silent.mp4"
    write_video(dubbed, picture, 10, audio_from=original, audio_start=6.0)
    write_video(silent, picture, 10)
    lib = tmp_path / "lib"
    assert main(["index", "create", str(lib), "--fps", "1"]) == 0
    assert main(["run", str(original), "--library", str(lib)]) == 0
    capsys.readouterr()
    code, records = run_json(capsys, ["run", str(dubbed), "--library", str(lib), "--no-ingest", "--json"])
    assert code == 0
    (match,) = records[0]["matches"]
    assert match["evidence"] == ["audio"]
    # 8 s of a kept soundtrack is beyond chance: it outranks any picture look-alike's cosine
    assert match["audio"]["votes"] >= 20 and match["audio"]["log10_chance"] < -10 and match["score"] > 0.999
    (segment,) = match["segments"]
    assert segment["query_start"] == pytest.approx(0.0, abs=1.0) and segment["query_end"] >= 6.0
    assert segment["ref_start"] - segment["query_start"] == pytest.approx(6.0, abs=0.2)
    # The timeout fallback (snapshots) matches the first 5 minutes of sound too, as the seed's does.
    code, records = run_json(capsys, ["run", str(dubbed), "--library", str(lib), "--json", "--deadline", "0"])
    assert records[0]["mode"] == "fallback" and records[0]["ingested"] is False
    assert [m["evidence"] for m in records[0]["matches"]] == [["audio"]]
    code, records = run_json(capsys, ["run", str(original), "--library", str(lib), "--no-ingest", "--json"])
    assert records[0]["matches"][0]["evidence"] == ["picture", "audio"]
    # the sound agrees where the picture already found it: one set of segments, the picture's
    assert not any(s.get("by_sound") for s in records[0]["matches"][0]["segments"])
    code, records = run_json(capsys, ["run", str(silent), "--library", str(lib), "--no-ingest", "--json"])
    assert records[0]["matches"] == []
    with open_library(lib) as library:
        assert library.stats()["audio_hashes"] > 0
    # The soundtrack from 6 s on, played 6 % faster (off the search grid's 1 % points):
    # found by the speed search, with its speed and a segment of that slope.
    sound = decode_audio(original, 16000)[6 * 16000 : 15 * 16000]
    wav = write_audio(tmp_path / "sped.wav", change_speed(sound, 1.063), 16000)
    sped = tmp_path / "sped.mp4"
    write_video(sped, picture, 10, audio_from=wav)
    code, records = run_json(capsys, ["run", str(sped), "--library", str(lib), "--no-ingest", "--json"])
    (match,) = records[0]["matches"]
    assert match["evidence"] == ["audio"] and match["audio"]["speed"] == pytest.approx(1.063, abs=0.011)
    assert all(s["by_sound"] for s in match["segments"])
    (segment,) = match["segments"]
    slope = (segment["ref_end"] - segment["ref_start"]) / (segment["query_end"] - segment["query_start"])
    assert slope == pytest.approx(1.063, abs=0.011)
    assert segment["ref_start"] - 1.063 * segment["query_start"] == pytest.approx(6.0, abs=0.2)
    assert main(["run", str(sped), "--library", str(lib), "--no-ingest"]) == 0
    assert "by sound at 1.06x speed" in capsys.readouterr().out
    # With the speed search off, the sped-up soundtrack is not found.
    with open_library(lib) as library:
        job = Dedup(Embedder(library.config.model).open(), [library], DedupConfig(audio_speed_seconds=0))
        assert job.process(sped, ingest=False).matches == []


@pytest.mark.slow
def test_eval_dedup_audio_suite(shared_data, tmp_path, capsys):
    """The audio suite on two short sources with synthetic melodies as soundtracks: every
    kind is built, sound-kept copies are found by sound, reversed copies by picture, and
    no silent, music-free or unrelated-sound negative is flagged."""
    from vq.media.encode import write_audio

    rng = np.random.default_rng(0)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for k in range(8):  # distinct melodies: 0.25 s notes with two harmonics over a little noise
        notes = 220.0 * 2 ** (rng.integers(0, 24, 120) / 12)
        t = np.arange(4000) / 16000
        song = np.concatenate([np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t) for f in notes])
        song = 0.25 * song + 0.01 * rng.standard_normal(len(song))
        write_audio(recordings / f"melody{k}.wav", song.astype(np.float32), 16000)
    videos = shared_data / "videos"
    report_path = tmp_path / "audio.json"
    chromaprint = shutil.which("fpcalc") is not None  # the sound baseline, where it installs
    baselines = "chromaprint" if chromaprint else ""
    args = ["eval", "dedup", "--suite", "audio", "--audio", str(recordings), "--baselines", baselines]
    args += ["--sources", str(videos / "big_buck_bunny_0_30.webm"), "--sources", str(videos / "example.mp4")]
    args += ["--work", str(tmp_path / "work"), "--clip-seconds", "5", "--json", str(report_path)]
    assert main(args) == 0, capsys.readouterr().err
    method = json.loads(report_path.read_text())["methods"]["vq-embed+vq-embed-luma"]
    kinds = method["kinds"]
    assert {
        "sound_kept",
        "sound_sped",
        "sound_replaced",
        "reversed",
        "silent",
        "music_free",
        "unrelated",
    } <= set(kinds)
    assert kinds["sound_kept"]["found"] >= kinds["sound_kept"]["queries"] - 1
    assert kinds["sound_sped"]["found"] >= kinds["sound_sped"]["queries"] - 1
    assert kinds["reversed"]["found"] >= kinds["reversed"]["queries"] - 1
    # No negative is flagged by its sound (another moment of a reference's video may still
    # be a picture look-alike).
    by_sound = [
        r["id"]
        for r in method["records"]
        if r["id"].split("-")[0] in ("silent", "music_free", "unrelated")
        for m in r["matches"]
        if "audio" in m.get("evidence", [])
    ]
    assert by_sound == []
    # The pool of queries whose picture shows no copy scores the sound alone, its false
    # alarms on the negatives included.
    pool = method["pools"]["sound alone"]
    negatives = ("silent", "music_free", "unrelated")
    assert pool["queries"] == sum(kinds[k]["queries"] for k in ("sound_kept", "sound_sped", *negatives))
    assert pool["video"]["tp"] == kinds["sound_kept"]["found"] + kinds["sound_sped"]["found"]
    assert pool["video"]["fp"] >= sum(kinds[k]["flagged"] for k in negatives)
    kept = [r for r in method["records"] if r["id"].startswith("sound_kept")]
    assert sum(any(m.get("evidence") == ["audio"] for m in r["matches"]) for r in kept) >= len(kept) - 1
    assert (
        main(["eval", "dedup", "--sources", str(videos), "--work", str(tmp_path / "w2"), "--suite", "audio"])
        != 0
    )
    if chromaprint:  # run beside it over the same queries, scored the same way
        baseline = json.loads(report_path.read_text())["methods"]["chromaprint"]
        assert set(baseline["kinds"]) == set(kinds)
        assert all(m["score"] >= 0.766 for r in baseline["records"] for m in r["matches"])
        assert not any(r["matches"] for r in baseline["records"] if r["id"].startswith("silent"))
    args = [
        "eval",
        "dedup",
        "--sources",
        str(videos),
        "--work",
        str(tmp_path / "w3"),
        "--baselines",
        "chromaprint",
    ]
    assert main(args) != 0  # a sound baseline on a picture-only suite
    assert (
        main(["eval", "dedup", "--sources", str(videos), "--work", str(tmp_path / "w4"), "--deadline", "-1"])
        != 0
    )
    calibrate_both = ["--companion", "vq-embed-luma", "--calibrate"]
    assert (
        main(["eval", "dedup", "--sources", str(videos), "--work", str(tmp_path / "w5"), *calibrate_both])
        == 2
    )
    assert not (tmp_path / "w5").exists()


def test_companion_matches_fold_into_their_library():
    """One match per reference: the companion's segments join the library's, a stretch both
    models found is kept once (the better-scoring), and `models` says who found it."""
    from vq.index.library import LibraryConfig
    from vq.match.segments import Segment
    from vq.pipelines.dedup import LibraryMatch, with_companions

    def config(name, model, companion_of=None):
        return LibraryConfig(model=model, model_sha256=model, dim=8, name=name, companion_of=companion_of)

    configs = [config("main", "vq-embed"), config("main+vq-embed-luma", "vq-embed-luma", "main")]
    early, late = Segment(0.0, 5.0, 10.0, 15.0, 0.8), Segment(20.0, 30.0, 40.0, 50.0, 0.7)
    again = Segment(0.5, 5.5, 10.5, 15.5, 0.9)  # the early stretch, seen by the other model
    picture = LibraryMatch("main", "a", None, 0.8, [early], evidence=["picture"])
    sound = LibraryMatch(
        "main", "b", None, 0.99, [Segment(0, 9, 0, 9, 0.99, by_sound=True)], evidence=["audio"]
    )
    luma = LibraryMatch("main+vq-embed-luma", "a", None, 0.9, [late, again], evidence=["picture"])
    merged = with_companions([sound, picture, luma], configs)
    assert [(m.library, m.ref_id) for m in merged] == [("main", "b"), ("main", "a")]
    assert merged[0].models == []  # heard, not seen
    a = merged[1]
    assert a.segments == [again, late] and a.score == 0.9
    assert a.models == ["vq-embed", "vq-embed-luma"]
    # Without companions the matches pass through untouched.
    assert with_companions([picture], configs[:1]) == [picture]


def test_rival_references_of_two_models_are_settled_by_agreement():
    """Two references, each found by one model only, over one stretch: the better agreement
    keeps it (a judged segment beats an unjudged still); a segment elsewhere, a reference
    both models found and a tie are left alone."""
    from vq.match.segments import Segment
    from vq.pipelines.dedup import LibraryMatch, settle_across_models

    def match(ref, models, *segments):
        return LibraryMatch("main", ref, None, max(s.score for s in segments), list(segments), models=models)

    colour = match(
        "c", ["vq-embed"], Segment(0, 6, 0, 6, 0.95, motion=0.44), Segment(10, 14, 0, 4, 0.9, motion=0.2)
    )
    luma = match("l", ["vq-embed-luma"], Segment(0, 6, 10, 16, 0.92, motion=0.31))
    still = match("s", ["vq-embed"], Segment(20, 26, 0, 6, 0.93))  # a still reference: unjudged
    judged = match("j", ["vq-embed-luma"], Segment(20, 26, 30, 36, 0.87, motion=0.32))
    both = match("b", ["vq-embed", "vq-embed-luma"], Segment(0, 6, 40, 46, 0.99, motion=0.1))
    tie = match("t", ["vq-embed-luma"], Segment(10, 14, 20, 24, 0.8, motion=0.2))
    settled = settle_across_models([both, colour, luma, still, judged, tie])
    assert [m.ref_id for m in settled] == ["b", "c", "j", "t"]
    assert settled[1].segments == colour.segments  # its second segment tied: kept
    assert settle_across_models([colour, match("x", None, Segment(0, 6, 0, 6, 0.99))])[1].ref_id == "x"
