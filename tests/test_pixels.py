"""The pixel look-alike test (`vq.match.pixels`): thumbnails, the agreement of a copy and of
another moment of one fixed camera, re-placing a wandering line, the library's thumbnails,
and `vq run` telling a copy of a fixed camera from another moment of it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vq.match.pixels import (
    SEARCH_MARGIN,
    THUMB_SIDE,
    PixelMotion,
    PixelRules,
    changes,
    judge_by_pixels,
    pixel_line,
    segment_pixels,
    thumbnails,
    trim_to_agreement,
)
from vq.match.segments import Segment
from vq.preprocess.content_box import ContentBox

from helpers import run_json

FPS = 2.0  # the library's rate: the tests below sample their scenes at it


def room(shared_data, size=(320, 180)) -> np.ndarray:
    """A fixed camera's view: one real photograph, never moving."""
    photo = sorted((shared_data / "images" / "photos").glob("*"))[0]
    return np.asarray(Image.open(photo).convert("RGB").resize(size, Image.BILINEAR))


def walkers(background: np.ndarray, seconds: float, fps: float, seed: int) -> np.ndarray:
    """`background` with four people (dark and light 14x34 px figures) walking straight
    lines across it at their own speeds: one moment of the fixed camera, `seed` choosing it."""
    rng = np.random.default_rng(seed)
    h, w = background.shape[:2]
    start = rng.uniform([0, 0], [w - 14, h - 34], size=(4, 2))
    velocity = rng.uniform(-40, 40, size=(4, 2)) * [1.0, 0.5]  # px per second
    tone = rng.choice([20, 235], size=4)
    frames = np.repeat(background[None], round(seconds * fps), axis=0).copy()
    for i, t in enumerate(np.arange(len(frames)) / fps):
        for (x, y), (vx, vy), c in zip(start, velocity, tone, strict=True):
            px = int(np.clip(x + vx * t, 0, w - 14))
            py = int(np.clip(y + vy * t, 0, h - 34))
            frames[i, py : py + 34, px : px + 14] = c
    return frames


def thumbs_of(frames: np.ndarray) -> np.ndarray:
    return thumbnails(frames)


def test_thumbnails_are_the_content_box_in_integer_luma():
    frames = np.zeros((3, 90, 160, 3), np.uint8)
    frames[:, 10:80, 20:140] = (200, 100, 50)  # the picture inside a black border
    full = thumbnails(frames)
    assert full.shape == (3, THUMB_SIDE, THUMB_SIDE) and full.dtype == np.uint8
    inner = thumbnails(frames, ContentBox(20, 10, 140, 80, "test"))
    # BT.601 in thousandths, rounded: (299*200 + 587*100 + 114*50 + 500) // 1000 = 124
    assert (inner == 124).all()
    assert full.min() == 0  # the border is in the whole frame's thumbnail
    with pytest.raises(ValueError):
        thumbnails(frames[0])


def test_a_copy_moves_with_its_source_and_another_moment_does_not(shared_data):
    bg = room(shared_data)
    source = walkers(bg, 6.0, FPS, seed=1)
    other = walkers(bg, 6.0, FPS, seed=2)  # the same room, other people walking
    times = np.arange(len(source)) / FPS
    line = Segment(0.0, 6.0, 0.0, 6.0, 0.99)
    ref = thumbs_of(source)
    # A copy under a constant edit: brighter, a logo, a little noise. What stays cancels.
    copy = np.clip(source.astype(np.int16) * 1.1 + 12, 0, 255).astype(np.uint8)
    copy[:, 5:25, 5:60] = 255
    copy = np.clip(copy + np.random.default_rng(0).normal(0, 4, copy.shape), 0, 255).astype(np.uint8)
    copied = segment_pixels([thumbs_of(copy)], times, ref, times, line)
    assert copied is not None and copied.agreement > 0.7 and copied.frames == len(times)
    assert copied.change > 3.0  # the reference moves in its pixels: the test judges
    look_alike = segment_pixels([thumbs_of(other)], times, ref, times, line)
    assert look_alike is not None and look_alike.agreement < 0.3
    # A mirrored copy moves mirrored: the query's flip is tried too.
    mirrored = segment_pixels([thumbs_of(source[:, :, ::-1])], times, ref, times, line)
    assert mirrored.agreement > 0.95
    # An empty room (a little sensor noise) has nothing to agree on: its change is under the floor.
    empty = np.repeat(bg[None], len(times), 0).astype(np.int16)
    empty += np.random.default_rng(1).integers(-2, 3, empty.shape).astype(np.int16)
    empty = thumbs_of(np.clip(empty, 0, 255).astype(np.uint8))
    still = segment_pixels([thumbs_of(other)], times, empty, times, line)
    assert still.change < 3.0 <= copied.change
    # Too few frames on the line: no judgement.
    assert segment_pixels([thumbs_of(copy)], times, ref, times, Segment(0.0, 1.0, 0.0, 1.0, 0.99)) is None
    # A short find held up by two matching frames is judged on all of its frames.
    short = Segment(0.0, 2.0, 0.0, 2.0, 0.9)
    sim = np.full((len(times), len(times)), 0.5)
    sim[[0, 1], [0, 1]] = 0.95
    judged = segment_pixels([thumbs_of(other)], times, ref, times, short, sim, 0.77)
    assert judged is not None and judged.frames == 4 and judged.agreement < 0.3


