"""`vq backends`: which inference backends this machine can use, and why not."""

from __future__ import annotations

import typer

from vq.cli.output import print_json, print_table
from vq.runtimes import backend_status


def backends_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List inference backends: available here or what to install."""
    rows = backend_status()
    if json_out:
        print_json(rows)
        return
    for row in rows:
        row["status"] = "yes" if row["available"] else row["reason"]
    print_table(
        rows,
        [
            ("name", "backend"),
            ("status", "available"),
            ("devices", "devices"),
            ("extra", "extra"),
            ("summary", "what"),
        ],
    )
