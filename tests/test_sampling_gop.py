"""Sampling ends on every GOP, frame rate, sample rate and start time, and returns the
right frames.

Property-style: a grid of real H.264 clips (key frames every 1 or 2 s, 12.5 / 24 / 30 fps,
with and without B-frames, starting at 0 or later) and, in half of them, key frames moved
a fraction of a frame to just before a sample boundary at a pts whose float round trip
comes out one tick short. That last pattern is what hung `vq run` on 2 s-GOP phone and
live-stream files at 1 fps: the seek landed one keyframe early, and the loop sought again
forever. Each clip is sampled at 0.5, 1 and 2 fps under a timeout; every frame returned
must be the one shown at its timestamp (the clips carry their frame index in pixels).
"""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import clip_frames, frame_index

from vq.media import open_video
from vq.media.encode import write_video

TICK = 1 / 90000  # the time base of clips written with explicit timestamps
SECONDS = 12


def _truncating_tick_before(base: int, max_back: int) -> int | None:
    """A pts at most `max_back` ticks before `base` whose seconds, divided back by the
    float time base, truncate to the tick below (the bug's trigger)."""
    for back in range(1, max_back):
        pts = base - back
        if int((pts * TICK) / TICK) != pts:
            return pts
    return None


def make_gop_clip(path, fr: float, gop_s: int, bframes: int | None, nudge: bool, start: float):
    n = int(fr * SECONDS)
    gop = round(fr * gop_s)
    times = start + np.arange(n) / fr
    nudged = 0
    if nudge:
        for k in range(gop, n, gop):
            base = round(times[k] / TICK)
            pts = _truncating_tick_before(base, int(0.3 / fr / TICK))  # under a third of a frame
            if pts is not None:
                times[k] = pts * TICK
                nudged += 1
    write_video(path, clip_frames(n), fr, times=times, gop=gop, scenecut=False, bframes=bframes)
    return nudged


CASES = [
    (fr, gop_s, bframes, nudge)
    for fr in (12.5, 24.0, 30.0)
    for gop_s in (1, 2)
    for bframes in (0, None)
    for nudge in (False, True)
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fr, gop_s, bframes, nudge", CASES)
def test_sampling_ends_and_returns_the_frames_shown(tmp_path, fr, gop_s, bframes, nudge):
    start = float(np.random.default_rng(int(fr * 10 + gop_s + 3 * nudge)).choice([0.0, 0.04, 0.3]))
    path = tmp_path / "clip.mp4"
    nudged = make_gop_clip(path, fr, gop_s, bframes, nudge, start)
    if nudge:
        assert nudged >= 1  # the case is really the bug's
    with open_video(path) as video:
        keyframes = len(video.index().key_times)
        for fps in (0.5, 1.0, 2.0):
            frames = video.sample(fps=fps)
            wanted = np.arange(0.0, video.info.duration, 1.0 / fps)
            assert len(frames) >= len(wanted) - 1, (fps, frames.stats)
            assert frames.stats["seeks"] <= keyframes
            targets = wanted[np.argmin(np.abs(wanted[:, None] - frames.times[None, :]), axis=0)]
            assert np.all(np.abs(frames.times - targets) <= 0.5 / fps + 1e-6)
            shown = np.rint(frames.times * fr).astype(int)  # frame i is displayed at i / fr (from 0)
            read = [frame_index(image) for image in frames.images]
            assert read == shown.tolist(), (fps, frames.stats)