def test_a_partial_copy_inside_other_moments_is_re_placed_on_its_line(shared_data):
    """4 s of moment A spliced between two stretches of moment B of the same room: the
    aligner's line through such a query wanders (every frame looks alike to an embedding).
    `pixel_line` finds the speed-1 line where the people move as A's do."""
    bg = room(shared_data)
    a, b = walkers(bg, 8.0, FPS, seed=1), walkers(bg, 10.0, FPS, seed=3)
    query = np.concatenate([b[:6], a[4:12], b[12:18]])  # 3 s of B, A's 2-6 s, 3 s of B
    q_times, r_times = np.arange(len(query)) / FPS, np.arange(len(a)) / FPS
    sim = np.full((len(q_times), len(r_times)), 0.99)  # the embedding: everything alike
    wandering = Segment(0.0, 9.0, 0.0, 6.0, 0.99)  # speed 0.67 over all of it
    views, ref = [thumbs_of(query)], thumbs_of(a)
    found = pixel_line(views, q_times, ref, r_times, wandering, sim, 0.5, step=1 / FPS, min_frames=8)
    assert found is not None
    line, px = found
    # Decided on the whole line over the reference (8 s: the copy and 2 s of B either side)...
    assert px.agreement > 0.4 and px.frames == 16
    assert line.ref_start - line.query_start == pytest.approx(2.0 - 3.0, abs=0.01)  # A's 2 s at query 3 s
    # ... reported as the stretch whose frames agree on their own: the copy.
    trim = lambda s: trim_to_agreement(views, q_times, ref, r_times, s, sim, 0.5, 1 / FPS)  # noqa: E731
    copied = trim(line)
    assert copied.query_start == pytest.approx(3.0, abs=0.5) and copied.query_end == pytest.approx(
        7.0, abs=0.5
    )
    assert copied.ref_start - copied.query_start == pytest.approx(-1.0, abs=0.01)
    # The wandering line itself does not agree: judged by pixels, it is re-placed.
    measure = lambda s: segment_pixels(views, q_times, ref, r_times, s, sim, 0.5)  # noqa: E731
    assert measure(wandering).agreement < 0.3
    search = lambda s, speeds, n: pixel_line(views, q_times, ref, r_times, s, sim, 0.5, 1 / FPS, n, speeds)  # noqa: E731
    rules = PixelRules(low=0.12, high=0.3, floor=3.0, search_high=0.3, search_frames=8)
    kept, undecided = judge_by_pixels([wandering], measure, rules, search=search, trim=trim)
    assert undecided == [] and len(kept) == 1 and kept[0].pixels == pytest.approx(px.agreement)
    assert (kept[0].query_start, kept[0].query_end) == (copied.query_start, copied.query_end)
    # A copy's own line that passes is kept, and trimming leaves a whole copy whole.
    whole = Segment(3.0, 7.0, 2.0, 6.0, 0.99)
    assert trim(whole) == whole
    kept, _ = judge_by_pixels([whole], measure, rules, search=search, trim=trim)
    assert [(k.query_start, k.query_end, k.ref_start) for k in kept] == [(3.0, 7.0, 2.0)]
    # Without the search, nothing is kept by the pixels (the embedding's test decides).
    kept, undecided = judge_by_pixels([wandering], measure, rules)
    assert kept == [] and all(u.pixels < 0.3 for u in undecided)


