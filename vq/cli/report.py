"""`vq report`: a run's records as one self-contained review page."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vq.cli.output import err_console
from vq.errors import UsageError


def read_records(path: Path) -> list[dict]:
    """The JSON lines of a `vq run --out` file (blank lines skipped); one bad line fails
    with its number."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    records = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}:{n}: not a JSON record ({e.msg})") from None
        if not isinstance(record, dict) or "path" not in record or "status" not in record:
            raise UsageError(f"{path}:{n}: not a vq run record (needs path and status)")
        records.append(record)
    return records


def report_cmd(
    results: Path = typer.Argument(..., help="Records of a run: the JSONL of `vq run --out`."),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML page to write."),
    title: str = typer.Option("vq review", "--title", help="The page's title."),
) -> None:
    """Write the review page: per upload the verdict, each copy's frames side by side and
    its similarity heatmap, the content box, quality over time; filter and sort in the page."""
    from vq.report import write_report

    records = read_records(results)
    write_report(records, out, title=title)
    err_console.print(f"review page: {out} ({len(records)} upload(s))", style="dim")
