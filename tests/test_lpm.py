"""Generative enhancement (LPM): sampler maths, tiles, pairs, the three training stages,
export and `vq enhance` on videos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vq.cli.app import main
from vq.errors import UsageError
from vq.eval.metrics.temporal import FlickerMeter
from vq.stages.enhance import blend_tiles, position_noise, sample_tiles, split_tiles, tile_origins
from vq.synth.pairs import lq_variants

from helpers import smooth_images, write_images

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize(
    "shape, tile, overlap", [((37, 53, 3), 12, 4), ((8, 8, 3), 16, 6), ((64, 32, 3), 28, 2)]
)
def test_blend_puts_split_tiles_back(shape, tile, overlap):
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    tiles, grid = split_tiles(image, tile, overlap)
    out = blend_tiles(tiles.astype(np.float32), grid, shape[:2], overlap)
    np.testing.assert_allclose(out, image, atol=1e-3)


def test_blend_cross_fades_where_tiles_disagree():
    """Two tiles that disagree everywhere meet in a ramp, not a step (no seam)."""
    tiles = np.stack([np.zeros((24, 24, 1)), np.ones((24, 24, 1))]).astype(np.float32)
    out = blend_tiles(tiles, (1, 2), (16, 32), 4)[8, :, 0]
    assert out[0] == 0 and out[-1] == 1
    assert np.all(np.diff(out) >= 0) and np.max(np.diff(out)) <= 1 / 8 + 1e-6


def test_sampler_follows_the_straight_path():
    """With a constant endpoint c, Euler on a rectified flow visits exactly
    x_t = (1 - t) noise + t c, and returns the last call's output."""
    rng = np.random.default_rng(0)
    noise, c = rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((2, 4, 4, 3))
    seen = []

    def step(lq, x, t):
        seen.append((float(t[0]), x.copy()))
        return c, c + 100

    out = sample_tiles(step, np.zeros((2, 2, 2, 3)), noise, steps=5)
    np.testing.assert_allclose(out, c + 100)
    np.testing.assert_allclose([t for t, _ in seen], [0.0, 0.2, 0.4, 0.6, 0.8], atol=1e-6)
    for t, x in seen:
        np.testing.assert_allclose(x, (1 - t) * noise + t * c, atol=1e-6)


def test_noise_is_a_function_of_the_output_position():
    a = position_noise([[0, 0], [0, 8]], 16, seed=1)
    np.testing.assert_array_equal(a[0][:, 8:], a[1][:, :8])  # overlapping tiles share noise
    np.testing.assert_array_equal(position_noise([[0, 8]], 16, seed=1)[0], a[1])  # any batch
    assert not np.allclose(a, position_noise([[0, 0], [0, 8]], 16, seed=2))
    big = position_noise([[0, 0]], 256, seed=0)
    assert abs(big.mean()) < 0.01 and abs(big.std() - 1.0) < 0.01
    flat = big.reshape(-1, 3)  # channels and neighbours uncorrelated
    assert abs(np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]) < 0.02
    assert abs(np.corrcoef(big[:, :-1].ravel(), big[:, 1:].ravel())[0, 1]) < 0.02
    np.testing.assert_array_equal(tile_origins(range(2, 5), 3, 10), [[0, 20], [10, 0], [10, 10]])


def test_pairs_are_seeded_and_degraded():
    hr = smooth_images(1, (64, 80), seed=3)[0]
    a = lq_variants(hr, 2, np.random.default_rng(5), degraded=3)
    b = lq_variants(hr, 2, np.random.default_rng(5), degraded=3)
    assert [v.chain for v in a] == [v.chain for v in b] and a[0].chain == "clean"
    for va, vb in zip(a, b, strict=True):
        assert va.image.shape == (32, 40, 3)
        np.testing.assert_array_equal(va.image, vb.image)
    assert all(not np.array_equal(v.image, a[0].image) for v in a[1:])
    restore = lq_variants(hr, 1, np.random.default_rng(5), degraded=1)
    assert restore[1].image.shape == hr.shape


def test_flicker_meter_compares_output_change_with_input_change():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    same = FlickerMeter()
    for f in frames:
        same.add(f, np.asarray(f.repeat(2, 0).repeat(2, 1)))
    assert 0.5 < same.ratio < 1.5
    frozen = FlickerMeter()
    for f in frames:
        frozen.add(f, np.zeros((32, 32, 3), np.uint8))
    assert frozen.ratio == 0.0
    assert FlickerMeter().ratio is None


