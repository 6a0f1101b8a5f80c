"""Weights one run starts from that another run made: a `vq train` workdir or a model.

A fine-tune (`vq train kvq --init`), a frozen part (`vq train lpm-base --anchor`, the
control stage's `--base`, the teacher of a distillation) or a pretrained backbone (a QPT
run) reads weights someone trained before. They come either from a workdir (its
config.json says what was trained and how; the latest checkpoint holds the weights) or
from a model artifact (a zoo name or a folder) whose card carries the Flax params and
the training record. One home for reading both, so every task checks the same things and
records a starting point in the same terms: the workdir's config.json keys (``task``,
``model``, ``model_kwargs``, ``command``, ``data``), plus ``artifact`` (its folder) and
``model_files`` where the weights are a model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flax import nnx

from vq.errors import ModelError, UsageError


def recorded_run(workdir: str | Path, task: str) -> dict[str, Any]:
    """The config.json of a `vq train <task>` workdir (command, data, model options)."""
    config_file = Path(workdir) / "config.json"
    recorded = json.loads(config_file.read_text()) if config_file.is_file() else None
    if not recorded or recorded.get("task") != task:
        raise UsageError(f"{workdir}: not a vq train {task} workdir (train one with vq train {task})")
    return recorded


def starting_point(source: str, *, task: str, model: str, option: str) -> dict[str, Any]:
    """What `option` (the flag that named `source`, for errors) starts from: a `vq train
    <task>` workdir's record, or the record of a `task` model whose card carries `model`
    Flax params, in the same terms (see the module docstring)."""
    if (Path(source) / "config.json").is_file():
        recorded = recorded_run(source, task)
        if recorded.get("model") != model:
            raise UsageError(f"{option} {source}: a {recorded.get('model')} run, not {model}")
        return recorded
    from vq.models import load_model

    try:
        artifact = load_model(source, task=task)
    except ModelError as e:
        raise UsageError(
            f"{option} {source}: not a vq train {task} workdir, nor a {task} model ({e})"
        ) from None
    flax = artifact.card.flax or {}
    if flax.get("model") != model or "params" not in flax:
        raise UsageError(f"{option} {source}: the model carries no {model} Flax params to start from")
    training = artifact.card.training or {}
    return {
        "task": task,
        "model": model,
        "model_kwargs": flax.get("kwargs", {}),
        "command": training.get("command"),
        "data": training.get("data", {}),
        "artifact": str(artifact.root),
        # A zoo name is no fixed model from release to release: its params' checksum is.
        "model_files": {"name": artifact.name, "params_sha256": flax.get("sha256")},
        "description": artifact.card.description,
        "metrics": artifact.card.metrics,
    }


def starting_model(source: str, recorded: dict[str, Any]) -> tuple[nnx.Module, int | None]:
    """(the model of a `starting_point` record in eval mode, the workdir's checkpoint step
    or None for a model's params)."""
    from vq.train.models import create_model

    if "artifact" in recorded:
        from vq.models import Artifact
        from vq.train.checkpoints import load_params

        model = create_model(recorded["model"], **recorded["model_kwargs"])
        model = load_params(model, Artifact(Path(recorded["artifact"])).params_path())
        model.eval()
        return model, None
    from vq.train.trainer import load_trained_model

    return load_trained_model(recorded["model"], recorded["model_kwargs"], source)
