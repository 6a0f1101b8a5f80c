"""A model task is one unit: its folder, its stage, one `TaskDef`; everything else is generic.

The toy task in `tests/toy_task/` (a 5-D clip batch plus a scalar per clip in, a score
out) is registered for the test only, then trained, exported, run through its stage and
evaluated with the same commands as the shipped tasks. Nothing in `vq/` names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from vq.cli.app import main
from vq.errors import UsageError
from vq.tasks import EVALUATORS, STAGES, TASKS, TaskDef, temporary_task

from conftest import REPO, needs_train

TOY = TaskDef(
    name="toy",
    summary="toy clip scorer (tests)",
    config="toy_task.config:get_config",
    task="toy_task.task:ToyTask",
    stage="toy_task.stage:ToyStage",
    evaluators={"toy-quality": "toy_task.evaluate:EVALUATOR"},
)


def test_registered_tasks_have_configs_stages_and_evaluators():
    assert {"embed", "enhance", "kvq", "qpt", "lpm-base", "lpm-control", "lpm-distill"} <= set(TASKS.names())
    for name in TASKS.names():
        defn = TASKS.get(name)
        config, smoke = defn.get_config(), defn.get_config(smoke=True)
        assert type(config) is type(smoke) and smoke.steps < config.steps
        if name in ("qpt", "lpm-base"):  # pretraining only: fine-tuned by a later task, never served
            assert defn.stage is None and defn.serves is None and name not in STAGES
            continue
        if defn.serves:  # lpm-control/-distill: their exports are run by another task's stage
            assert defn.stage is None and STAGES.get(defn.serves).task == defn.serves
            continue
        assert name in STAGES and STAGES.get(name).task == name
        for evaluator in defn.evaluators:
            assert EVALUATORS.get(evaluator).summary
    assert "content-box" in EVALUATORS.names()


def test_the_cli_names_no_task():
    """`vq train`, `vq export` and `vq eval` are generic: no task name in their modules
    (the runtime jobs `vq embed` and `vq enhance` are commands of their own)."""
    text = "\n".join((REPO / "vq" / "cli" / f"{m}.py").read_text() for m in ("train", "export", "eval"))
    for task in TASKS.names():
        assert f'"{task}"' not in text and f"'{task}'" not in text, task
    assert "moco" not in text


def test_train_help_lists_the_registered_tasks(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "embed" in out and "enhance" in out and "toy" not in out
    with temporary_task(TOY):
        assert main(["train", "--help"]) == 0
        assert "toy clip scorer" in capsys.readouterr().out
    assert "toy" not in TASKS and "toy" not in STAGES and "toy-quality" not in EVALUATORS


def test_config_overrides_are_typed():
    from vq.train.config import override, parse_assignments

    config = TASKS.get("embed").get_config()
    changed = override(
        config,
        parse_assignments(["steps=7", "data=a,b", "encoder_kwargs.embed_dim=64", "teacher=none"]),
        "--set",
    )
    assert changed.steps == 7 and changed.data == ["a", "b"] and changed.teacher is None
    assert changed.encoder_kwargs == {"width_mult": 0.5, "image_size": 128, "embed_dim": 64}
    assert config.steps == 2500  # the original is untouched
    with pytest.raises(UsageError, match="no field 'stpes'"):
        override(config, {"stpes": "1"}, "--set")
    with pytest.raises(UsageError, match="'x' is not a valid int"):
        override(config, {"steps": "x"}, "--set")


@needs_train
def test_a_new_task_trains_exports_runs_and_evaluates(tmp_path, capsys):
    from vq.runtimes import open_session
    from vq.stages import open_stage

    work, art = tmp_path / "work", tmp_path / "toy-model"
    settings = tmp_path / "toy.toml"
    settings.write_text("hidden = 8\nlog_every = 5\n")
    with temporary_task(TOY):
        code = main(
            [
                "train",
                "toy",
                "--out",
                str(work),
                "--config",
                str(settings),
                "--steps",
                "40",
                "--set",
                "frames=3",
            ]
        )
        assert code == 0, capsys.readouterr().err
        recorded = json.loads((work / "config.json").read_text())
        assert (
            recorded["task"] == "toy"
            and recorded["train"]["hidden"] == 8
            and recorded["train"]["frames"] == 3
        )
        assert recorded["train"]["steps"] == 40 and recorded["export"]["attribute"] is None
        metrics = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
        assert metrics[-1]["eval/mse"] < metrics[0]["loss"]  # it learned something

        assert main(["export", "onnx", str(work), "--out", str(art)]) == 0, capsys.readouterr().err
        card = json.loads((art / "card.json").read_text())
        assert card["task"] == "toy" and [i["shape"] for i in card["inputs"]] == [["B", 3, 16, 16, 3], ["B"]]

        stage = open_stage(art, backend="ort-cpu")
        assert type(stage).__name__ == "ToyStage" and stage._session is None  # loaded on first use
        rng = np.random.default_rng(0)
        clips = rng.integers(0, 256, (7, 3, 16, 16, 3), dtype=np.uint8)
        gains = rng.uniform(0.5, 2.0, 7).astype(np.float32)
        whole = stage.run({"clip": clips.astype(np.float32) / 255, "gain": gains})["score"]
        np.testing.assert_allclose(stage.score(clips, gains, batch=3), whole, atol=1e-6)  # 3 + 3 + 1
        with open_session(stage.artifact, backend="jax") as reference:
            ref = reference.run({"clip": clips.astype(np.float32) / 255, "gain": gains})["score"]
        np.testing.assert_allclose(whole, ref, atol=1e-4)
        stage.close()

        report = tmp_path / "toy.json"
        assert main(["eval", "toy-quality", "--model", str(art), "--json", str(report)]) == 0
        result = json.loads(report.read_text())
        assert result["srocc"] > 0.5 and np.isfinite(result["mae"])


@dataclass
class _Options:
    data: list[str] = field(metadata={"help": "things", "required": True})
    rate: float = field(default=0.5, metadata={"help": "a rate"})
    deep: dict = field(default_factory=dict)


def test_options_come_from_the_dataclass():
    from vq.cli.dataclass_options import field_parameters

    params = {p.name: p for p in field_parameters(_Options)}
    assert set(params) == {"data", "rate"}  # mappings are left to --set / --config
    assert params["data"].default.default is ... and params["rate"].default.default == 0.5
    assert params["rate"].default.help == "a rate"
