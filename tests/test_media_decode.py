"""vq.media: probing and time-based sampling on generated clips and the shared clips."""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import frame_index, make_clip

from vq.errors import MediaError
from vq.media import open_video, probe


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "short_gop": make_clip(d / "short_gop.mp4", n=100, gop=25, scenecut=False, audio=True),
        "long_gop": make_clip(d / "long_gop.mp4", n=250, gop=250, scenecut=False),
        "odd": make_clip(d / "odd.webm", n=20, size=(161, 97), codec="vp9"),
        "hevc10": make_clip(d / "hevc10.mp4", n=20, codec="hevc", pix_fmt="yuv420p10le"),
        "av1": make_clip(d / "av1.mp4", n=20, codec="av1"),
        "rot90": make_clip(d / "rot90.mp4", n=10, rotation=90),
        "vfr": make_clip(d / "vfr.mp4", n=8, times=[0, 0.1, 0.15, 0.5, 0.6, 1.0, 1.05, 1.5]),
    }


def test_probe_reports_stream_facts(clips):
    info = probe(clips["short_gop"])
    assert (info.codec, info.width, info.height, info.fps) == ("h264", 160, 96, 25.0)
    assert info.duration == pytest.approx(4.0, abs=0.05)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.keyframe_interval == pytest.approx(1.0, abs=0.05)
    assert info.bit_depth == 8 and info.rotation == 0
    assert probe(clips["hevc10"]).bit_depth == 10
    assert probe(clips["av1"]).width == 160
    assert probe(clips["long_gop"]).has_audio is False


def test_one_fps_returns_the_right_frames(clips):
    with open_video(clips["long_gop"]) as v:
        frames = v.sample(fps=1.0)
    assert frames.images.shape == (10, 96, 160, 3) and frames.images.dtype == np.uint8
    np.testing.assert_allclose(frames.times, np.arange(10), atol=0.1)
    # the pixels are those of the frame at each returned timestamp
    for image, t in zip(frames.images, frames.times, strict=True):
        assert frame_index(image, 250) == pytest.approx(round(t * 25), abs=1)
    assert frames.stats["strategy"] == "reference"
    assert frames.stats["decoded"] < 250  # non-reference frames were skipped


def test_keyframe_dense_clips_decode_keyframes_only(clips):
    with open_video(clips["short_gop"]) as v:
        frames = v.sample(fps=1.0)
    assert frames.stats["strategy"] == "keyframes"
    assert frames.stats["decoded"] == 4
    np.testing.assert_allclose(frames.times, [0, 1, 2, 3], atol=1e-6)
    assert [frame_index(im, 100) for im in frames.images] == [0, 25, 50, 75]


def test_sparse_samples_seek_over_the_gaps(tmp_path):
    clip = make_clip(tmp_path / "gop2s.mp4", n=300, gop=50, scenecut=False)  # 12 s, 2 s GOP
    with open_video(clip) as v:
        frames = v.sample(times=[0.52, 9.0, 11.0], fast=False)
    assert frames.stats["seeks"] >= 1
    assert frames.stats["decoded"] < 200
    np.testing.assert_allclose(frames.times, [0.52, 9.0, 11.0], atol=1e-6)
    assert [frame_index(im, 300) for im in frames.images] == [13, 225, 275]


def test_count_within_samples_the_middle_of_each_slot(clips):
    with open_video(clips["long_gop"]) as v:
        frames = v.sample(count=5, within=5.0, fast=False)
    np.testing.assert_allclose(frames.times, [0.5, 1.5, 2.5, 3.5, 4.5], atol=0.02)


