"""`vq probe` and `vq frames` end to end."""

from __future__ import annotations

import json

import numpy as np
from media_factory import frame_index, make_clip
from PIL import Image

from vq.cli.app import main
from vq.synth import Border, render


def test_probe_prints_metadata(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", n=50, audio=True)
    assert main(["probe", str(clip), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["codec"] == "h264" and info["width"] == 160 and info["has_audio"] is True
    assert main(["probe", str(clip)]) == 0
    assert "keyframe_interval" in capsys.readouterr().out


def test_frames_writes_pngs_named_by_time(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", n=100)
    assert main(["frames", str(clip), "--fps", "1", "--out", str(tmp_path / "f"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["frames"]) == 4
    first = np.asarray(Image.open(result["frames"][1]))
    assert frame_index(first) == 25
    assert main(["frames", str(clip), "--times", "0.52,2", "--out", str(tmp_path / "g"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["times"] == [0.52, 2.0]
    assert (
        main(
            [
                "frames",
                str(clip),
                "--count",
                "3",
                "--within",
                "3",
                "--max-side",
                "80",
                "--out",
                str(tmp_path / "h"),
                "--json",
            ]
        )
        == 0
    )
    sizes = {Image.open(p).size for p in json.loads(capsys.readouterr().out)["frames"]}
    assert sizes == {(80, 48)}


def test_frames_crop_removes_borders(tmp_path, capsys, shared_data):
    """A real clip (fire2, 1280x720) scaled to 320x180 and framed by white bars."""
    boxed = tmp_path / "boxed.mp4"
    record = render(
        shared_data / "videos" / "fire2.mp4",
        boxed,
        [Border(40, 40, 30, 30, color=(255, 255, 255))],
        size=(320, 180),
    )
    assert record.box == (30, 40, 350, 220)
    assert main(["frames", str(boxed), "--crop", "--out", str(tmp_path / "f"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    box = result["content_box"]
    found = (box["x0"], box["y0"], box["x1"], box["y1"])
    assert all(abs(a - b) <= 2 for a, b in zip(found, record.box, strict=True)), found
    assert Image.open(result["frames"][0]).size == (box["x1"] - box["x0"], box["y1"] - box["y0"])


def test_frames_argument_errors(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", n=10)
    assert main(["frames", str(clip), "--fps", "1", "--count", "2", "--out", str(tmp_path)]) == 2
    assert main(["frames", str(clip), "--times", "a,b", "--out", str(tmp_path)]) == 2
    assert main(["frames", str(tmp_path / "missing.mp4"), "--out", str(tmp_path)]) == 6
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
