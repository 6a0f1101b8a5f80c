"""Bad input is normal input: every broken file gives one line, a non-zero exit, no hang."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest
from media_factory import make_clip, tone

from vq.cli.app import main
from vq.errors import MediaError
from vq.media import open_video, probe
from vq.media.encode import write_audio


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Broken files made here: the bad-input corpus the issue asks to keep."""
    d = tmp_path_factory.mktemp("bad")
    good = make_clip(d / "good.mp4", n=50)
    stream_mkv = make_clip(d / "stream.mkv", n=100, gop=10, scenecut=False)
    files = {
        "empty": d / "empty.mp4",
        "random": d / "random.mp4",
        "truncated_mp4": d / "truncated.mp4",
        "text": d / "notes.txt",
        "audio_only": write_audio(d / "voice.m4a", tone(1.0), 44100),
    }
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(np.random.default_rng(0).bytes(50_000))
    files["truncated_mp4"].write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])  # moov lost
    files["text"].write_text("not a video\n")
    data = bytearray(stream_mkv.read_bytes())
    files["truncated_mkv"] = d / "truncated.mkv"
    files["truncated_mkv"].write_bytes(bytes(data[: len(data) * 2 // 3]))
    corrupt = bytearray(data)
    rng = np.random.default_rng(1)
    for pos in rng.integers(len(corrupt) // 3, len(corrupt) * 2 // 3, 40):
        corrupt[pos : pos + 64] = rng.bytes(64)  # garbage over packets in the middle
    files["corrupt_middle"] = d / "corrupt.mkv"
    files["corrupt_middle"].write_bytes(bytes(corrupt))
    wrong_ext = d / "clip.txt"
    wrong_ext.write_bytes(good.read_bytes())
    files["wrong_extension"] = wrong_ext
    return files


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty", "empty file"),
        ("random", "cannot open"),
        ("truncated_mp4", "cannot open"),
        ("text", "cannot open"),
        ("audio_only", "no video stream (streams: audio)"),
    ],
)
def test_unusable_files_raise_one_line_media_errors(corpus, name, message):
    with pytest.raises(MediaError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        probe(corpus[name])
    assert "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(MediaError, match="no such file"):
        open_video("/nonexistent/clip.mp4")


def test_damaged_but_partly_readable_files_still_decode(corpus):
    with open_video(corpus["truncated_mkv"]) as v:
        frames = v.sample(fps=2.0)
    assert 0 < len(frames) <= 8 and frames.images.std() > 1
    with open_video(corpus["corrupt_middle"]) as v:
        frames = v.sample(fps=2.0, fast=False)
    assert len(frames) >= 4  # the run goes on past the damage
    with open_video(corpus["wrong_extension"]) as v:
        assert v.info.codec == "h264"


def test_absurd_dimensions_are_refused_before_decoding(corpus):
    with pytest.raises(MediaError, match="exceed the 1,000-pixel limit"):
        open_video(corpus["wrong_extension"], max_pixels=1000)


def test_broken_audio_and_missing_duration_do_not_stop_video(shared_data):
    with open_video(shared_data / "videos" / "video_with_failing_audio.mp4") as v:
        assert len(v.sample(fps=1.0)) >= 10
    info = probe(shared_data / "videos" / "no_duration.webm")
    assert info.duration is not None and 4 < info.duration < 6  # recovered from packets


def test_silent_network_source_times_out():
    """A server that accepts and never answers: the open gives up, it does not hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    start = time.monotonic()
    with pytest.raises(MediaError, match="cannot open"):
        open_video(f"http://127.0.0.1:{port}/clip.mp4", timeout=(1.0, 1.0))
    assert time.monotonic() - start < 15
    server.close()


def test_cli_reports_each_bad_file_and_goes_on(corpus, capsys):
    paths = [str(corpus[k]) for k in ("empty", "random", "wrong_extension", "audio_only")]
    code = main(["probe", *paths, "--json"])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 6
    assert [r["status"] for r in records] == ["error", "error", "ok", "error"]
    assert "Traceback" not in err
    code = main(["probe", str(corpus["random"])])
    out, err = capsys.readouterr()
    assert code == 6 and err.count("\n") == 1 and err.startswith("error: ")
