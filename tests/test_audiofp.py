"""The learned audio fingerprint: window features and offset matching (pure), and
`vq train audiofp` (smoke) -> export -> the `AudioFingerprinter` stage -> `vq eval audio`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vq.cli.app import main
from vq.stages.audio_fingerprint import FRAMES, HOP_FRAMES, WINDOW_HOP, log_mel, match, mel_windows

from conftest import needs_train


def test_windows_are_one_second_every_half_second_of_log_mel():
    x = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.1
    mel = log_mel(x)
    assert mel.shape == (499, 64)
    windows = mel_windows(mel)
    assert windows.shape == (1 + (499 - FRAMES) // HOP_FRAMES, FRAMES, 64)
    np.testing.assert_array_equal(windows[3], mel[3 * HOP_FRAMES : 3 * HOP_FRAMES + FRAMES])
    assert mel_windows(mel[:30]).shape == (1, FRAMES, 64)  # a short sound is one padded window


def test_match_finds_the_offset_and_tolerates_a_window_of_drift():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((40, 16))
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    score, offset = match(ref[10:26], ref)
    assert score == pytest.approx(1.0) and offset == pytest.approx(10 * WINDOW_HOP)
    drifted = ref[[10, 11, 12, 14, 15, 16, 17, 19]]  # a faster copy skips windows
    score, offset = match(drifted, ref)
    assert score == pytest.approx(1.0) and 10 * WINDOW_HOP <= offset <= 12 * WINDOW_HOP
    other = rng.standard_normal((16, 16))
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    assert match(other, ref)[0] < 0.6
    assert match(np.zeros((0, 16)), ref) == (0.0, 0.0)


@pytest.fixture(scope="module")
def audiofp_run(tmp_path_factory):
    if not __import__("conftest").HAS_TRAIN:
        pytest.skip("needs the 'train' extra")
    from vq.media.encode import write_audio

    work = tmp_path_factory.mktemp("audiofp")
    songs = work / "songs"
    songs.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    for k in range(6):  # song0, 4, 5 are held out at 0.5 (a hash of the name)
        notes = 220.0 * 2 ** (rng.integers(0, 24, 48) / 12)
        song = np.concatenate([np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t) for f in notes])
        write_audio(songs / f"song{k}.wav", (0.25 * song).astype(np.float32), 16000)
    args = ["train", "audiofp", "--smoke", "--data", str(songs), "--out", str(work / "run")]
    assert main([*args, "--set", "holdout=0.5"]) == 0
    assert main(["export", "onnx", str(work / "run"), "--out", str(work / "art")]) == 0
    return work


@needs_train
def test_smoke_training_evaluates_beside_the_landmarks_on_held_out_recordings(audiofp_run):
    lines = (audiofp_run / "run" / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines if "eval/holdout_learned_tpr" in line][-1]
    for name in (
        "learned_tpr",
        "learned_top1",
        "landmarks_tpr",
        "landmarks_searched_tpr",
        "learned_family_bed_tpr",
    ):
        assert 0.0 <= metrics[f"eval/holdout_{name}"] <= 1.0
    facts = json.loads((audiofp_run / "run" / "config.json").read_text())["data"]
    assert sorted(facts["holdout_recordings"]) == ["song0.wav", "song4.wav", "song5.wav"]


@needs_train
def test_the_exported_model_gives_unit_vectors_and_runs_in_eval_audio(audiofp_run, tmp_path):
    from vq.stages.audio_fingerprint import AudioFingerprinter

    stage = AudioFingerprinter(str(audiofp_run / "art"))
    x = np.random.default_rng(1).standard_normal(16000 * 3).astype(np.float32) * 0.1
    vectors = stage.vectors(x)
    assert vectors.shape == (4, stage.card.outputs[0].shape[-1])  # windows at 0, 0.5, 1, 1.5 s
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    out = tmp_path / "audio.json"
    args = ["eval", "audio", "--sources", str(audiofp_run / "songs"), "--per-source", "1", "--seconds", "4"]
    assert main([*args, "--baselines", "", "--learned", str(audiofp_run / "art"), "--json", str(out)]) == 0
    methods = json.loads(out.read_text())["methods"]
    assert {"landmarks", "landmarks+speed", stage.name} <= set(methods)
