"""Enhancement stage and pipeline: tiling, quality vs bicubic, bad inputs in a batch."""

from __future__ import annotations

import numpy as np
import pytest

from vq.errors import MediaError, UsageError
from vq.eval.metrics.image import psnr_y
from vq.images import read_rgb
from vq.pipelines.enhance import enhance_files
from vq.stages.enhance import Enhancer, split_tiles, stitch_tiles


@pytest.mark.parametrize(
    "shape, tile, overlap",
    [((37, 53, 3), 16, 4), ((8, 8, 3), 16, 6), ((64, 32, 3), 32, 0), ((5, 100, 3), 8, 3)],
)
def test_split_and_stitch_are_inverse(shape, tile, overlap):
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    tiles, grid = split_tiles(image, tile, overlap)
    assert tiles.shape[1:] == (tile + 2 * overlap, tile + 2 * overlap, 3)
    assert tiles.shape[0] == grid[0] * grid[1]
    np.testing.assert_array_equal(stitch_tiles(tiles, grid, shape[:2], overlap), image)


@pytest.fixture(scope="module")
def enhancer():
    with Enhancer("vq-enhance-x2", backend="ort-cpu") as e:
        yield e


def test_tiles_do_not_show_seams(enhancer):
    """Tiled inference equals one whole-image pass away from the frame border."""
    image = np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    tiled = enhancer.enhance(image)
    assert tiled.shape == (140, 180, 3) and tiled.dtype == np.uint8
    x = image[None].astype(np.float32) / 255.0
    whole = enhancer.session.run({"image": x})["output"][0]
    whole = np.clip(np.rint(whole * 255), 0, 255).astype(np.uint8)
    inner = (slice(24, -24), slice(24, -24))  # the network's receptive field from the border
    diff = np.abs(tiled[inner].astype(int) - whole[inner].astype(int))
    assert diff.max() <= 1


def test_shipped_model_beats_bicubic_on_held_out_images(enhancer, shared_data):
    """Set5 was never seen in training; the model must add detail beyond bicubic."""
    from PIL import Image

    gains = []
    for hr_path in sorted((shared_data / "images" / "set5").glob("*.png")):
        hr = read_rgb(hr_path)
        lr = read_rgb(shared_data / "images" / "set5_lr_x2" / hr_path.name)
        ours = enhancer.enhance(lr)[: hr.shape[0], : hr.shape[1]]
        bicubic = np.asarray(Image.fromarray(lr).resize(hr.shape[1::-1], Image.BICUBIC))
        gains.append(psnr_y(ours, hr, border=2) - psnr_y(bicubic, hr, border=2))
    assert np.mean(gains) > 0.5, gains


def test_int8_enhancer_stays_close_to_fp32(enhancer):
    image = np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    with Enhancer("vq-enhance-x2", backend="ort-cpu", precision="int8") as low:
        a, b = enhancer.enhance(image), low.enhance(image)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3


def test_enhancer_rejects_bad_frames(enhancer):
    with pytest.raises(UsageError, match="uint8 HxWx3"):
        enhancer.enhance(np.zeros((4, 4), np.uint8))
    with pytest.raises(UsageError, match="uint8 HxWx3"):
        enhancer.enhance(np.zeros((4, 4, 3), np.float32))


def png_declaring(width: int, height: int) -> bytes:
    """A structurally valid PNG (IHDR, IDAT, IEND) whose header claims width x height."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def bad_files(folder):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.png"
    Image.fromarray(np.full((20, 24, 3), 120, np.uint8)).save(good)
    (folder / "empty.png").write_bytes(b"")
    (folder / "random.png").write_bytes(np.random.default_rng(0).bytes(500))
    (folder / "truncated.png").write_bytes(good.read_bytes()[:60])
    (folder / "notes.txt").write_text("not an image")
    # a well-formed PNG declaring 100000 x 100000 pixels: refused before any decoding
    (folder / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    return good


def test_batch_reports_bad_files_and_goes_on(enhancer, tmp_path):
    good = bad_files(tmp_path / "in")
    inputs = [*sorted((tmp_path / "in").iterdir()), tmp_path / "missing.png"]
    records = {r["path"]: r for r in enhance_files(inputs, tmp_path / "out", enhancer)}
    assert records[str(good)]["status"] == "ok"
    assert records[str(good)]["size_out"] == [48, 40]
    reasons = {p.split("/")[-1]: r.get("error", "") for p, r in records.items() if r["status"] != "ok"}
    assert set(reasons) == {
        "empty.png",
        "random.png",
        "truncated.png",
        "notes.txt",
        "bomb.png",
        "missing.png",
    }
    assert "empty file" in reasons["empty.png"]
    assert "pixel limit" in reasons["bomb.png"]
    assert "no such file" in reasons["missing.png"]
    assert all("\n" not in r for r in reasons.values())
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["good_x2.png"]  # nothing half-written, no temp files left


def test_read_rgb_errors_are_media_errors(tmp_path):
    bad_files(tmp_path)
    for name in ("empty.png", "random.png", "truncated.png", "bomb.png"):
        with pytest.raises(MediaError):
            read_rgb(tmp_path / name)
    assert read_rgb(tmp_path / "good.png").shape == (20, 24, 3)


def test_colliding_names_get_distinct_outputs(enhancer, tmp_path):
    from PIL import Image

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / sub / "same.png")
    records = list(
        enhance_files([tmp_path / "a" / "same.png", tmp_path / "b" / "same.png"], tmp_path / "out", enhancer)
    )
    assert sorted(r["output"].split("/")[-1] for r in records) == ["same_x2-1.png", "same_x2.png"]


def test_eval_sr_reports_model_and_bicubic(shared_data, tmp_path, capsys):
    """`vq eval sr` on Set5 (held out from training): the model beats bicubic, and the
    bicubic figure is the published protocol's (33.66 dB on Set5 x2)."""
    from vq.cli.app import main

    report = tmp_path / "sr.json"
    code = main(
        [
            "eval",
            "sr",
            "--data",
            str(shared_data / "images" / "set5"),
            "--backend",
            "ort-cpu",
            "--json",
            str(report),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "PSNR-Y" in capsys.readouterr().out
    import json

    data = json.loads(report.read_text())
    (row,) = data["sets"]
    assert row["images"] == 5 and abs(row["bicubic"] - 33.66) < 0.1
    assert row["gain_db"] > 0.5 and len(data["images"]) == 5
