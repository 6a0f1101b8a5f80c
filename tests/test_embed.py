"""Copy-detection embedding: metrics, pair sets, MoCo state, and the commands end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from media_factory import make_clip

from vq.cli.app import main
from vq.eval.baselines import thumbnail_descriptor
from vq.eval.metrics.retrieval import best_accuracy, roc_auc, tpr_at_fpr
from vq.eval.pairs import EVAL_FAMILIES, make_pairs

from conftest import needs_train
from helpers import smooth_images, write_images


def test_metrics_on_known_scores():
    pos, neg = np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.3, 0.4])
    assert roc_auc(pos, neg) == 1.0 and roc_auc(neg, pos) == 0.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.5  # ties count half
    assert best_accuracy(pos, neg) == 1.0
    neg100 = np.linspace(0, 1, 100)
    assert tpr_at_fpr(np.array([0.995, 0.5, 2.0]), neg100, 0.01) == pytest.approx(1 / 3)


def test_pairs_are_deterministic_and_include_look_alikes():
    images = smooth_images(5, (64, 80), seed=2)
    sources = [(f"img{i}.png", im) for i, im in enumerate(images[:3])] + [
        ("clip.mp4@1.000", images[3]),
        ("clip.mp4@4.000", images[4]),
    ]
    a = make_pairs(sources, seed=1, negatives_per_source=2)
    b = make_pairs(sources, seed=1, negatives_per_source=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.right, b.right, strict=True))
    assert int(a.label.sum()) == 5 * len(EVAL_FAMILIES)
    assert a.family.count("look-alike") == 1
    assert (a.label == 0).sum() == 5 * 2 + 1


def test_thumbnail_descriptor_is_unit_norm():
    d = thumbnail_descriptor(smooth_images(3, (40, 50)))
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)


@needs_train
def test_moco_queue_wraps_and_momentum_follows():
    import jax.numpy as jnp
    from flax import nnx

    from vq.train.models import create_model

    moco = create_model("moco", encoder="_resnet_tiny", encoder_kwargs={"embed_dim": 4}, queue_size=6)
    moco.enqueue(jnp.ones((4, 4)))
    moco.enqueue(2 * jnp.ones((4, 4)))  # wraps: slots 4, 5, 0, 1
    q = np.asarray(moco.queue[...])
    assert np.allclose(q[[4, 5, 0, 1]], 2) and np.allclose(q[[2, 3]], 1)
    assert int(moco.queue_ptr[...]) == 2
    before = np.asarray(nnx.state(moco.momentum_encoder, nnx.Param)["head"]["kernel"][...]).copy()
    query = np.asarray(nnx.state(moco.encoder, nnx.Param)["head"]["kernel"][...])
    moco.momentum = 0.5
    moco.update_momentum_encoder()
    after = np.asarray(nnx.state(moco.momentum_encoder, nnx.Param)["head"]["kernel"][...])
    np.testing.assert_allclose(after, 0.5 * before + 0.5 * query, atol=1e-6)


@needs_train
def test_train_export_embed_and_evaluate(tmp_path, capsys):
    """The embedding path end to end on tiny data: MoCo smoke run, export with int8 and
    without params, `vq embed` on images and a video, `vq eval pairs` with baselines."""
    data = tmp_path / "data"
    write_images(data, smooth_images(10, (72, 96), seed=4))
    make_clip(data / "clip.mp4", n=100, size=(96, 64))
    work = tmp_path / "work"
    assert main(["train", "embed", "--data", str(data), "--out", str(work), "--smoke"]) == 0
    config = json.loads((work / "config.json").read_text())
    assert config["export"]["attribute"] == "encoder" and config["data"]["holdout"]
    capsys.readouterr()

    art = tmp_path / "emb"
    code = main(
        [
            "export",
            "onnx",
            str(work),
            "--out",
            str(art),
            "--precision",
            "int8",
            "--calib",
            str(data),
            "--calib-count",
            "8",
            "--no-params",
        ]
    )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    card = json.loads((art / "card.json").read_text())
    assert card["task"] == "embed" and "params" not in card["flax"] and not (art / "params.msgpack").exists()
    assert card["outputs"][0]["shape"] == ["B", 16]

    out = tmp_path / "v.npz"
    assert main(["embed", str(data), "--out", str(out), "--model", str(art), "--json"]) == 0
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["status"] for r in records} == {"ok"}
    vectors = np.load(out)
    assert vectors["vectors"].shape == (10 + 4, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors["vectors"], axis=1), 1.0, atol=1e-3)
    assert np.isnan(vectors["times"][:10]).sum() + np.isnan(vectors["times"][10:]).sum() == 10

    report_path = tmp_path / "pairs.json"
    code = main(
        [
            "eval",
            "pairs",
            "--data",
            str(data),
            "--model",
            str(art),
            "--negatives",
            "2",
            "--baselines",
            "pdq,thumbnail",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert set(report["methods"]) == {"emb", "pdq", "thumbnail"}
    for block in report["methods"].values():
        assert 0.0 <= block["all"]["roc_auc"] <= 1.0 and set(block["families"]) == set(EVAL_FAMILIES)
    assert main(["embed", str(data), "--out", str(tmp_path / "x.txt"), "--model", str(art)]) == 2


@needs_train
def test_teacher_distillation_adds_its_loss(tmp_path):
    """With --teacher, batches carry the teacher's embeddings of the first view and the
    loss adds the relational distillation term (student vs teacher in-batch similarities)."""
    data = tmp_path / "data"
    write_images(data, smooth_images(8, (72, 96), seed=5))
    work = tmp_path / "work"
    code = main(
        ["train", "embed", "--data", str(data), "--out", str(work), "--smoke", "--teacher", "vq-embed"]
    )
    assert code == 0
    rows = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    distill = [r["distill"] for r in rows if "distill" in r]
    assert distill and all(np.isfinite(distill)) and max(distill) > 0
    config = json.loads((work / "config.json").read_text())
    assert config["data"]["teacher"] == "vq-embed"


def test_look_alike_rows_and_synthetic_scenes_in_batches():
    """Look-alike rows take another moment (>= 2 s away) of the previous row's video;
    scene rows share one background; both are deterministic in (seed, step, row)."""
    from vq.media.sources import Source
    from vq.train.embed.input_pipeline import pair_batch, siblings_of

    images = smooth_images(6, (48, 64), seed=9)
    sources = [Source(f"clip.mp4@{t:.3f}", images[t]) for t in range(4)] + [
        Source("stills/a.png", images[4]),
        Source("stills/b.png", images[5]),
    ]
    siblings = siblings_of(sources)
    assert siblings[0] == [2, 3] and siblings[1] == [3] and siblings[4] == []
    plain = pair_batch(sources, 0, 3, range(8), 32)
    hard = pair_batch(sources, 0, 3, range(8), 32, siblings=siblings, lookalike_share=1.0, scene_share=0.5)
    again = pair_batch(sources, 0, 3, range(8), 32, siblings=siblings, lookalike_share=1.0, scene_share=0.5)
    assert hard["view_a"].shape == (8, 32, 32, 3) and np.array_equal(hard["view_a"], again["view_a"])
    assert not np.array_equal(hard["view_a"], plain["view_a"])
    split = pair_batch(
        sources, 0, 3, range(4, 8), 32, siblings=siblings, lookalike_share=1.0, scene_share=0.5
    )
    assert np.array_equal(split["view_b"], hard["view_b"][4:])  # any process builds any row


@needs_train
def test_hard_negative_options_train(tmp_path):
    data = tmp_path / "data"
    write_images(data, smooth_images(6, (72, 96), seed=6))
    make_clip(data / "clip.mp4", n=120, size=(96, 64))
    work = tmp_path / "work"
    args = ["train", "embed", "--data", str(data), "--out", str(work), "--smoke", "--lookalike-share", "0.5"]
    args += ["--grade-share", "0.5", "--scene-share", "0.5", "--batch-weight", "1"]
    assert main(args) == 0
    lines = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["in_batch"]) for x in lines if "loss" in x)
    recorded = json.loads((work / "config.json").read_text())["train"]
    assert recorded["scene_share"] == 0.5 and recorded["batch_weight"] == 1.0


def test_equalised_luma_input_trains_and_exports(tmp_path):
    """`--set encoder_kwargs.color=equalised-luma`: the views are trained on as the
    runtime will feed them, and the exported card says so."""
    from vq.train.embed.config import get_config
    from vq.train.embed.task import EmbedTask

    data = tmp_path / "data"
    write_images(data, smooth_images(4, (72, 96), seed=7))
    config = get_config(smoke=True)
    config.data = [str(data)]
    config.encoder_kwargs = {**config.encoder_kwargs, "color": "equalised-luma"}
    batch = EmbedTask(config).batch(0, range(4))
    for views in (batch["view_a"], batch["view_b"]):
        assert (views[..., 0] == views[..., 1]).all() and views.max() == 255
    work = tmp_path / "work"
    args = ["train", "embed", "--data", str(data), "--out", str(work), "--smoke"]
    assert main([*args, "--set", "encoder_kwargs.color=equalised-luma"]) == 0
    art = tmp_path / "art"
    assert (
        main(["export", "onnx", str(work), "--out", str(art), "--name", "luma", "-p", "fp32", "--no-params"])
        == 0
    )
    card = json.loads((art / "card.json").read_text())
    assert card["preprocessing"]["color"] == "equalised-luma"


def test_the_shipped_luma_embedder_sees_through_a_colour_grade(shared_data):
    """vq-embed-luma (trained here; card: vq/zoo/vq-embed-luma) matches a strongly graded
    photo above its frame threshold, where vq-embed falls under its own, and still tells
    the photo from other photos."""
    from PIL import Image

    from vq.match.thresholds import Thresholds
    from vq.stages.embed import Embedder
    from vq.synth.pixel import ColorGrade

    names = ["bsd100/img_005.png", "bsd100/img_001.png", "set14/img_003.png", "set5/img_001.png"]
    photos = [
        np.asarray(Image.open(shared_data / "images" / n).convert("RGB").resize((128, 128))) for n in names
    ]
    look = ColorGrade(
        hue=120.0, saturation=0.4, gamma=0.7, contrast=0.5, highlights=(0.12, 0.06, 0.0), fade=0.08
    )
    graded = look(np.ascontiguousarray(photos[0]), 0.0)
    cosines = {}
    for name in ("vq-embed-luma", "vq-embed"):
        with Embedder(name, backend="ort-cpu", crop=False) as e:
            v = e.embed_frames(np.stack([graded, *photos]))
            cosines[name] = (
                float(v[0] @ v[1]),
                float(np.max(v[2:] @ v[1])),
                Thresholds.from_card(e.artifact.card),
            )
    same, other, luma = cosines["vq-embed-luma"]
    assert card_preprocessing("vq-embed-luma")["color"] == "equalised-luma"
    assert same > luma.frame > other, cosines
    assert cosines["vq-embed"][0] < cosines["vq-embed"][2].frame < same, cosines


def card_preprocessing(name: str) -> dict:
    from vq.models import load_model

    return load_model(name).card.preprocessing
