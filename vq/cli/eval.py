"""`vq eval NAME`: every registered evaluation harness, with options from its dataclass.

The harnesses live in `vq.eval` and are listed in `vq.tasks.EVALUATORS`; this module only
turns each one's options into command-line flags, runs it with a progress bar, prints its
tables and writes its full report with ``--json PATH``.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import typer

from vq.cli.dataclass_options import field_parameters, make_command
from vq.cli.output import err_console, print_table
from vq.fsutil import atomic_write_text

JSON_PARAM = inspect.Parameter(
    "json_path",
    inspect.Parameter.KEYWORD_ONLY,
    default=typer.Option(None, "--json", help="Write the full report (JSON) here."),
    annotation=Path | None,
)


class CliUi:
    """Progress bars on a terminal (quiet when piped), notes on stderr."""

    def track(self, items, total, description):
        from vq.progress import track

        return track(items, total=total, description=description)

    def note(self, message: str, warn: bool = False) -> None:
        err_console.print(message, style="yellow" if warn else "dim")


def build_app() -> typer.Typer:
    from vq.tasks import EVALUATORS

    app = typer.Typer(
        help="Evaluations: each reports baselines measured in the same run.", no_args_is_help=True
    )
    for name in EVALUATORS.names():
        entry = EVALUATORS.entry(name)
        evaluator = EVALUATORS.get(name)
        doc = evaluator.summary
        if entry.summary:
            doc += f" ({entry.summary})"
        params = [*field_parameters(evaluator.options), JSON_PARAM]
        app.command(name)(make_command(_runner(evaluator), params, doc))
    return app


def _runner(evaluator):
    def run(values: dict[str, Any]) -> None:
        json_path = values.pop("json_path")
        report = evaluator.run(evaluator.options(**values), CliUi())
        for table in report.tables:
            print_table(table.rows, table.columns, title=table.title)
        if json_path:
            atomic_write_text(json_path, json.dumps(report.data, indent=1, default=str) + "\n")

    return run