def test_models_start_as_their_parents():
    """adaLN-Zero: the base starts at a zero endpoint; ControlNet's zero projections: the
    pair starts as the base; the consistency function is the identity at t = 1."""
    pytest.importorskip("jax")
    import jax.numpy as jnp
    from flax import nnx

    from vq.train.lpm.config import SMOKE_MODEL
    from vq.train.models import create_model
    from vq.train.models.lpm import build_control_from_base, student_endpoint

    arch = {k: v for k, v in SMOKE_MODEL.items() if k != "control_blocks"}
    base = create_model("lpm_base", seed=0, **arch)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 16, 16, 3)), jnp.float32)
    t = jnp.asarray([0.2, 0.7])
    np.testing.assert_array_equal(np.asarray(base(x, t)), 0.0)
    # Give the base some nonzero output, then build the ControlNet pair on it.
    state = nnx.state(base, nnx.Param)
    nnx.update(base, jax_tree_map(lambda a: a + 0.05 * rng.standard_normal(a.shape).astype(a.dtype), state))
    pair = build_control_from_base(base, **SMOKE_MODEL)
    up = jnp.asarray(rng.random((2, 16, 16, 3)), jnp.float32)
    np.testing.assert_allclose(np.asarray(pair.endpoint(x, t, up)), np.asarray(base(x, t)), atol=1e-6)
    v = (np.asarray(base(x, t)) - np.asarray(x)) / (1.0 - np.asarray(t))[:, None, None, None]
    np.testing.assert_allclose(np.asarray(pair.velocity(x, t, up)), v, rtol=1e-5, atol=1e-5)
    assert np.abs(np.asarray(base(x, t))).max() > 1e-3
    ones = jnp.ones((2,))
    np.testing.assert_array_equal(np.asarray(student_endpoint(pair, x, ones, up)), np.asarray(x))


def jax_tree_map(fn, tree):
    import jax

    return jax.tree.map(fn, tree)


