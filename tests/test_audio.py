"""vq.audio features equal python_speech_features; vq.media.audio decodes robustly."""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import make_clip, tone

from vq.audio import FeatureConfig, delta, fbank, features, logfbank, mfcc, standardize
from vq.errors import MediaError
from vq.media.audio import decode_audio
from vq.media.encode import write_audio

psf = pytest.importorskip("python_speech_features")


@pytest.fixture(scope="module")
def speechlike(shared_data) -> np.ndarray:
    """Real audio (a film soundtrack) as 16-bit-scaled samples, as the library expects."""
    return decode_audio(shared_data / "videos" / "chaplin.mp4").astype(np.float64) * 32767


@pytest.mark.parametrize("nfilt, nfft", [(26, 512), (40, 512), (64, 1024)])
def test_logfbank_equals_python_speech_features(speechlike, nfilt, nfft):
    ours = logfbank(speechlike, FeatureConfig(nfilt=nfilt, nfft=nfft))
    ref = psf.logfbank(speechlike, 16000, nfilt=nfilt, nfft=nfft)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-4


def test_mfcc_and_deltas_equal_python_speech_features(speechlike):
    ours = mfcc(speechlike)
    ref = psf.mfcc(speechlike, 16000)
    assert np.max(np.abs(ours - ref)) < 1e-4
    assert np.max(np.abs(delta(ours, 2) - psf.delta(ref, 2))) < 1e-4
    assert np.max(np.abs(delta(ours, 3) - psf.delta(ref, 3))) < 1e-4
    feat, energy = fbank(speechlike)
    ref_feat, ref_energy = psf.fbank(speechlike, 16000)
    np.testing.assert_allclose(feat, ref_feat, rtol=1e-9)
    np.testing.assert_allclose(energy, ref_energy, rtol=1e-9)


def test_silence_tone_and_short_signals(speechlike):
    silent = np.concatenate([np.zeros(8000), tone(0.5, 16000) * 32767, np.zeros(3000)])
    assert np.max(np.abs(logfbank(silent) - psf.logfbank(silent, 16000))) < 1e-4
    short = speechlike[:300]  # shorter than one frame: one zero-padded frame
    assert logfbank(short).shape == psf.logfbank(short, 16000).shape == (1, 26)
    shared = dict(
        winlen=0.032,
        winstep=0.016,
        lowfreq=100,
        highfreq=3500,
        preemph=0.95,
        numcep=20,
        nfilt=30,
        ceplifter=0,
    )
    custom = FeatureConfig(sample_rate=8000, append_energy=False, **shared)
    ref = psf.mfcc(speechlike[:40000], 8000, appendEnergy=False, **shared)
    assert np.max(np.abs(mfcc(speechlike[:40000], custom) - ref)) < 1e-4


def test_pipeline_stacks_deltas_and_standardises(speechlike):
    out = features(speechlike, "logfbank", deltas=2)
    assert out.shape[1] == 26 * 3 and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0, dtype=np.float64), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0, dtype=np.float64), 1, atol=1e-3)
    raw = features(speechlike, "mfcc", deltas=1, normalise=False, dtype=np.float64)
    np.testing.assert_allclose(
        standardize(raw), features(speechlike, "mfcc", deltas=1, dtype=np.float64), atol=1e-9
    )
    assert features(speechlike, "mfcc", deltas=0, normalise=False).shape == mfcc(speechlike).shape
    with pytest.raises(ValueError):
        features(speechlike, "spectrogram")
    with pytest.raises(ValueError):
        logfbank(np.zeros((2, 100)))


@pytest.mark.parametrize("kind, nfilt", [("logfbank", 40), ("mfcc", 26)])
def test_pipeline_equals_python_speech_features(speechlike, kind, nfilt):
    """The seed's whole pipeline (base, deltas, delta-deltas, standardisation), float32 and
    float64, over a clip long enough to be cut into chunks on several threads."""
    signal = np.resize(speechlike, 16000 * 25)
    base = psf.logfbank(signal, 16000, nfilt=nfilt) if kind == "logfbank" else psf.mfcc(signal, 16000)
    d1 = psf.delta(base, 2)
    ref = np.concatenate([base, d1, psf.delta(d1, 2)], axis=1)
    ref = (ref - ref.mean(0)) / (ref.std(0) + 1e-8)
    for dtype in (np.float32, np.float64):
        ours = features(signal, kind, FeatureConfig(nfilt=nfilt), dtype=dtype)
        assert ours.dtype == dtype and ours.shape == ref.shape
        assert np.max(np.abs(ours - ref)) < 1e-4


def test_integer_pcm_and_config_changes_between_calls(speechlike):
    pcm = np.clip(np.round(speechlike[:48000]), -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(logfbank(pcm), logfbank(pcm.astype(np.float64)))
    # A longer frame, then the default again: scratch buffers sized for one config must
    # not leak into the next (the FFT's zero padding in particular).
    long_frames = FeatureConfig(winlen=0.03, nfft=512)
    assert np.max(np.abs(logfbank(pcm, long_frames) - psf.logfbank(pcm, 16000, winlen=0.03))) < 1e-4
    assert np.max(np.abs(logfbank(pcm) - psf.logfbank(pcm, 16000))) < 1e-4
    with pytest.raises(ValueError, match="real numbers"):
        logfbank(np.array(["a", "b"]))
    assert logfbank(np.zeros(0)).shape == (1, 26)


def test_decode_audio_is_mono_16k(tmp_path):
    src = write_audio(tmp_path / "tone.wav", tone(2.0, 44100), 44100)
    samples = decode_audio(src)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 32000) < 400
    clip = make_clip(tmp_path / "clip.mp4", n=50, audio=True)
    assert abs(len(decode_audio(clip, max_seconds=1.0)) - 16000) <= 1
    with pytest.raises(MediaError, match="no audio stream"):
        decode_audio(make_clip(tmp_path / "silent.mp4", n=10))
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(40))
    with pytest.raises(MediaError):
        decode_audio(tmp_path / "junk.wav")


def test_features_in_a_forked_child_after_the_parent_used_the_pool(speechlike):
    """Worker processes forked from a parent that already computed features (the pool's
    threads do not survive a fork) must not hang."""
    import multiprocessing as mp

    signal = np.resize(speechlike, 16000 * 12)  # several chunks: the pool is used
    expected = features(signal, "mfcc")
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(features, (signal, "mfcc")).get(timeout=60)
    np.testing.assert_array_equal(got, expected)
