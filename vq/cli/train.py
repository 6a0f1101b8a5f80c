"""`vq train TASK`: train any registered task with the data-parallel trainer.

Each task's options are generated from its config dataclass (`vq.tasks`, then
``train/<task>/config.py``): one flag per field, shown with the task's default.
``--config FILE`` and ``--set key=value`` reach every field, nested ones included.
Needs the ``train`` extra (JAX); the error says so in one line when it is missing.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from vq.cli import command_line
from vq.cli.dataclass_options import field_parameters, given, make_command
from vq.cli.extras import require_train
from vq.cli.output import err_console, print_json
from vq.errors import UsageError


def _option(name: str, default: Any, *decls: str, help: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(default, *decls, help=help),
        annotation=annotation,
    )


# Options every task shares: the workdir, config layering and multi-host settings.
COMMON = [
    _option(
        "out",
        ...,
        "--out",
        "-o",
        help="Workdir: checkpoints, metrics.jsonl, config.json (resumes).",
        annotation=Path,
    ),
    _option(
        "config_file", None, "--config", help="JSON or TOML file: field -> value.", annotation=Path | None
    ),
    _option(
        "assignments",
        [],
        "--set",
        help="field=value (dotted keys for nested fields); repeatable.",
        annotation=list[str],
    ),
    _option(
        "smoke", False, "--smoke", help="Seconds-long run with a tiny model (CI, laptops).", annotation=bool
    ),
    _option(
        "stop_at",
        None,
        "--stop-at",
        help="End this run after STEP (a checkpoint is written); run again to resume the schedule.",
        annotation=int | None,
    ),
    _option(
        "coordinator",
        None,
        "--coordinator",
        help="host:port of process 0 (multi-host).",
        annotation=str | None,
    ),
    _option(
        "num_processes", None, "--num-processes", help="Processes in a multi-host run.", annotation=int | None
    ),
    _option(
        "process_id",
        None,
        "--process-id",
        help="This process's index in a multi-host run.",
        annotation=int | None,
    ),
]


def build_app() -> typer.Typer:
    from vq.tasks import TASKS, task_def

    app = typer.Typer(
        help="Train models (JAX/Flax; one CPU, a GPU, or a multi-host pod). Resumes from the workdir.",
        no_args_is_help=True,
    )
    for name in TASKS.names():
        defn = task_def(name)
        defaults = defn.get_config()
        params = [*COMMON, *field_parameters(type(defaults), shown_defaults=defaults)]
        doc = f"Train {name}: {defn.summary}."
        app.command(name)(make_command(_runner(name, type(defaults)), params, doc))
    return app


def _runner(name: str, config_cls: type):
    def run(values: dict[str, Any]) -> None:
        from vq.tasks import task_def

        config_mod = require_train("vq.train.config", f"vq train {name}")
        trainer = require_train("vq.train.trainer", f"vq train {name}")
        defn = task_def(name)
        if values["stop_at"] is not None and values["stop_at"] < 1:
            raise UsageError(f"--stop-at must be a step >= 1 (got {values['stop_at']})")
        config = defn.get_config(smoke=values["smoke"])
        if values["config_file"] is not None:
            config = config_mod.override(
                config, config_mod.load_file(values["config_file"]), str(values["config_file"])
            )
        config = config_mod.override(config, given(values, config_cls), "option")
        config = config_mod.override(config, config_mod.parse_assignments(values["assignments"]), "--set")
        trainer.initialize_distributed(values["coordinator"], values["num_processes"], values["process_id"])
        task = defn.build_task(config)
        out = values["out"]
        result = trainer.train_and_evaluate(
            task, config, out, run_facts={"command": command_line()}, stop_at=values["stop_at"]
        )
        done = "paused" if result["final"]["step"] < config.steps else "trained"
        err_console.print(
            f"{done} {name} into {out} at step {result['final']['step']} of {config.steps}"
            f" (resumed from step {result['resumed_from']})",
            style="dim",
        )
        print_json(result["final"])

    return run
