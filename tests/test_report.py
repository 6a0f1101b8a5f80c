"""One decode for the three jobs (`vq run --score --enhance`) and the review page (`vq report`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.browser import Browser, find_chromium
from tests.media_factory import make_clip
from vq.cli.app import main


def test_one_pass_serves_each_request_as_its_own_decode_would(tmp_path):
    from vq.media import open_video
    from vq.media.sampling import Request, iter_frames, picked_frames, picker_for

    clip = make_clip(tmp_path / "a.mp4", n=120, fps=25, size=(320, 192), gop=50)
    grid = np.arange(0.0, 4.8, 0.5)
    window = 2.0 + np.arange(8) / 25
    with open_video(clip) as video:
        alone_grid = video.sample(fps=2, max_side=160)
    with open_video(clip) as video:
        alone_window = video.sample(times=window, fast=False)
    with open_video(clip) as video:
        shared_grid, shared_window = video.sample_many(
            [Request(grid, fps=2, max_side=160), Request(window, exact=True, fast=False)]
        )
    # The windows are the same frames, pixel for pixel (the loop filter on in both).
    np.testing.assert_array_equal(shared_window.images, alone_window.images)
    np.testing.assert_array_equal(shared_window.times, alone_window.times)
    # The grid: one frame per slot within half an interval, at the asked size.
    assert shared_grid.images.shape[1:] == alone_grid.images.shape[1:] == (96, 160, 3)
    assert len(shared_grid) == len(alone_grid) == len(grid)
    assert np.all(np.abs(shared_grid.times - grid) <= 0.25)
    # The every-frame stream (enhancement's decode) serves the same windows on the way.
    requests = [Request(window, exact=True, fast=False)]
    with open_video(clip) as video:
        picker = picker_for(video, requests)
        frames = sum(1 for _ in iter_frames(video, picker=picker))
        picker.finish()
        [streamed] = picked_frames(video, requests, picker, {})
    assert frames == 120
    np.testing.assert_array_equal(streamed.images, alone_window.images)


def test_one_pass_seeks_between_far_requests_and_handles_odd_ones(tmp_path):
    from vq.media import open_video
    from vq.media.sampling import Request

    clip = make_clip(tmp_path / "long.mp4", n=250, fps=25, size=(320, 192), gop=25)
    early, late = np.arange(0.0, 1.0, 0.5), 8.0 + np.arange(4) / 25
    with open_video(clip) as video:
        a, b, empty, past = video.sample_many(
            [
                Request(early, fps=2, max_side=160),
                Request(late, exact=True, fast=False),
                Request(np.zeros(0)),
                Request(np.asarray([9.91, 30.0]), exact=True),
            ]
        )
        decoded = a.stats["decoded"]
    assert a.stats["seeks"] >= 1 and decoded < 250  # the gap between 1 s and 8 s was skipped
    with open_video(clip) as video:
        alone = video.sample(times=late, fast=False)
    np.testing.assert_array_equal(b.images, alone.images)
    assert len(empty) == 0 and empty.images.shape[1:] == (192, 320, 3)
    assert len(past) == 1 and past.times[0] == pytest.approx(9.92)  # 30 s is past the end: dropped
    # The same time asked by two consumers at two sizes: each gets the same frame at its size.
    with open_video(clip) as video:
        small, big = video.sample_many([Request(late, exact=True, max_side=80), Request(late, exact=True)])
    np.testing.assert_array_equal(small.times, big.times)
    assert small.images.shape[1:] == (48, 80, 3) and big.images.shape[1:] == (192, 320, 3)


def test_run_scores_and_enhances_from_one_decode_like_the_separate_commands(tmp_path, capsys):
    clip = make_clip(tmp_path / "in" / "clip.mp4", n=60, fps=25, size=(160, 96), crf=18)
    out = tmp_path / "run.jsonl"
    args = ["run", str(clip), "--library", str(tmp_path / "lib"), "--create", "--fps", "2", "--score"]
    code = main([*args, "--enhance", str(tmp_path / "enh"), "--out", str(out), "--timeout", "0"])
    assert code == 0, capsys.readouterr().err
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["status"] == "ok" and record["ingested"]
    assert Path(record["enhanced"]).is_file() and record["timings"]["enhance"] > 0
    quality = record["quality"]
    assert quality["status"] == "ok" and 1 <= quality["score"] <= 5

    # `vq score` alone decodes the same windows and gives the same score.
    assert main(["score", str(clip), "--json", "--out", str(tmp_path / "s.jsonl"), "--timeout", "0"]) == 0
    [alone] = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert alone["score"] == pytest.approx(quality["score"], abs=1e-6)
    assert alone["segments"] == quality["segments"]
    # ... and `vq enhance` alone writes a video of the same frames.
    assert main(["enhance", str(clip), "--out", str(tmp_path / "enh2"), "--json"]) == 0
    from vq.media import open_video

    with open_video(record["enhanced"]) as a, open_video(tmp_path / "enh2" / "clip_x2.mp4") as b:
        assert a.info.frames == b.info.frames and (a.info.width, a.info.height) == (
            b.info.width,
            b.info.height,
        )

    # Options that do not go together fail with one line.
    capsys.readouterr()
    code = main([*args, "--enhance", str(tmp_path / "e3"), "--deadline", "5"])
    assert code != 0 and "--deadline does not go with --enhance" in capsys.readouterr().err
    code = main(["run", str(clip), "--library", str(tmp_path / "lib"), "--quality-model", "vq-kvq"])
    assert code != 0 and "applies with --score" in capsys.readouterr().err


def test_report_reads_bad_records_in_plain_words(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.mp4", "status": "ok", "matches": []}\nnot json\n')
    code = main(["report", str(bad), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code != 0 and "bad.jsonl:2: not a JSON record" in err and not (tmp_path / "r.html").exists()

    records = tmp_path / "ok.jsonl"
    gone = {
        "library": "main",
        "ref_id": "ref",
        "ref_path": str(tmp_path / "gone.mp4"),
        "score": 0.9,
        "segments": [{"query_start": 0, "query_end": 2, "ref_start": 1, "ref_end": 3, "score": 0.9}],
        "ref_metadata": {},
    }
    backwards = {
        **gone,
        "segments": [{**gone["segments"][0], "reversed": True, "pixels": 0.87}],
        "evidence": ["picture", "audio"],
    }
    lines = [
        {"path": str(tmp_path / "up.mp4"), "status": "ok", "matches": [gone], "duration": 2.0},
        {"path": "broken.mp4", "status": "error", "error": "broken.mp4: no decodable video frames"},
    ]
    hostile = '<img src=x onerror="fetch(1)">.mp4'
    lines += [
        {
            "path": "/data/worker3/late.mp4",
            "status": "error",
            "error": "/data/worker3/late.mp4: no result after 600 s (per-video --timeout); stopped",
        },
        {"path": hostile, "status": "error", "error": f"{hostile}: <script>alert(1)</script>"},
        {
            "path": "https://example.com/u.mp4",
            "status": "ok",
            "matches": [backwards],
            "duration": 2.0,
            "quality": {"status": "skipped", "reason": "decoding passed --deadline"},
        },
    ]
    records.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert main(["report", str(records), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Reference frames unavailable" in page and "Upload frames unavailable" in page
    assert "The file has no picture that could be decoded." in page
    assert "Processing took too long" in page and "processing worker" not in page  # not the folder name
    assert "<script>alert" not in page and "<img src=x" not in page  # names and errors are escaped
    assert "a URL (not fetched for the page)" in page and "decoding passed --deadline" in page
    assert page.count("played backwards") == 1 and 'found by <span class="evidence">picture and audio' in page
    # Each segment says how it was judged a copy and not another moment of the scene.
    assert (
        '<td class="agreement">0.87 in pixels</td>' in page
        and '<td class="agreement">not judged</td>' in page
    )

    malformed = tmp_path / "m.jsonl"
    malformed.write_text(json.dumps({"path": "a.mp4", "status": "ok", "matches": [{"score": 1}]}) + "\n")
    capsys.readouterr()
    assert main(["report", str(malformed), "--out", str(tmp_path / "m.html")]) != 0
    assert "record 1 (a.mp4): not a vq run record" in capsys.readouterr().err


def test_review_page_in_a_real_browser(shared_data, tmp_path, capsys):
    """The issue's bar: the Quickstart's run with --score --report, opened in Chromium."""
    from PIL import Image

    videos = shared_data / "videos"
    page, out = tmp_path / "r.html", tmp_path / "r.jsonl"
    args = ["run", str(videos), "--library", str(tmp_path / "L"), "--create", "--fps", "2", "--score"]
    code = main([*args, "--report", str(page), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert all(r["quality"]["status"] == "ok" for r in records.values())
    [match] = records["example2.mp4"]["matches"]
    assert Path(match["ref_id"]).name == "big_buck_bunny_0_30.webm" and match["similarity"]["values"]

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    with Browser(chromium) as browser:
        browser.open(page)
        card = "document.querySelector('section.card[data-name=\"%s\"]')"
        copy, original = card % "example2.mp4", card % "chaplin.mp4"
        assert browser.evaluate(f"{copy}.querySelector('.verdict').textContent") == "COPY"
        assert browser.evaluate(f"{original}.querySelector('.verdict').textContent") == "ORIGINAL"
        colour = "getComputedStyle(%s).borderLeftColor"
        assert browser.evaluate(colour % copy) != browser.evaluate(colour % original)
        # Both thumbnails and the heatmap are decoded pictures, and the heatmap has the
        # aligned segment drawn on it in red.
        loaded = browser.evaluate(
            f"Array.from({copy}.querySelectorAll('img.thumb, img.heatmap'))"
            ".map(i => i.className + ':' + (i.complete && i.naturalWidth > 0))"
        )
        assert loaded == ["thumb upload:true", "thumb reference:true", "heatmap:true"]
        rect = browser.evaluate(
            f"(() => {{ const e = {copy}.querySelector('img.heatmap'); e.scrollIntoView();"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })()"
        )
        heat = np.asarray(Image.open(io.BytesIO(browser.screenshot(rect))).convert("RGB")).astype(int)
        assert heat.std() > 30  # a picture, not a blank box
        red = (heat[..., 0] > 200) & (heat[..., 1] < 110) & (heat[..., 2] < 110)
        assert red.sum() > 50
        # Every clip shows a quality score; the filter keeps only the copy.
        scores = browser.evaluate("Array.from(document.querySelectorAll('.quality-score')).length")
        assert scores == len(records)
        browser.evaluate(
            "(() => { const s = document.getElementById('filter-verdict'); s.value = 'copy';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        visible = browser.evaluate("document.querySelectorAll('section.card:not(.hidden)').length")
        assert visible == 1
        # Nothing went wrong, and nothing was fetched but the page and its inline pictures.
        assert browser.errors() == []
        schemes = {url.split(":", 1)[0] for url in browser.requests()}
        assert schemes <= {"file", "data"}, browser.requests()