@pytest.fixture(scope="module")
def lpm_artifact(tmp_path_factory):
    """base -> control -> distill (smoke) on a tiny image folder, exported with fp16."""
    pytest.importorskip("jax")
    root = tmp_path_factory.mktemp("lpm")
    data = root / "data"
    write_images(data, smooth_images(6, (48, 64), seed=1))
    evals = root / "evalset"
    write_images(evals, smooth_images(2, (32, 32), seed=2))
    common = ["--smoke", "--data", str(data), "--holdout", "0.3"]
    # the regression anchor the flow refines: the shipped vq-enhance-x2 network
    assert main(["train", "lpm-base", *common, "--anchor", "vq-enhance-x2", "--out", str(root / "base")]) == 0
    assert (
        main(
            [
                "train",
                "lpm-control",
                *common,
                "--base",
                str(root / "base"),
                "--eval-data",
                str(evals),
                "--out",
                str(root / "control"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "lpm-distill",
                *common,
                "--teacher",
                str(root / "control"),
                "--eval-data",
                str(evals),
                "--out",
                str(root / "distill"),
            ]
        )
        == 0
    )
    art = root / "lpm"
    export = [
        "export",
        "onnx",
        str(root / "distill"),
        "--out",
        str(art),
        "-p",
        "fp16",
        "-p",
        "int8",
        "-p",
        "fp8",
    ]
    assert main([*export, "--calib", str(evals), "--calib-count", "16", "--temperature", "0.9"]) == 0
    return root, art


def test_stages_train_in_order_and_refuse_the_wrong_parent(lpm_artifact, capsys):
    root, _ = lpm_artifact
    metrics = json.loads((root / "distill" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "eval/evalset/psnr_y@1" in metrics and "eval/heldout/flow_mse" in metrics
    control = json.loads((root / "control" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"eval/evalset/psnr_y@1", "eval/evalset/psnr_y@2"} <= set(control)
    code = main(
        [
            "train",
            "lpm-distill",
            "--smoke",
            "--data",
            str(root / "data"),
            "--teacher",
            str(root / "base"),
            "--out",
            str(root / "bad"),
        ]
    )
    assert code != 0 and "not a vq train lpm-control workdir" in capsys.readouterr().err
    code = main(["train", "lpm-control", "--smoke", "--data", str(root / "data"), "--out", str(root / "bad")])
    assert code != 0 and "needs --base" in capsys.readouterr().err


def test_anchor_is_inherited_frozen_and_checked(lpm_artifact, capsys):
    """The base measures the residual over its anchor; control and student carry the
    anchor's weights unchanged, and an all-zero endpoint gives back the anchor's frame."""
    import jax.numpy as jnp
    from flax import nnx

    from vq.models import load_model
    from vq.train.checkpoints import load_params
    from vq.train.models import create_model
    from vq.train.trainer import load_trained_model

    root, _ = lpm_artifact
    base = json.loads((root / "base" / "config.json").read_text())
    assert base["data"]["anchor"]["model"] == "vq-enhance-x2" and 0 < base["data"]["residual_scale"] < 1
    distill = json.loads((root / "distill" / "config.json").read_text())
    kwargs = distill["model_kwargs"]
    assert kwargs["anchor_channels"] == 32 and kwargs["residual_scale"] == base["data"]["residual_scale"]
    student, _ = load_trained_model("lpm_distill", kwargs, root / "distill")
    shipped = load_model("vq-enhance-x2")
    anchor = load_params(create_model("sr_residual", **shipped.card.flax["kwargs"]), shipped.params_path())
    lq = jnp.asarray(smooth_images(1, (8, 8), seed=5)[0][None] / 255.0, jnp.float32)
    np.testing.assert_array_equal(np.asarray(student.anchor(lq)), np.asarray(anchor(lq)))
    # with the DiT's final layer zeroed the endpoint is 0 and the frame is the anchor's
    nnx.update(student.base.final, jax_tree_map(jnp.zeros_like, nnx.state(student.base.final)))
    x = jnp.zeros((1, 16, 16, 3))
    endpoint, frame = student(lq, x, jnp.zeros((1,)))
    np.testing.assert_array_equal(np.asarray(endpoint), 0.0)
    np.testing.assert_allclose(np.asarray(frame), np.clip(np.asarray(anchor(lq)), 0, 1), atol=1e-6)
    common = ["train", "lpm-base", "--smoke", "--data", str(root / "data"), "--out", str(root / "bad")]
    code = main([*common, "--anchor", "no-such-model"])
    assert code != 0 and "--anchor" in capsys.readouterr().err
    code = main([*common, "--anchor", "vq-enhance-x2", "--set", "model_kwargs.scale=1"])
    assert code != 0 and "upscales x2" in capsys.readouterr().err


def test_exported_student_is_an_enhance_model_on_every_backend(lpm_artifact, monkeypatch):
    from vq.stages.enhance import Enhancer

    _, art = lpm_artifact
    card = json.loads((art / "card.json").read_text())
    assert card["task"] == "enhance" and card["export"]["parity"]["max_abs_error"] <= 1e-4
    assert {"fp32", "fp16", "int8-cpu", "int8-gpu", "fp8"} <= set(card["files"])
    assert card["export"]["fp8"]["quantized_ops"] > 0 and card["preprocessing"]["sampler"]["steps"] == 1
    (teacher,) = card["training"]["upstream"]  # every stage's command, data and metrics
    assert teacher["role"] == "teacher" and teacher["task"] == "lpm-control" and "psnr_y@2" in str(teacher)
    assert teacher["upstream"][0]["task"] == "lpm-base" and "--out" in teacher["upstream"][0]["command"]
    image = smooth_images(1, (21, 30), seed=4)[0]
    outs = {}
    for backend in ("ort-cpu", "jax"):
        with Enhancer(art, backend=backend) as enhancer:
            assert enhancer.generative and enhancer.steps == 1 and enhancer.scale == 2
            assert enhancer.temperature == 0.9  # the card's sampler default
            outs[backend] = enhancer.enhance(image)
            again = enhancer.enhance(image)
        assert outs[backend].shape == (42, 60, 3)
        np.testing.assert_array_equal(outs[backend], again)  # fixed noise: same frame, same output
    assert np.abs(outs["ort-cpu"].astype(int) - outs["jax"].astype(int)).max() <= 1
    with Enhancer(art, backend="ort-cpu", steps=3) as three:
        assert three.enhance(image).shape == (42, 60, 3)
    # a frame too big for the kept noise draws it batch by batch: the same noise
    monkeypatch.setattr("vq.stages.enhance.NOISE_CACHE_BYTES", 0)
    with Enhancer(art, backend="ort-cpu", batch=2) as uncached:
        np.testing.assert_array_equal(uncached.enhance(image), outs["ort-cpu"])
    # temperature 0 starts every tile at the flow's centre: the seed no longer matters
    with (
        Enhancer(art, backend="ort-cpu", temperature=0, seed=1) as a,
        Enhancer(art, temperature=0, seed=2) as b,
    ):
        np.testing.assert_array_equal(a.enhance(image), b.enhance(image))
        assert a.describe()["temperature"] == 0
    with Enhancer(art, backend="ort-cpu", seed=1) as a, Enhancer(art, backend="ort-cpu", seed=2) as b:
        assert not np.array_equal(a.enhance(image), b.enhance(image))
    with pytest.raises(UsageError, match="temperature"):
        Enhancer(art, temperature=-1)
    for precision in ("fp8", "int8"):  # the Q/DQ graphs run here as written
        with Enhancer(art, backend="ort-cpu", precision=precision) as low:
            assert np.abs(low.enhance(image).astype(int) - outs["ort-cpu"].astype(int)).mean() < 8


def test_enhance_video_keeps_timing_and_audio(lpm_artifact, shared_data, tmp_path, capsys):
    import av

    from vq.media.encode import write_video

    _, art = lpm_artifact
    frames = [np.roll(f, i, axis=1) for i, f in enumerate(smooth_images(1, (24, 32), seed=5) * 10)]
    clip = write_video(
        tmp_path / "in" / "clip.mp4", frames, fps=5, audio_from=shared_data / "videos" / "example3.mp4"
    )
    (tmp_path / "in" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    out = tmp_path / "out"
    code = main(["enhance", str(tmp_path / "in"), "--out", str(out), "--model", str(art), "--json"])
    assert code == 1  # one input failed
    records = {r["path"].split("/")[-1]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records["broken.mp4"]["status"] == "error" and "\n" not in records["broken.mp4"]["error"]
    rec = records["clip.mp4"]
    assert rec["status"] == "ok" and rec["frames"] == 10 and rec["size_out"] == [64, 48]
    assert rec["flicker_ratio"] is not None
    with av.open(rec["output"]) as c:
        kinds = sorted(s.type for s in c.streams)
        video = c.streams.video[0]
        assert kinds == ["audio", "video"] and (video.width, video.height) == (64, 48)
        assert abs(float(c.duration / 1e6) - 2.0) < 0.15
    with av.open(str(clip)) as c:
        src_pts = [float(f.time) for f in c.decode(video=0)]
    with av.open(rec["output"]) as c:
        out_pts = [float(f.time) for f in c.decode(video=0)]
    np.testing.assert_allclose(np.array(out_pts) - out_pts[0], np.array(src_pts) - src_pts[0], atol=1e-3)
    assert sorted(p.name for p in out.iterdir()) == ["clip_x2.mp4"]  # nothing half-written


def test_eval_sr_puts_models_and_sampler_steps_side_by_side(lpm_artifact, tmp_path, capsys):
    root, art = lpm_artifact
    report = tmp_path / "sr.json"
    args = ["eval", "sr", "--data", str(root / "evalset"), "--model", str(art), "--backend", "ort-cpu"]
    args += ["--compare", f"{art}@2", "--compare", f"{art}~0", "--compare", "vq-enhance-x2"]
    assert main([*args, "--json", str(report)]) == 0, capsys.readouterr().err
    rows = json.loads(report.read_text())["rows"]
    # the card's temperature (0.9) is in the label; ~0 overrides it
    assert [r["model"] for r in rows] == ["bicubic", "lpm@1~0.9", "lpm@2~0.9", "lpm@1~0", "vq-enhance-x2"]
    for row in rows:
        assert 0 < row["ssim_y"] <= 1 and row["detail"] > 0 and row["images"] == 2
        assert (row["s_per_mp"] is None) == (row["model"] == "bicubic")
    code = main(["eval", "sr", "--data", str(root / "evalset"), "--model", f"{art}@0"])
    assert code != 0 and "steps must be >= 1" in capsys.readouterr().err


def test_eval_sr_says_which_models_trained_on_the_set():
    from vq.eval.sr import training_overlap

    enhance = {"data": {"train": ["../data/bsd100"]}}
    lpm = {
        "data": {"train": {"folders": ["x/photos"]}},
        "upstream": [{"data": {"train": {"folders": ["x/bsd100", "x/photos"]}, "holdout_fraction": 0.2}}],
    }
    assert training_overlap(enhance, "bsd100", 0.2) == "yes" and training_overlap(enhance, "set5", 0) == "no"
    assert training_overlap(lpm, "bsd100", 0.2) == "held-out part"
    assert training_overlap(lpm, "bsd100", 0.0) == "yes"  # all of it scored: some was trained on


def test_calibration_feeds_follow_the_sampler(tmp_path):
    from PIL import Image

    from export.calibration import sampler_feeds
    from vq.models import TensorSpec

    for i, image in enumerate(smooth_images(3, (80, 96), seed=7)):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    inputs = [TensorSpec("image", "float32", ("B", 8, 8, 3)), TensorSpec("x", "float32", ("B", 16, 16, 3))]
    prep = {"scale": 1 / 255, "mean": [0.0] * 3, "std": [1.0] * 3, "color": "RGB", "upscale": 2, "tile": 8}
    prep |= {"residual_scale": 0.05, "sampler": {"steps": 4}}
    feeds = list(sampler_feeds([tmp_path], inputs, prep, count=64, batch=16))
    image, x, t = (np.concatenate([f[k] for f in feeds]) for k in ("image", "x", "t"))
    assert image.shape == (64, 8, 8, 3) and x.shape == (64, 16, 16, 3) and 0 <= image.min() < image.max() <= 1
    assert set(np.round(t * 4).astype(int)) <= {0, 1, 2, 3} and len(set(t)) > 1
    noise = x[t == 0]
    assert abs(noise.std() - 1.0) < 0.1  # t = 0: pure noise


def test_model_specs_name_steps_and_temperature():
    from vq.eval.sr import parse_model_spec

    assert parse_model_spec("runs/t@25~0.5") == ("runs/t", 25, 0.5)
    assert parse_model_spec("m~0") == ("m", None, 0.0) and parse_model_spec("m@8") == ("m", 8, None)
    assert parse_model_spec("~/models/x") == ("~/models/x", None, None)  # a path, not a temperature
    assert parse_model_spec("a~b/m@2") == ("a~b/m", 2, None)


def test_flow_times_cover_both_ends_of_the_path():
    """t = 0 (where sampling starts) is drawn exactly, and late times are drawn too: the
    logit-normal alone never reaches either end."""
    pytest.importorskip("jax")
    import jax

    from vq.train.lpm.task import T_UNIFORM_SHARE, T_ZERO_SHARE, flow_times

    t = np.asarray(flow_times(jax.random.key(0), 20000))
    assert t.min() >= 0.0 and t.max() <= 1.0
    assert abs(np.mean(t == 0.0) - T_ZERO_SHARE) < 0.01
    assert np.mean(t > 0.95) > 0.5 * 0.05 * T_UNIFORM_SHARE  # the uniform part reaches t -> 1
    assert 0.3 < np.median(t) < 0.5  # most rows still on the early, hard half


def test_shipped_lpm_restores_better_than_bicubic(shared_data):
    """vq-lpm-x2 (trained here; card: vq/zoo/vq-lpm-x2): one step at the card's temperature
    on a held-out Set5 crop, clearly above bicubic, the same output twice."""
    from vq.eval.metrics.image import psnr_y
    from vq.media.sources import bicubic_upscale, load_pairs
    from vq.stages.enhance import Enhancer

    pair = load_pairs([str(shared_data / "images" / "set5")], 2)[2]  # the butterfly: edges
    lr, hr = pair.lr[:64, :64], pair.hr[:128, :128]
    with Enhancer("vq-lpm-x2", backend="ort-cpu") as enhancer:
        assert enhancer.generative and enhancer.steps == 1 and enhancer.temperature == 0.9
        out = enhancer.enhance(lr)
        np.testing.assert_array_equal(out, enhancer.enhance(lr))
    assert out.shape == (128, 128, 3)
    assert psnr_y(out, hr, border=2) > psnr_y(bicubic_upscale(lr, 2), hr, border=2) + 1.0
