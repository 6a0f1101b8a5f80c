"""vq.synth: every family renders, boxes and time mappings are right, seeds repeat."""

from __future__ import annotations

import json

import numpy as np
import pytest
from media_factory import clip_frames, frame_index, make_clip

from vq.media import open_video
from vq.synth import (
    FAMILIES,
    Border,
    FrameRate,
    Speed,
    Trim,
    apply_spatial,
    random_edit,
    render,
    segments_from,
    track_box,
)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", n=100, audio=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_renders_a_playable_copy(source, tmp_path, family):
    rng = np.random.default_rng(hash(family) % 1000)
    edit = random_edit(family, rng, (160, 96), background=np.full((120, 200, 3), 60, np.uint8))
    record = render(source, tmp_path / "out.mp4", [edit])
    with open_video(tmp_path / "out.mp4") as v:
        info = v.info
        frames = v.sample(fps=1.0)
    assert (info.width, info.height) == record.size
    x0, y0, x1, y1 = record.box
    assert 0 <= x0 < x1 <= info.width and 0 <= y0 < y1 <= info.height
    assert abs(info.duration - record.duration) < 0.15 and info.has_audio
    assert len(frames) >= 1 and frames.images.std() > 1
    json.dumps(record.to_json())  # records are plain JSON


def test_speed_trim_and_frame_rate_map_time(source, tmp_path):
    record = render(source, tmp_path / "fast.mp4", [Trim(1.0, 3.0), Speed(2.0)])
    assert record.segments == [pytest.approx((0.0, 1.0, 1.0, 3.0), abs=0.05)]
    with open_video(tmp_path / "fast.mp4") as v:
        frames = v.sample(times=[0.0, 0.52])
    assert [frame_index(im) for im in frames.images] == [25, 51]  # t_out 0.52 shows source 2.04 s
    slow = render(source, tmp_path / "slow.mp4", [Speed(0.5)])
    assert slow.duration == pytest.approx(8.0, abs=0.05)
    ten = render(source, tmp_path / "ten.mp4", [FrameRate(10.0)])
    with open_video(tmp_path / "ten.mp4") as v:
        assert v.info.fps == pytest.approx(10.0)
        assert frame_index(v.sample(times=[1.0]).images[0]) == 25
    assert ten.duration == pytest.approx(4.0, abs=0.11)


def test_boxes_track_through_stacked_edits():
    blur_fill = random_edit("blur_fill", np.random.default_rng(0), (200, 116))
    edits = [Border(10, 10, 20, 20, color=(255, 255, 255)), blur_fill]
    box, size = track_box(edits, (160, 96))
    image = apply_spatial(edits, clip_frames(1)[0])
    assert image.shape[:2] == (size[1], size[0])
    # the white bars sit inside the blur-fill window, around the picture
    inner = image[box[1] : box[3], box[0] : box[2]]
    assert inner.shape[0] > 40 and inner.mean() > 60


def test_edits_are_deterministic():
    a = random_edit("bullet_comments", np.random.default_rng(5), (160, 96))
    b = random_edit("bullet_comments", np.random.default_rng(5), (160, 96))
    img = clip_frames(1)[0]
    np.testing.assert_array_equal(a(img, 1.25), b(img, 1.25))
    n1 = random_edit("noise", np.random.default_rng(1), (160, 96))
    np.testing.assert_array_equal(n1(img, 0.5), n1(img, 0.5))
    assert not np.array_equal(n1(img, 0.5), n1(img, 0.54))


def test_segments_split_at_jumps():
    out = np.arange(0, 4, 0.5)
    src = np.array([10, 10.5, 11, 11.5, 30, 30.5, 31, 31.5])
    assert segments_from(out, src, 2.0) == [(0.0, 2.0, 10.0, 12.0), (2.0, 4.0, 30.0, 32.0)]


def test_every_family_fits_any_source_shape():
    """Fuzz: portrait, landscape, tiny and odd sources; the output always holds its box."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        w, h = int(rng.integers(40, 400)), int(rng.integers(40, 400))
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        background = rng.integers(
            0, 255, (int(rng.integers(60, 300)), int(rng.integers(60, 300)), 3), dtype=np.uint8
        )
        edit = random_edit(str(rng.choice(FAMILIES)), rng, (w, h), background=background)
        out = apply_spatial([edit], image, 1.0)
        box, size = track_box([edit], (w, h))
        assert out.shape[:2] == (size[1], size[0]), edit.describe()
        assert 0 <= box[0] < box[2] <= size[0] and 0 <= box[1] < box[3] <= size[1], edit.describe()


def test_camera_moves_stay_inside_the_photo_and_repeat_by_seed():
    from vq.synth.motion import move_frames, random_move

    photo = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    for seed in range(20):
        move = random_move((500, 300), (160, 90), np.random.default_rng(seed))
        for p in (0.0, 0.3, 1.0):
            x0, y0, x1, y1 = move.window(p)
            assert 0 <= x0 < x1 <= 500 + 1e-6 and 0 <= y0 < y1 <= 300 + 1e-6
            assert abs((x1 - x0) / (y1 - y0) - 160 / 90) < 1e-6  # the clip's aspect, always
    frames = list(move_frames(photo, random_move((500, 300), (160, 90), np.random.default_rng(3)), 5))
    again = list(move_frames(photo, random_move((500, 300), (160, 90), np.random.default_rng(3)), 5))
    assert len(frames) == 5 and frames[0].shape == (90, 160, 3)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    assert not np.array_equal(frames[0], frames[-1])  # the camera moved