def test_variable_frame_rate_uses_real_timestamps(clips):
    with open_video(clips["vfr"]) as v:
        frames = v.sample(times=[0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(frames.times, [0.0, 0.5, 1.0, 1.5], atol=1e-6)
    assert [frame_index(im, 8) for im in frames.images] == [0, 3, 5, 7]


def test_scaling_happens_in_conversion(clips):
    with open_video(clips["long_gop"]) as v:
        assert v.sample(fps=1.0, size=(64, 32)).images.shape[1:] == (32, 64, 3)
    with open_video(clips["long_gop"]) as v:
        assert v.sample(fps=1.0, max_side=80).images.shape[1:] == (48, 80, 3)


def test_odd_sizes_and_ten_bit_sources(clips):
    with open_video(clips["odd"]) as v:
        frames = v.sample(fps=5.0)
    assert frames.images.shape[1:] == (97, 161, 3)
    with open_video(clips["hevc10"]) as v:
        frames = v.sample(fps=5.0)
    assert [frame_index(im, 20) for im in frames.images] == [0, 5, 10, 15]
    assert frames.images[0, 0, 0, 0] > 200 and frames.images[0, 0, 0, 1] < 60  # the red marker


def test_rotation_metadata_is_applied_like_ffmpeg(clips):
    """Display matrix 90 deg counter-clockwise: ffmpeg's autorotate puts the top-left
    marker at the bottom-left (checked once against ffmpeg's own output)."""
    info = probe(clips["rot90"])
    assert (info.rotation, info.width, info.height) == (90, 96, 160)
    with open_video(clips["rot90"]) as v:
        image = v.sample(times=[0.0]).images[0]
    assert image.shape == (160, 96, 3)
    red = np.argwhere((image[..., 0] > 200) & (image[..., 1] < 80)).mean(axis=0)
    assert red[0] > 120 and red[1] < 30  # bottom-left


@pytest.mark.parametrize(
    "name",
    [
        "chaplin.mp4",
        "big_buck_bunny_0_30.webm",
        "no_duration.webm",
        "video_with_failing_audio.mp4",
        "smpte-2997.mp4",
        "fire2.mp4",
        "example.mp4",
        "example2.mp4",
        "example3.mp4",
    ],
)
def test_shared_reference_clips_decode(shared_data, name):
    with open_video(shared_data / "videos" / name) as v:
        info = v.info
        frames = v.sample(fps=1.0, max_side=320)
    assert info.duration and info.duration > 1
    assert len(frames) >= int(info.duration) - 1
    assert frames.images.shape[2] <= 320 and frames.images.std() > 1  # real pictures, not blanks
    assert np.all(np.diff(frames.times) > 0)


def test_sampling_arguments_are_checked(clips):
    with open_video(clips["long_gop"]) as v:
        with pytest.raises(MediaError, match="exactly one"):
            v.sample(fps=1.0, count=3)
        with pytest.raises(MediaError, match="fps must be > 0"):
            v.sample(fps=0)
        with pytest.raises(MediaError, match=">= 0"):
            v.sample(times=[-1.0])
        with pytest.raises(MediaError, match="max_frames"):
            v.sample(fps=100.0, max_frames=10)


def test_nvdec_decodes_like_the_cpu(clips):
    """NVDEC through PyAV's CUDA hwaccel, behind the same API (GPU hosts only)."""
    try:
        video = open_video(clips["long_gop"], hw="cuda")
        gpu = video.sample(fps=1.0, fast=False)
    except MediaError as e:
        pytest.skip(f"NVDEC not available here: {e}")
    with open_video(clips["long_gop"]) as v:
        cpu = v.sample(fps=1.0, fast=False)
    np.testing.assert_allclose(gpu.times, cpu.times)
    assert np.abs(gpu.images.astype(int) - cpu.images.astype(int)).mean() < 3


def test_windows_of_consecutive_frames_skip_the_non_reference_frames_between_them(clips, monkeypatch):
    # The quality job's request: exact times, every frame of two windows, loop filter on.
    times = np.concatenate([2.0 + np.arange(16) / 25, 7.0 + np.arange(16) / 25])
    with open_video(clips["long_gop"]) as v:
        frames = v.sample(times=times, fast=False)
    assert frames.stats["strategy"] == "all"
    np.testing.assert_allclose(frames.times, times, atol=1e-6)
    assert [frame_index(im, 250) for im in frames.images] == list(range(50, 66)) + list(range(175, 191))

    # Dropping them changes no pixel: the same request with every frame decoded.
    from vq.media import sampling

    monkeypatch.setattr(sampling.Picker, "can_pick", lambda self, t: True)
    with open_video(clips["long_gop"]) as v:
        every = v.sample(times=times, fast=False)
    assert every.stats["decoded"] == 191  # decoding stops at the last target
    assert frames.stats["decoded"] < 191 - 40, frames.stats  # most B-frames outside the windows skipped
    np.testing.assert_array_equal(every.images, frames.images)
    np.testing.assert_array_equal(every.times, frames.times)


def test_targets_at_the_edge_of_their_tolerance_keep_their_frames(clips, monkeypatch):
    # Slot midpoints over every frame: each tolerance ends almost exactly on a frame time,
    # where a frame within reach must not be dropped as out of reach.
    from vq.media import sampling

    with open_video(clips["long_gop"]) as v:
        frames = v.sample(count=250, fast=False)
    monkeypatch.setattr(sampling.Picker, "can_pick", lambda self, t: True)
    with open_video(clips["long_gop"]) as v:
        every = v.sample(count=250, fast=False)
    assert frames.stats["strategy"] == "all" and len(every.times) == 250  # none lost to rounding
    np.testing.assert_array_equal(every.times, frames.times)
    np.testing.assert_array_equal(every.images, frames.images)


def test_the_last_frame_after_the_only_keyframe_is_decoded(tmp_path):
    """A keyframe and one more frame is not an all-keyframe stream: the gap after the last
    keyframe runs to the end of the last frame, so exact sampling decodes every frame (it
    used to skip to keyframes and return frame 0 twice). A real all-keyframe stream still
    takes the keyframe shortcut."""
    two = make_clip(tmp_path / "two.mp4", n=2)
    assert probe(two).keyframe_interval == pytest.approx(0.08, abs=1e-6)
    with open_video(two) as v:
        frames = v.sample(times=[0.0, 0.04], fast=False)
    assert [frame_index(f) for f in frames.images] == [0, 1] and frames.stats["strategy"] == "all"
    intra = make_clip(tmp_path / "intra.mp4", n=6, gop=1)
    assert probe(intra).keyframe_interval == pytest.approx(0.04, abs=1e-6)
    with open_video(intra) as v:
        frames = v.sample(times=np.arange(6) / 25, fast=False)
    assert [frame_index(f) for f in frames.images] == list(range(6))
    assert frames.stats["strategy"] == "keyframes"
