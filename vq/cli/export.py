"""`vq export`: trained checkpoints (or fresh architectures) -> model artifacts, and engines."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vq.cli import command_line
from vq.cli.extras import literal, parse_pairs, require_train
from vq.cli.output import console, print_json
from vq.errors import UsageError

app = typer.Typer(
    help="Export models: Flax -> ONNX (+fp16/int8) artifacts, TensorRT engines.", no_args_is_help=True
)


@app.command("onnx")
def onnx_cmd(
    workdir: Path = typer.Argument(None, help="Training workdir (from `vq train`) to export."),
    arch: str = typer.Option(None, "--arch", help="Export a freshly initialised registry model instead."),
    out: Path = typer.Option(..., "--out", "-o", help="Artifact folder to write."),
    name: str = typer.Option(None, "--name", help="Model name in the card (default: folder name)."),
    task: str = typer.Option(None, "--task", help="Task in the card (default: from the workdir)."),
    description: str = typer.Option("", "--description", help="One paragraph for the card."),
    precision: list[str] = typer.Option(
        ["fp32"], "--precision", "-p", help="Graphs to write: fp32 (always), fp16, int8, fp8 (E4M3 Q/DQ)."
    ),
    calib: list[Path] = typer.Option(
        [], "--calib", help="Image folder(s) to calibrate int8 on (a video model: videos or folders of them)."
    ),
    calib_count: int = typer.Option(
        256, "--calib-count", help="Calibration images (a video model: windows)."
    ),
    set_: list[str] = typer.Option([], "--set", help="Model option for --arch, e.g. embed_dim=512."),
    profile: list[str] = typer.Option([], "--profile", help="TensorRT range, H=16:160:512."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset."),
    params: bool = typer.Option(
        True, "--params/--no-params", help="Include Flax params (for the jax backend)."
    ),
    seed: int = typer.Option(0, "--seed", help="Init seed for --arch."),
    temperature: float | None = typer.Option(
        None, "--temperature", help="Generative models: the sampler's default noise temperature (card)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing artifact."),
    json_out: bool = typer.Option(False, "--json", help="Print the card as JSON."),
) -> None:
    """Export to an ONNX artifact with a parity check (<= 1e-4 vs JAX) recorded in its card."""
    if (workdir is None) == (arch is None):
        raise UsageError("give a training WORKDIR or --arch NAME (one of them)")
    models = require_train("vq.train.models", "vq export")
    artifact_mod = require_train("vq.export.artifact", "vq export")
    precisions = tuple(dict.fromkeys(["fp32", *precision]))
    bad = [p for p in precisions if p not in ("fp32", "fp16", "int8", "fp8")]
    if bad:
        raise UsageError(f"unknown precision(s) {bad}: choose fp32, fp16, int8, fp8")

    training: dict = {}
    metrics: dict = {}
    if workdir is not None:
        config, task_name, training, metrics = _from_workdir(workdir)
        trainer = require_train("vq.train.trainer", "vq export")
        model, step = trainer.load_trained_model(config["model"], config.get("model_kwargs", {}), workdir)
        definition = models.model_def(config["model"])
        _, model_name, model_kwargs = definition.exported(
            config["model"], **definition.kwargs(**config.get("model_kwargs", {}))
        )
        training["exported_step"] = step
    else:
        model_name, task_name = arch, task or "untrained"
        model_kwargs = {k: literal(v) for k, v in parse_pairs(set_, "--set").items()}
        model = models.create_model(model_name, seed=seed, **model_kwargs)
        training = {"note": f"untrained: {model_name} initialised with seed {seed}"}
    io = models.model_io(model_name, **model_kwargs)

    calibration = None
    if {"int8", "fp8"} & set(precisions):
        if not calib:
            raise UsageError(
                "--precision int8/fp8 needs --calib DIR (real images, or for a video model videos, "
                "to calibrate on)"
            )
        calibration = _image_calibration(calib, io.inputs, io.preprocessing, calib_count)

    trt_profile = None
    if profile:
        trt_profile = {}
        for key, value in parse_pairs(profile, "--profile").items():
            try:
                trt_profile[key] = [int(v) for v in value.split(":")]
            except ValueError:
                raise UsageError(f"--profile {key}={value}: expected MIN:OPT:MAX integers") from None

    artifact = artifact_mod.export_artifact(
        model,
        model_name=model_name,
        model_kwargs=model_kwargs,
        out_dir=out,
        name=name or out.name,
        task=task or task_name,
        description=description,
        precisions=precisions,
        calibration=calibration,
        training=training,
        metrics=metrics,
        opset=opset,
        trt_profile=trt_profile,
        command=command_line(),
        include_params=params,
        force=force,
        temperature=temperature,
    )
    if json_out:
        print_json(artifact.card.to_json())
        return
    parity = artifact.card.export["parity"]["max_abs_error"]
    console.print(
        f"wrote {artifact.root}: {', '.join(artifact.card.files)}; parity vs JAX {parity:.3g} (limit 1e-4)"
    )


def _image_calibration(folders: list[Path], inputs, preprocessing: dict, count: int):
    """seed -> feed batches of real images prepared as the runtime prepares them (a
    generative sampler-step graph gets real tiles, noise and its sampler's times; a video
    model, windows of the videos in `folders`)."""
    calibration_mod = require_train("vq.export.calibration", "vq export")

    def calibration(seed: int):
        if "tile" in preprocessing and len(inputs) > 1:
            return calibration_mod.sampler_feeds(folders, inputs, preprocessing, count=count, seed=seed)
        if "fragments" in preprocessing:  # a video model: windows of real videos
            return calibration_mod.clip_feeds(folders, inputs[0], preprocessing, count=count, seed=seed)
        return calibration_mod.image_feeds(folders, inputs[0], preprocessing, count=count, seed=seed)

    return calibration


@app.command("int8")
def int8_cmd(
    model: str = typer.Argument(..., help="Zoo name or artifact folder (rewritten in place)."),
    calib: list[Path] = typer.Option(
        ..., "--calib", help="Image folder(s) to calibrate on (a video model: videos or folders of them)."
    ),
    calib_count: int = typer.Option(
        256, "--calib-count", help="Calibration images (a video model: windows)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the new int8 facts as JSON."),
) -> None:
    """Re-quantise an artifact's int8 graphs from its fp32 graph (7-bit CPU weights: the
    same integers on AVX2, AVX-512 and VNNI CPUs)."""
    from vq.models import load_model

    artifact_mod = require_train("vq.export.artifact", "vq export")
    artifact = load_model(model)
    calibration = _image_calibration(calib, artifact.card.inputs, artifact.card.preprocessing, calib_count)
    artifact = artifact_mod.requantize_artifact(artifact, calibration, command=command_line())
    facts = artifact.card.export["int8"]
    if json_out:
        print_json(facts)
        return
    for target in ("cpu", "gpu"):
        drift = facts[target]["vs_fp32"]
        console.print(
            f"{artifact.name} int8-{target}: cosine vs fp32 min {drift['min_cosine']:.4f} "
            f"mean {drift['mean_cosine']:.5f}, max abs {drift['max_abs_error']:.3g}"
        )


# Training-config fields that name an earlier stage's workdir (lpm-control's --base,
# lpm-distill's --teacher, kvq's --pretrained): the card records that stage too.
UPSTREAM_FIELDS = ("base", "teacher", "pretrained")


def _from_workdir(workdir: Path) -> tuple[dict, str, dict, dict]:
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise UsageError(f"{workdir} is not a training workdir (no config.json)")
    config = json.loads(config_path.read_text())
    training, metrics = _training_record(workdir, config)
    from vq.tasks import TASKS, task_def

    task = config["task"]
    if task in TASKS:  # an LPM stage's model is an enhance model: the card says what runs it
        task = task_def(task).serves or task
    return config, task, training, metrics


def _training_record(workdir: Path, config: dict) -> tuple[dict, dict]:
    """(how the workdir was trained, its last eval metrics), with the stages it started
    from under ``upstream`` (each with its own command, data, steps and metrics)."""
    training = {k: config[k] for k in ("command", "data", "train", "devices") if k in config}
    if isinstance(training.get("data"), dict):  # long held-out lists stay in the workdir
        training["data"] = {k: v for k, v in training["data"].items() if k != "holdout"}
    metrics: dict = {}
    metrics_path = workdir / "metrics.jsonl"
    if metrics_path.is_file():
        for line in metrics_path.read_text().splitlines():
            record = json.loads(line)
            metrics.update({k: v for k, v in record.items() if k.startswith("eval/")})
            if "loss" in record:
                training["final_loss"] = record["loss"]
                training["steps"] = record["step"]
    metrics = {k.removeprefix("eval/"): v for k, v in metrics.items()}
    upstream = []
    for field in UPSTREAM_FIELDS:
        ref = (config.get("train") or {}).get(field)
        if isinstance(ref, str) and (Path(ref) / "config.json").is_file():
            parent = json.loads((Path(ref) / "config.json").read_text())
            record, parent_metrics = _training_record(Path(ref), parent)
            record.pop("train", None)  # the typed config stays in that workdir
            upstream.append({"role": field, "task": parent.get("task"), **record, "metrics": parent_metrics})
    if upstream:
        training["upstream"] = upstream
    return training, metrics


@app.command("engine")
def engine_cmd(
    model: str = typer.Argument(..., help="Zoo name or artifact folder."),
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32, fp16 or int8 graph."),
    profile: list[str] = typer.Option([], "--profile", help="min:opt:max for a symbolic dim, B=1:8:32."),
    workspace_gib: float = typer.Option(4.0, "--workspace-gib", help="TensorRT builder workspace."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even if a cached engine exists."),
) -> None:
    """Build (or reuse) the TensorRT engine for this GPU beside the artifact."""
    from vq.models import load_model
    from vq.runtimes import get_backend

    trt = get_backend("trt")
    if not trt.available():
        raise UsageError(f"TensorRT engines need a GPU host: {trt.unavailable_reason()}")
    from vq.export import engine

    ranges = {}
    for key, value in parse_pairs(profile, "--profile").items():
        lo, opt, hi = (int(v) for v in value.split(":"))
        ranges[key] = (lo, opt, hi)
    path = engine.build_engine_for(load_model(model), precision, ranges or None, workspace_gib, rebuild)
    console.print(f"engine: {path}")
