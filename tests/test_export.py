"""vq.export: parity of real architectures, int8 accuracy, fp16, failure modes."""

from __future__ import annotations

import numpy as np
import pytest

from vq.errors import UsageError

from conftest import needs_train

pytestmark = needs_train


def test_resnet_export_parity_is_recorded_in_the_card(tmp_path, calib_dir):
    """A ResNet-18 (BatchNorm, projection shortcuts, max-pool, GeM) exports within 1e-4."""
    from vq.export.artifact import export_artifact
    from vq.export.calibration import image_feeds
    from vq.runtimes import open_session
    from vq.train.models import create_model, model_io

    kwargs = {"image_size": 64, "embed_dim": 32}
    io = model_io("resnet18", **kwargs)
    art = export_artifact(
        create_model("resnet18", seed=3, **kwargs),
        model_name="resnet18",
        model_kwargs=kwargs,
        out_dir=tmp_path / "r18",
        name="r18",
        task="embed",
        precisions=("fp32", "int8"),
        calibration=lambda seed: image_feeds(
            [calib_dir], io.inputs[0], io.preprocessing, count=24, batch=8, seed=seed
        ),
    )
    parity = art.card.export["parity"]
    assert parity["max_abs_error"] <= 1e-4 and parity["batch_sizes"] == [1, 3]
    assert art.card.export["opset"] == 18 and art.card.export["jax2onnx"]
    assert set(art.card.files) == {"fp32", "int8-cpu", "int8-gpu"}
    # int8 accuracy on real-looking images, measured at export and recorded per target
    for target in ("cpu", "gpu"):
        drift = art.card.export["int8"][target]["vs_fp32"]
        assert drift["mean_cosine"] >= 0.99, drift
    # the embedding is unit-norm on every backend
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    with open_session(art, "ort-cpu", precision="int8") as s:
        emb = s.run({"image": x})["embedding"]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3)


def test_symbolic_height_and_width_survive_export(tmp_path):
    """The SR net keeps B, H, W symbolic: one graph serves every frame size."""
    from vq.export.artifact import export_artifact
    from vq.runtimes import open_session
    from vq.train.models import create_model

    kwargs = {"channels": 8, "blocks": 1, "scale": 2}
    art = export_artifact(
        create_model("sr_residual", seed=0, **kwargs),
        model_name="sr_residual",
        model_kwargs=kwargs,
        out_dir=tmp_path / "sr",
        name="sr",
        task="enhance",
    )
    assert [t.shape for t in art.card.outputs] == [("B", "H*2", "W*2", 3)]
    with open_session(art, "ort-cpu") as ort_s, open_session(art, "jax") as jax_s:
        for shape in ((1, 17, 23, 3), (2, 40, 9, 3)):
            x = np.random.default_rng(1).random(shape, dtype=np.float32)
            a, b = ort_s.run({"image": x})["output"], jax_s.run({"image": x})["output"]
            assert a.shape == (shape[0], shape[1] * 2, shape[2] * 2, 3)
            assert np.max(np.abs(a - b)) <= 1e-4


def test_untrained_sr_is_exactly_bilinear(tmp_path):
    """Zero-initialised tail: the untrained net equals the fixed bilinear upsampler."""
    import jax.numpy as jnp

    from vq.train.models import create_model
    from vq.train.models.sr import upsample_bilinear

    model = create_model("sr_residual", seed=0, channels=8, blocks=1)
    x = np.random.default_rng(0).random((1, 12, 10, 3), dtype=np.float32)
    np.testing.assert_allclose(
        np.asarray(model(x)), np.asarray(upsample_bilinear(jnp.asarray(x), 2)), atol=1e-6
    )
    # half-pixel bilinear: a constant image stays constant, a ramp stays a ramp inside
    ramp = np.tile(np.arange(8, dtype=np.float32)[None, :, None, None], (1, 1, 6, 3)).transpose(0, 1, 2, 3)
    up = np.asarray(upsample_bilinear(jnp.asarray(ramp.reshape(1, 8, 6, 3)), 2))[0, 2:-2, 0, 0]
    np.testing.assert_allclose(np.diff(up), 0.5, atol=1e-6)