def test_a_passing_line_is_moved_onto_the_copy_s_own_line(shared_data):
    """Where the picture changes slowly the aligner's speed is a guess: a short partial copy
    comes out stretched over the whole reference, a sped-up copy at speed 1. A line that
    passes is moved where the pixels agree clearly better, at any speed, even a copy
    shorter than a failing line's search needs."""
    bg = room(shared_data)
    a, b = walkers(bg, 8.0, FPS, seed=1), walkers(bg, 10.0, FPS, seed=3)
    ref, r_times = thumbs_of(a), np.arange(len(a)) / FPS
    rules = PixelRules(low=-1.0, high=-1.0, floor=3.0, search_high=0.3, search_frames=8)

    def judged(query: np.ndarray, line: Segment) -> Segment:
        q_times = np.arange(len(query)) / FPS
        views, sim = [thumbs_of(query)], np.full((len(q_times), len(r_times)), 0.99)

        def measure(s):
            return segment_pixels(views, q_times, ref, r_times, s, sim, 0.5)

        def search(s, speeds, n):
            return pixel_line(views, q_times, ref, r_times, s, sim, 0.5, 1 / FPS, n, speeds)

        def trim(s):
            return trim_to_agreement(views, q_times, ref, r_times, s, sim, 0.5, 1 / FPS)

        (kept,), _ = judge_by_pixels([line], measure, rules, search=search, trim=trim)
        assert kept.pixels > measure(line).agreement + SEARCH_MARGIN
        return kept

    # 3.5 s of A (its 2-5.5 s) at query 4 s, between two stretches of B: seven frames.
    short = judged(np.concatenate([b[:8], a[4:11], b[15:21]]), Segment(4.0, 7.5, 0.5, 6.25, 0.99))
    assert short.ref_start - short.query_start == pytest.approx(-2.0, abs=0.01)
    assert short.ref_end - short.ref_start == pytest.approx(short.seconds)
    # A played 1.5x as fast (the aligner's line at speed 1).
    fast = walkers(bg, 16 / 3, FPS / 1.5, seed=1)  # query frames every 0.5 s show A every 0.75 s
    sped = judged(fast, Segment(0.0, 4.0, 0.0, 4.0, 0.99))
    assert (sped.ref_end - sped.ref_start) / sped.seconds == pytest.approx(1.5)
    # (on A's 0.5 s grid a 1.5x line is placed to within half a frame)
    assert sped.ref_start - 1.5 * sped.query_start == pytest.approx(0.0, abs=0.25)


def test_changes_clip_what_a_few_pixels_do_even_on_a_static_background():
    """Scrolling comments change a few pixels a lot: clipped at a few robust deviations of
    what the moving pixels do, even where most of the picture holds exactly still."""
    frames = np.zeros((6, 100), np.float32)
    frames[:, :10] = np.arange(6)[:, None] * 2.0  # a slow change over a tenth of the picture
    frames[3, 50] = 4500.0  # one overlay pixel, once
    c = changes(frames)
    assert np.abs(c[:, 50]).max() < 30  # clipped
    assert np.allclose(c[:, 20], 0.0, atol=1.0)  # the still part stays (nearly) still
    slow = frames[:, :10] - frames[:, :10].mean(0)
    assert np.corrcoef(c[:, :10].ravel(), slow.ravel())[0, 1] > 0.99


def test_a_searched_line_never_starts_before_the_reference(shared_data):
    """Query frames landing just before the reference's first frame are not part of a line
    (at a library rate of 0.5 fps against queries at 1 fps, half a reference frame is a second)."""
    bg = room(shared_data)
    a, b = walkers(bg, 8.0, 1.0, seed=1), walkers(bg, 8.0, 1.0, seed=3)
    query = np.concatenate([b[:5], a[:6]])  # the copy starts at query 5 s with the reference's 0 s
    q_times, r_times = np.arange(len(query)) * 1.0, np.arange(0, 8, 2) * 1.0
    ref = thumbs_of(a[::2])
    sim = np.full((len(q_times), len(r_times)), 0.99)
    wandering = Segment(0.0, 11.0, 0.0, 6.0, 0.99)
    found = pixel_line([thumbs_of(query)], q_times, ref, r_times, wandering, sim, 0.5, 1.0, 3)
    assert found is not None
    line, _ = found
    assert line.ref_start >= 0.0 and line.query_start >= 5.0


def test_judgement_levels():
    """Above `high`: a copy; under `low`: not one; between, a still reference or too few
    frames: left to the embedding's test."""
    seg = Segment(0.0, 4.0, 0.0, 4.0, 0.9)
    for agreement, change, expected in [
        (0.9, 10.0, "kept"),
        (0.25, 10.0, "undecided"),
        (0.05, 10.0, "dropped"),
        (0.05, 1.0, "undecided"),  # the reference holds still: no judgement
    ]:
        kept, undecided = judge_by_pixels(
            [seg], lambda s, a=agreement, c=change: PixelMotion(a, c, 8), PixelRules(0.2, 0.3, 3.0)
        )
        got = "kept" if kept else "undecided" if undecided else "dropped"
        assert got == expected, (agreement, change)
    kept, undecided = judge_by_pixels([seg], lambda s: None, PixelRules(0.2, 0.3, 3.0))
    assert undecided == [seg] and kept == []


