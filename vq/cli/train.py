"""`vq train`: train a task with the data-parallel trainer (needs the `train` extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.cli import command_line
from vq.cli.extras import require_train
from vq.cli.output import err_console, print_json

app = typer.Typer(help="Train models (JAX/Flax; one CPU, a GPU, or a multi-host pod).", no_args_is_help=True)

# Options every task shares: optimisation, resume and multi-host settings.
STEPS = typer.Option(None, "--steps", help="Total steps (default: the task config).")
BATCH = typer.Option(None, "--batch-size", help="Global batch, split over all devices.")
LR = typer.Option(None, "--lr", help="Peak learning rate.")
SEED = typer.Option(0, "--seed", help="Seed for init and data order.")
SMOKE = typer.Option(False, "--smoke", help="Seconds-long run with a tiny model (CI, laptops).")
COORD = typer.Option(None, "--coordinator", help="host:port of process 0 (multi-host).")
NPROC = typer.Option(None, "--num-processes", help="Processes in a multi-host run.")
PID = typer.Option(None, "--process-id", help="This process's index in a multi-host run.")


def _run(
    task_factory,
    task_kwargs: dict,
    config_overrides: dict,
    out: Path,
    smoke: bool,
    coordinator,
    num_processes,
    process_id,
    data_facts: dict,
) -> None:
    trainer = require_train("vq.train.trainer", "vq train")
    trainer.initialize_distributed(coordinator, num_processes, process_id)
    task = task_factory(**task_kwargs)
    config_mod = require_train(f"vq.train.{task.name}.config", "vq train")
    config, _ = config_mod.get_config(smoke=smoke)
    for key, value in config_overrides.items():
        if value is not None:
            setattr(config, key, value)
    result = trainer.train_and_evaluate(
        task,
        config,
        out,
        run_facts={"command": command_line(), "data": {**data_facts, **task.data_facts}},
    )
    err_console.print(
        f"trained {task.name} into {out} (resumed from step {result['resumed_from']})", style="dim"
    )
    print_json(result["final"])


@app.command("enhance")
def enhance_cmd(
    data: list[Path] = typer.Option(..., "--data", help="HR image folder(s); LR twins in <dir>_lr_x<scale>."),
    eval_data: list[Path] = typer.Option([], "--eval-data", help="Held-out folder(s) for PSNR (e.g. Set5)."),
    out: Path = typer.Option(..., "--out", "-o", help="Workdir: checkpoints, metrics.jsonl, config.json."),
    scale: int = typer.Option(2, "--scale", help="Upscaling factor (power of two)."),
    steps: int = STEPS,
    batch_size: int = BATCH,
    lr: float = LR,
    seed: int = SEED,
    smoke: bool = SMOKE,
    coordinator: str = COORD,
    num_processes: int = NPROC,
    process_id: int = PID,
) -> None:
    """Train the x2 super-resolution model; resumes if OUT already holds checkpoints."""
    require_train("vq.train.enhance.task", "vq train enhance")
    from vq.train import TASKS
    from vq.train.enhance.config import get_config

    _, task_settings = get_config(smoke=smoke)
    _run(
        TASKS.get("enhance"),
        {
            "data": data,
            "eval_data": eval_data,
            "scale": scale,
            "patch": task_settings["patch"],
            "model_kwargs": task_settings["model_kwargs"],
            "seed": seed,
        },
        {"steps": steps, "batch_size": batch_size, "learning_rate": lr, "seed": seed},
        out,
        smoke,
        coordinator,
        num_processes,
        process_id,
        {},
    )


@app.command("embed")
def embed_cmd(
    data: list[Path] = typer.Option(..., "--data", help="Image folders, videos or folders of videos."),
    out: Path = typer.Option(..., "--out", "-o", help="Workdir: checkpoints, metrics.jsonl, config.json."),
    holdout: float = typer.Option(None, "--holdout", help="Share of sources kept out for evaluation."),
    teacher: str = typer.Option(None, "--teacher", help="Embedding artifact to distil from (optional)."),
    distill_weight: float = typer.Option(1.0, "--distill-weight", help="Weight of the distillation loss."),
    steps: int = STEPS,
    batch_size: int = BATCH,
    lr: float = LR,
    seed: int = SEED,
    smoke: bool = SMOKE,
    coordinator: str = COORD,
    num_processes: int = NPROC,
    process_id: int = PID,
) -> None:
    """Train the copy-detection frame embedder (MoCo on copy-disguise edits)."""
    require_train("vq.train.embed.task", "vq train embed")
    from vq.train import TASKS
    from vq.train.embed.config import get_config

    _, settings = get_config(smoke=smoke)
    if holdout is not None:
        settings["holdout"] = holdout
    _run(
        TASKS.get("embed"),
        {"data": data, **settings, "teacher": teacher, "distill_weight": distill_weight, "seed": seed},
        {"steps": steps, "batch_size": batch_size, "learning_rate": lr, "seed": seed},
        out,
        smoke,
        coordinator,
        num_processes,
        process_id,
        {},
    )
