"""Audio edits (`vq.synth.audio`), landmark fingerprints (`vq.audio.landmarks`) and
`vq eval audio`, on the sample videos' real soundtracks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vq.audio.landmarks import fingerprint, match, match_speeds, speed_fingerprints
from vq.synth import audio as A

RATE = 16000


@pytest.fixture(scope="module")
def tracks(shared_data):
    from vq.media.audio import decode_audio

    videos = shared_data / "videos"
    return decode_audio(videos / "big_buck_bunny_0_30.webm", RATE), decode_audio(videos / "chaplin.mp4", RATE)


def test_edits_do_what_they_say(tracks):
    x = tracks[0][: RATE * 4]
    power = lambda v: float(np.mean(np.square(v, dtype=np.float64)))  # noqa: E731
    assert power(A.gain(x, -6.0)) == pytest.approx(power(x) / 10**0.6, rel=0.02)
    noisy = A.add_noise(x, 10.0, seed=1)
    assert 10 * np.log10(power(x) / power(noisy - x)) == pytest.approx(10.0, abs=0.5)
    assert np.array_equal(noisy, A.add_noise(x, 10.0, seed=1))  # seeded
    assert len(A.change_speed(x, 1.25)) == round(len(x) / 1.25)
    tilted = A.equalize(x, RATE, low_db=0.0, high_db=-20.0)
    hi = lambda v: np.abs(np.fft.rfft(v))[np.fft.rfftfreq(len(v), 1 / RATE) > 4000].sum()  # noqa: E731
    assert hi(tilted) < 0.2 * hi(x)
    for codec, kbps in (("aac", 32), ("opus", 16), ("mp3", 32)):
        y = A.reencode(x, RATE, codec, kbps)
        assert len(y) == len(x) and np.corrcoef(x, y)[0, 1] > 0.8, codec
    rng = np.random.default_rng(0)
    chain = A.random_audio_chain(rng, "stack", n_beds=2)
    assert [e.kind for e in chain][-1] == "reencode" and len(chain) == 4
    with pytest.raises(ValueError, match="unknown audio edit family"):
        A.random_audio_chain(rng, "reverb", 0)


def test_landmarks_find_an_edited_soundtrack_where_it_came_from(tracks):
    bbb, chaplin = tracks
    ref, other = fingerprint(bbb), fingerprint(chaplin)
    crop = bbb[RATE * 10 : RATE * 18]
    for edited in (
        crop,
        A.add_noise(crop, 5.0, seed=2, pink=True),
        A.reencode(A.equalize(crop, RATE, 6.0, -9.0), RATE, "opus", 16),
    ):
        m, wrong = match(fingerprint(edited), ref), match(fingerprint(edited), other)
        assert m.offset == pytest.approx(10.0, abs=0.1) and m.votes >= 40
        assert m.score > 5 * max(wrong.score, 1e-3)
    # Under a music bed 6 dB down, the bed's own recording is (rightly) found too, weaker.
    bedded = fingerprint(A.add_bed(crop, chaplin, -6.0))
    m, bed = match(bedded, ref), match(bedded, other)
    assert m.offset == pytest.approx(10.0, abs=0.1) and m.score > 2 * bed.score > 0
    # Speed: plain landmarks lose a 7 % faster copy; the speed search finds it and its speed.
    fast = A.change_speed(crop, 1.07)
    assert match(fingerprint(fast), ref).votes < 15
    found = match_speeds(speed_fingerprints(fast), ref)
    assert found.speed == pytest.approx(1.07, abs=0.011) and found.offset == pytest.approx(10.0, abs=0.2)
    assert found.score > 5 * match_speeds(speed_fingerprints(fast), other).score
    silent = fingerprint(np.zeros(RATE * 3, np.float32))
    assert match(silent, ref).votes == 0  # silence has no landmarks, matches nothing


def test_silence_room_tone_and_stationary_sounds_match_nothing():
    """Two different recordings of hum, of a test tone, of quiet room noise: none is a copy
    of the other (no landmarks, or only stop-hashes dropped as stationary)."""
    t = np.arange(RATE * 20) / RATE

    def noise(seed: int, level: float) -> np.ndarray:
        return level * np.random.default_rng(seed).standard_normal(len(t))

    kinds = {
        "hum": lambda s: (
            0.05 * np.sin(2 * np.pi * 50 * t) + 0.03 * np.sin(2 * np.pi * 100 * t) + noise(s, 0.002)
        ),
        "tone": lambda s: 0.2 * np.sin(2 * np.pi * 1000 * t) + noise(s, 0.001),
        "room": lambda s: noise(s, 0.003),
    }
    for name, make in kinds.items():
        one, other = make(1).astype(np.float32), make(2).astype(np.float32)
        m = match(fingerprint(other[RATE * 3 : RATE * 11]), fingerprint(one))
        assert m.votes < 10, (name, m)


def test_eval_audio_runs_on_two_soundtracks(shared_data, tmp_path, capsys):
    from vq.cli.app import main

    videos = shared_data / "videos"
    folder = tmp_path / "sources"
    folder.mkdir()
    for name in ("big_buck_bunny_0_30.webm", "chaplin.mp4", "example.mp4"):  # example.mp4 has no sound
        shutil.copy(videos / name, folder / name)
    baselines = "chromaprint" if shutil.which("fpcalc") else ""
    out = tmp_path / "audio.json"
    args = ["eval", "audio", "--sources", str(folder), "--per-source", "3", "--seconds", "4"]
    assert main([*args, "--baselines", baselines, "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "example.mp4" in captured.err  # skipped, and says so
    data = json.loads(out.read_text())
    assert len(data["sources"]) == 2 and len(data["queries"]) == 6
    speedy = data["methods"]["landmarks+speed"]
    assert speedy["top1"] >= 5 / 6
    assert set(speedy["families"]) == {q["family"] for q in data["queries"]}
    assert main(["eval", "audio", "--sources", str(folder / "chaplin.mp4")]) != 0  # one source is not enough


def test_the_library_audio_index_finds_the_same_whether_built_at_once_or_grown():
    """100 videos added one by one (runs merged into tiers along the way) and built in one
    sort give the same hits."""
    from vq.audio.landmarks import Fingerprint
    from vq.index.audio import AudioIndex

    rng = np.random.default_rng(0)
    fps = []
    for video in range(100):
        hashes = np.sort(rng.integers(0, 1 << 30, 400))
        fps.append((video, Fingerprint(hashes, rng.integers(0, 2000, 400).astype(np.int32), 30.0)))
    grown = AudioIndex()
    for video, fp in fps:
        grown.add(video, fp)
    built = AudioIndex.build(fps)
    assert len(grown) == len(built) == 40_000
    source = fps[37][1]
    query = Fingerprint(source.hashes[::2], source.times[::2] - 100, 10.0)  # 100 frames later
    for index in (grown, built):
        (hit,) = index.search(query, min_votes=20, min_score=0.03)
        assert hit.video == 37 and hit.votes == 200 and hit.offset == pytest.approx(100 * 256 / 16000)
    assert built.search(query, 20, 0.03, skip={37}) == []


def test_audio_segments_reach_the_clip_edges_within_a_gap_and_never_past_them():
    from vq.index.audio import MAX_GAP, fit_to_clips
    from vq.match.segments import Segment

    # first anchor 0.8 s in, last one 0.4 s short of the end: both ends reach the clips'
    seg = fit_to_clips(Segment(0.8, 5.6, 2.3, 7.1, 0.1), query_seconds=6.0, ref_seconds=20.0)
    assert (seg.query_start, seg.query_end, seg.ref_start, seg.ref_end) == pytest.approx((0.0, 6.0, 1.5, 7.5))
    # the reference starts later than the query's sound can: it starts where they line up
    seg = fit_to_clips(Segment(3.0, 6.4, 0.5, 3.9, 0.1), query_seconds=6.0, ref_seconds=20.0)
    assert seg.query_start == pytest.approx(2.5) and seg.ref_start == pytest.approx(0.0)
    assert seg.query_end == 6.0  # the anchors' look-ahead ran past the query's end
    # a stretch that starts further in than the gap keeps its start
    far = 1.0 + MAX_GAP + 0.5
    seg = fit_to_clips(Segment(far, 9.0, far, 9.0, 0.1), query_seconds=30.0, ref_seconds=None)
    assert (seg.query_start, seg.query_end) == (far, 9.0)


def test_sound_segments_join_the_pictures_only_where_the_picture_has_none():
    from vq.match.segments import Segment, only_new

    picture = [Segment(0.0, 10.0, 0.0, 10.0, 0.95)]
    sound = [
        Segment(2.0, 9.0, 2.0, 9.0, 0.3, by_sound=True),  # inside the picture's: the same stretch
        Segment(8.0, 20.0, 8.0, 20.0, 0.3, by_sound=True),  # mostly beyond it: the sound's own
        Segment(30.0, 40.0, 30.0, 40.0, 0.3, by_sound=True),
    ]
    assert only_new(sound, picture) == sound[1:]
    assert Segment(1.0, 2.0, 1.0, 2.0, 0.5, by_sound=True).to_json()["by_sound"] is True
    assert "by_sound" not in picture[0].to_json()


def test_the_chance_of_agreement_is_a_poisson_tail_over_the_offsets_and_videos():
    from math import exp, lgamma, log, log10

    from vq.audio.landmarks import log10_chance

    rate = 3 * 18 / 631
    tail = sum(exp(-rate + k * log(rate) - lgamma(k + 1)) for k in range(16, 300))
    assert log10_chance(16, 18, 631, 16) == pytest.approx(log10(tail * 631 * 16), abs=1e-6)
    # more votes from the same collisions: less likely; more videos tried: more likely
    assert log10_chance(20, 18, 631, 16) < log10_chance(16, 18, 631, 16) < log10_chance(16, 18, 631, 1600)
    assert log10_chance(1, 50, 100, 10) == 0.0  # a vote or two is what chance gives: no evidence
    assert log10_chance(0, 0, 100) == 0.0