def test_the_library_keeps_thumbnails_beside_the_vectors(tmp_path):
    from vq.index.library import Library, LibraryConfig
    from vq.index.store import LibraryError

    config = LibraryConfig(model="m", model_sha256="0" * 64, dim=4, fps=2.0)
    vectors = np.eye(4, dtype=np.float32)[:3]
    thumbs = np.arange(3 * 32 * 32, dtype=np.int64).reshape(3, 32, 32).astype(np.uint8)
    with Library.create(tmp_path / "lib", config) as lib:
        with_thumbs = lib.add_video("a", vectors, np.arange(3) / 2.0, thumbs=thumbs)
        without = lib.add_video("b", vectors, np.arange(3) / 2.0)
        with pytest.raises(LibraryError):
            lib.add_video("c", vectors, np.arange(3) / 2.0, thumbs=thumbs[:2])
        assert lib.video_by_name("c") is None  # nothing half-written
    with Library.open(tmp_path / "lib") as lib:
        np.testing.assert_array_equal(lib.thumbs_of(with_thumbs.id), thumbs)
        assert lib.thumbs_of(without.id) is None


@pytest.fixture(scope="module")
def fixed_camera(shared_data, tmp_path_factory):
    """A fixed camera's two moments as files at 10 fps: the reference (A), a copy of 4 s of
    it spliced between 3 s stretches of another moment (B), and B alone (a look-alike)."""
    from vq.media.encode import write_video

    folder = tmp_path_factory.mktemp("camera")
    bg = room(shared_data)
    a, b = walkers(bg, 8.0, 10.0, seed=1), walkers(bg, 10.0, 10.0, seed=3)
    paths = {
        "reference": folder / "moment_a.mp4",
        "partial": folder / "partial.mp4",
        "other": folder / "moment_b.mp4",
    }
    write_video(paths["reference"], a, 10, crf=18)
    write_video(paths["partial"], np.concatenate([b[:30], a[20:60], b[60:90]]), 10, crf=18)
    write_video(paths["other"], b, 10, crf=18)
    return paths


def test_vq_run_tells_a_copy_of_a_fixed_camera_from_another_moment(fixed_camera, tmp_path, capsys):
    from vq.cli.app import main

    lib = tmp_path / "lib"
    assert main(["index", "create", str(lib)]) == 0
    assert main(["run", str(fixed_camera["reference"]), "--library", str(lib)]) == 0
    capsys.readouterr()
    code, records = run_json(
        capsys,
        [
            "run",
            str(fixed_camera["partial"]),
            str(fixed_camera["other"]),
            "--library",
            str(lib),
            "--no-ingest",
            "--json",
        ],
    )
    assert code == 0
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in records}
    (match,) = by_name["partial.mp4"]["matches"]
    (segment,) = match["segments"]
    # The copied stretch is query 3-7 s, reference 2-6 s; the other moments around it are not.
    assert segment["query_start"] == pytest.approx(3.0, abs=1.0)
    assert segment["query_end"] == pytest.approx(7.0, abs=1.0)
    assert segment["ref_start"] - segment["query_start"] == pytest.approx(-1.0, abs=0.6)
    assert segment["pixels"] > 0.35
    assert by_name["moment_b.mp4"]["matches"] == []


def test_a_test_card_with_a_flickering_counter_is_still_found(shared_data, tmp_path, capsys):
    """A card that holds still but for a box of noise redrawn every frame (a counter, a
    noise patch): its pixels change, yet a copy sampled a frame off does not reproduce the
    noise. The embedding calls such a reference a still, and then the pixels do not judge."""
    from vq.cli.app import main
    from vq.media.encode import write_video

    rng = np.random.default_rng(0)
    card = np.zeros((180, 320, 3), np.uint8)
    for i, colour in enumerate(
        [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0), (0, 0, 192)]
    ):
        card[:, i * 46 : (i + 1) * 46] = colour
    frames = np.repeat(card[None], 240, axis=0)  # 8 s at 30 fps
    frames[:, 130:160, 30:90] = rng.integers(0, 256, (240, 30, 60, 3), dtype=np.uint8)  # the counter
    reference, copy = tmp_path / "card.mp4", tmp_path / "copy.mp4"
    write_video(reference, frames, 30, crf=18)
    write_video(copy, frames[7:], 30, crf=28)  # re-encoded, a quarter second in
    lib = tmp_path / "lib"
    assert main(["index", "create", str(lib)]) == 0
    assert main(["run", str(reference), "--library", str(lib)]) == 0
    capsys.readouterr()
    code, records = run_json(capsys, ["run", str(copy), "--library", str(lib), "--no-ingest", "--json"])
    assert code == 0
    (match,) = records[0]["matches"]
    assert all("pixels" not in s for s in match["segments"])