def test_parity_failure_is_reported(tmp_path):
    """Checking one model's graph against a different model must fail loudly."""
    from vq.export.onnx_export import export_onnx
    from vq.export.parity import ParityError, check_parity
    from vq.train.models import create_model, model_io

    io = model_io("_resnet_tiny")
    export_onnx(create_model("_resnet_tiny", seed=0), io.inputs, io.outputs, tmp_path / "a.onnx")
    other = create_model("_resnet_tiny", seed=1)
    with pytest.raises(ParityError, match="differs from JAX"):
        check_parity(other, tmp_path / "a.onnx", io.inputs, io.outputs, trials=1)
    same = check_parity(create_model("_resnet_tiny", seed=0), tmp_path / "a.onnx", io.inputs, io.outputs)
    assert same["max_abs_error"] <= 1e-5


def test_existing_artifact_needs_force_and_int8_needs_calibration(tmp_path):
    from vq.export.artifact import export_artifact
    from vq.train.models import create_model

    model = create_model("_resnet_tiny", seed=0)
    export_artifact(
        model, model_name="_resnet_tiny", model_kwargs={}, out_dir=tmp_path / "a", name="a", task="embed"
    )
    with pytest.raises(UsageError, match="--force"):
        export_artifact(
            model, model_name="_resnet_tiny", model_kwargs={}, out_dir=tmp_path / "a", name="a", task="embed"
        )
    with pytest.raises(UsageError, match="calibration"):
        export_artifact(
            model,
            model_name="_resnet_tiny",
            model_kwargs={},
            out_dir=tmp_path / "b",
            name="b",
            task="embed",
            precisions=("fp32", "int8"),
        )
    again = export_artifact(
        model,
        model_name="_resnet_tiny",
        model_kwargs={},
        out_dir=tmp_path / "a",
        name="a2",
        task="embed",
        force=True,
    )
    assert again.name == "a2"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # temp folders are renamed or removed, never left behind


def test_params_round_trip_rebuilds_the_same_model(tmp_path):
    from vq.train.checkpoints import load_params, save_params
    from vq.train.models import create_model

    a = create_model("_resnet_tiny", seed=0)
    save_params(a, tmp_path / "p.msgpack")
    b = load_params(create_model("_resnet_tiny", seed=7), tmp_path / "p.msgpack")
    a.eval()
    b.eval()
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
    from vq.errors import ModelError

    with pytest.raises(ModelError, match=r"head/bias has shape \(16,\), model wants \(5,\)"):
        load_params(create_model("_resnet_tiny", seed=0, embed_dim=5), tmp_path / "p.msgpack")
    with pytest.raises(ModelError, match=r"do not fit the model .*unexpected \['pool/p'\]"):
        load_params(create_model("_resnet_tiny", seed=0, pooling="avg"), tmp_path / "p.msgpack")


@needs_train
def test_vq_export_int8_requantises_an_artifact_in_place(conv_attn_artifact, calib_dir, tmp_path, capsys):
    """`vq export int8` rewrites only the int8 graphs and their card facts, atomically."""
    import shutil

    from vq.cli.app import main
    from vq.models import Artifact

    art = tmp_path / "conv-attn"
    shutil.copytree(conv_attn_artifact.root, art)
    before = Artifact(art).card
    code = main(["export", "int8", str(art), "--calib", str(calib_dir), "--calib-count", "8", "--json"])
    assert code == 0, capsys.readouterr().err
    after = Artifact(art)
    assert after.verify()  # every checksum matches the new card
    assert (
        after.card.files["fp32"] == before.files["fp32"] and after.card.files["fp16"] == before.files["fp16"]
    )
    facts = after.card.export["int8"]
    assert facts["cpu"]["weight_bits"] == 7 and facts["cpu"]["calibration_samples"] == 8
    assert "vq export int8" in facts["command"] and facts["cpu"]["vs_fp32"]["min_cosine"] > 0.9
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    assert main(["export", "int8", str(tmp_path / "missing"), "--calib", str(calib_dir)]) == 4
