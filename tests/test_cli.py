"""The `vq` CLI end to end: every command runs, errors are one line with the right code."""

from __future__ import annotations

import json

import pytest

from vq.cli.app import main

from conftest import needs_train
from helpers import smooth_images, write_images


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == "vq 0.1.0"
    code, out, _ = run(capsys, "--help")
    assert code == 0 and all(c in out for c in ("models", "export", "bench", "train", "enhance", "backends"))


def test_models_list_show_verify(capsys):
    code, out, _ = run(capsys, "models", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and any(r["name"] == "vq-enhance-x2" and r["default_for"] == "enhance" for r in rows)
    code, out, _ = run(capsys, "models", "show", "vq-enhance-x2", "--json")
    card = json.loads(out)
    assert code == 0 and card["task"] == "enhance" and card["export"]["parity"]["max_abs_error"] <= 1e-4
    code, out, _ = run(capsys, "models", "show", "vq-enhance-x2")
    assert code == 0 and "parity vs JAX" in out and "trained with: vq train enhance" in out
    code, out, _ = run(capsys, "models", "verify", "vq-enhance-x2")
    assert code == 0 and "match their sha256" in out


def test_errors_are_one_line_with_exit_codes(capsys):
    code, _, err = run(capsys, "models", "show", "no-such-model")
    assert code == 4 and err.count("\n") == 1 and err.startswith("error: no model named")
    code, _, err = run(capsys, "enhance", "x.png", "--out", "o", "--backend", "tpu")
    assert code == 2 and "unknown backend 'tpu'" in err
    code, _, err = run(capsys, "no-such-command")
    assert code == 2


def test_a_full_disk_is_one_line_and_any_other_os_error_a_traceback(capsys, monkeypatch, tmp_path):
    import errno
    import os

    from vq.cli import score
    from vq.fsutil import atomic_path

    def disk(code):
        def write(path, text):  # the atomic writer, on a disk that fails as write() does
            with atomic_path(path) as tmp:
                tmp.write_text(text[:10])
                raise OSError(code, os.strerror(code))

        return write

    # A full disk under a real command: the video is scored, writing its records fails.
    video = str(tmp_path / "missing.mp4")  # an error record is still a record to write
    out = tmp_path / "s.jsonl"
    monkeypatch.setattr(score, "atomic_write_text", disk(errno.ENOSPC))
    code, _, err = run(capsys, "score", video, "--out", str(out), "--json")
    assert code == 1 and err == f"error: No space left on device (writing {out})\n"
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary file left
    monkeypatch.setattr(score, "atomic_write_text", disk(errno.EBADF))
    with pytest.raises(OSError) as raised:
        main(["score", video, "--out", str(out), "--json"])
    assert raised.value.errno == errno.EBADF and raised.value.filename is None


def test_backends_listing(capsys):
    code, out, _ = run(capsys, "backends", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {"jax", "ort", "trt"}
    assert rows["ort"]["available"] and "cpu" in rows["ort"]["devices"]
    if not rows["trt"]["available"]:
        assert "vq[gpu]" in rows["trt"]["reason"]


def test_enhance_command_reports_bad_inputs(capsys, tmp_path):
    write_images(tmp_path / "in", smooth_images(2, (24, 20)))
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    code, out, err = run(
        capsys,
        "enhance",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out"),
        "--json",
        "--backend",
        "ort-cpu",
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and "1 of 3 input(s) failed" in err
    assert [r["status"] for r in records] == ["error", "ok", "ok"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img_000_x2.png", "img_001_x2.png"]


def test_export_engine_needs_a_gpu_host(capsys):
    from vq.runtimes import get_backend

    if get_backend("trt").available():
        pytest.skip("a GPU is present: engine builds are covered by the GPU tests")
    code, _, err = run(capsys, "export", "engine", "vq-enhance-x2")
    assert code == 2 and "need a GPU host" in err


@needs_train
def test_export_arch_with_int8_then_bench(capsys, tmp_path, calib_dir):
    out = tmp_path / "tiny"
    code, stdout, err = run(
        capsys,
        "export",
        "onnx",
        "--arch",
        "_resnet_tiny",
        "--set",
        "embed_dim=12",
        "--out",
        str(out),
        "--precision",
        "int8",
        "--calib",
        str(calib_dir),
        "--calib-count",
        "16",
    )
    assert code == 0, err
    card = json.loads((out / "card.json").read_text())
    assert card["flax"]["kwargs"] == {"embed_dim": 12}
    assert set(card["files"]) == {"fp32", "int8-cpu", "int8-gpu"}
    assert card["outputs"][0]["shape"] == ["B", 12]

    code, _, err = run(capsys, "export", "onnx", "--arch", "_resnet_tiny", "--out", str(out))
    assert code == 2 and "--force" in err
    code, _, err = run(capsys, "export", "onnx", "--out", str(out))
    assert code == 2 and "WORKDIR or --arch" in err

    code, stdout, err = run(
        capsys,
        "bench",
        "backends",
        "--model",
        str(out),
        "--batch",
        "1,4",
        "--min-seconds",
        "0.05",
        "--json",
        str(tmp_path / "bench.json"),
    )
    assert code == 0, err
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    labels = {r["label"] for r in rows}
    assert {"jax-cpu-fp32", "ort-cpu-fp32", "ort-cpu-int8"} <= labels
    assert rows[0]["speedup"] == 1.0 and all(r["items_per_s"] > 0 for r in rows)
    assert "ort-cpu-int8" in stdout


@needs_train
def test_train_smoke_then_export_the_workdir(capsys, tmp_path):
    write_images(tmp_path / "hr", smooth_images(4, (40, 40), seed=3))
    write_images(tmp_path / "heldout", smooth_images(2, (32, 36), seed=4))
    work = tmp_path / "work"
    args = ["train", "enhance", "--data", str(tmp_path / "hr"), "--eval-data", str(tmp_path / "heldout")]
    args += ["--out", str(work), "--smoke"]
    # a time-sliced job: pause after step 2 (checkpointed, no final evaluation), then resume
    code, out, err = run(capsys, *args, "--stop-at", "0")
    assert code != 0 and "--stop-at must be a step >= 1" in err
    code, out, err = run(capsys, *args, "--stop-at", "2")
    assert code == 0, err
    paused = json.loads(out)
    assert paused["step"] == 2 and "eval/heldout/psnr_y" not in paused and "paused" in err
    code, out, err = run(capsys, *args)
    assert code == 0, err
    final = json.loads(out)
    assert final["step"] == 4 and "eval/heldout/psnr_y" in final and "resumed from step 2" in err
    code, out, err = run(capsys, "export", "onnx", str(work), "--out", str(tmp_path / "art"))
    assert code == 0, err
    card = json.loads((tmp_path / "art" / "card.json").read_text())
    assert card["task"] == "enhance" and card["training"]["exported_step"] == 4
    assert card["training"]["command"].startswith("vq train enhance")
    assert "heldout/psnr_y" in card["metrics"]
    # and the exported model runs through the enhance command
    code, out, err = run(
        capsys,
        "enhance",
        str(tmp_path / "heldout"),
        "--out",
        str(tmp_path / "sr"),
        "--model",
        str(tmp_path / "art"),
        "--backend",
        "ort-cpu",
    )
    assert code == 0, err
