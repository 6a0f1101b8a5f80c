"""vq.models: card schema, checksums, search path, defaults."""

from __future__ import annotations

import json
import shutil

import pytest

from vq.errors import ModelError, UsageError
from vq.models import (
    Artifact,
    ModelCard,
    TensorSpec,
    file_entry,
    graph_for,
    list_models,
    load_model,
    write_card,
)


def make_artifact(root, name="demo", task="test", files=("fp32",)):
    root.mkdir(parents=True, exist_ok=True)
    entries = {}
    for graph in files:
        rel = f"model.{graph}.onnx"
        (root / rel).write_bytes(f"graph {graph}".encode())
        entries[graph] = file_entry(root, rel)
    card = ModelCard(
        name=name,
        task=task,
        version="1",
        inputs=[TensorSpec("image", "float32", ("B", 8, 8, 3))],
        outputs=[TensorSpec("out", "float32", ("B", 4))],
        files=entries,
        extra={"notes": "kept"},
    )
    write_card(root, card)
    return Artifact(root)


def test_card_round_trip_keeps_unknown_fields(tmp_path):
    art = make_artifact(tmp_path / "a")
    data = json.loads((tmp_path / "a" / "card.json").read_text())
    assert data["schema"] == 1 and data["notes"] == "kept"
    assert data["inputs"][0]["shape"] == ["B", 8, 8, 3]
    again = ModelCard.from_json(data)
    assert again.inputs == art.card.inputs and again.extra == {"notes": "kept"}


def test_checksum_is_verified_before_use(tmp_path):
    art = make_artifact(tmp_path / "a")
    assert art.onnx_path("fp32").name == "model.fp32.onnx"
    (tmp_path / "a" / "model.fp32.onnx").write_bytes(b"tampered")
    fresh = Artifact(tmp_path / "a")
    with pytest.raises(ModelError, match="fails its checksum"):
        fresh.onnx_path("fp32")


def test_missing_graph_and_missing_file(tmp_path):
    art = make_artifact(tmp_path / "a")
    with pytest.raises(ModelError, match="no int8-cpu graph"):
        art.onnx_path("int8")
    (tmp_path / "a" / "model.fp32.onnx").unlink()
    with pytest.raises(ModelError, match="missing file"):
        Artifact(tmp_path / "a").onnx_path()


def test_int8_graph_depends_on_device(tmp_path):
    art = make_artifact(tmp_path / "a", files=("fp32", "int8-cpu", "int8-gpu"))
    assert art.onnx_path("int8", "cpu").name == "model.int8-cpu.onnx"
    assert art.onnx_path("int8", "cuda").name == "model.int8-gpu.onnx"
    assert art.precisions == ["fp32", "int8"]
    assert graph_for("fp16", "cuda") == "fp16"
    with pytest.raises(UsageError, match="unknown precision"):
        graph_for("int4", "cpu")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c.pop("files"), "missing field"),
        (lambda c: c["files"].pop("fp32"), "must include an fp32"),
        (lambda c: c["files"].update(int3={"path": "x", "sha256": "y"}), "unknown graph variant"),
        (lambda c: c["inputs"][0].pop("shape"), "malformed card"),
        (lambda c: c.setdefault("preprocessing", {}).update(color="luma"), "unknown preprocessing.color"),
    ],
)
def test_malformed_cards_give_one_line_errors(tmp_path, mutate, message):
    make_artifact(tmp_path / "a")
    path = tmp_path / "a" / "card.json"
    card = json.loads(path.read_text())
    mutate(card)
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=message) as info:
        Artifact(tmp_path / "a")
    assert "\n" not in str(info.value)


def test_unreadable_card_and_non_artifact(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ModelError, match="not a model artifact"):
        Artifact(tmp_path / "a")
    (tmp_path / "a" / "card.json").write_text("{nope")
    with pytest.raises(ModelError, match="unreadable card"):
        Artifact(tmp_path / "a")


def test_files_cannot_escape_the_artifact(tmp_path):
    make_artifact(tmp_path / "a")
    (tmp_path / "secret.onnx").write_bytes(b"x")
    path = tmp_path / "a" / "card.json"
    card = json.loads(path.read_text())
    card["files"]["fp32"]["path"] = "../secret.onnx"
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="escapes the artifact"):
        Artifact(tmp_path / "a").onnx_path()


def test_search_path_and_task_check(tmp_path, monkeypatch):
    make_artifact(tmp_path / "zoo" / "demo", name="demo", task="embed")
    shutil.copytree(tmp_path / "zoo" / "demo", tmp_path / "zoo" / "broken")
    (tmp_path / "zoo" / "broken" / "card.json").write_text("[]")
    monkeypatch.setenv("VQ_MODEL_PATH", str(tmp_path / "zoo"))
    assert "demo" in [a.name for a in list_models()]  # the broken card is skipped
    assert load_model("demo").card.task == "embed"
    assert load_model(str(tmp_path / "zoo" / "demo")).name == "demo"
    with pytest.raises(ModelError, match="is a embed model, not enhance"):
        load_model("demo", task="enhance")
    with pytest.raises(ModelError, match="no model named 'nope'"):
        load_model("nope")
    with pytest.raises(ModelError, match="no default model"):
        load_model(None, task="nothing")


def test_shipped_default_enhancer_verifies():
    art = load_model(None, task="enhance")
    checked = art.verify()
    assert {"fp32", "params"} <= set(checked)
    assert art.card.export["parity"]["max_abs_error"] <= 1e-4
    assert art.card.training.get("command", "").startswith("vq train enhance")
