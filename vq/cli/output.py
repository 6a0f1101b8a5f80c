"""Printing for the CLI: rich tables for people, JSON/JSONL for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

# Markup off: paths, errors and install hints contain brackets (vq[gpu]) that rich would eat.
# soft_wrap: a long path or error stays one line when piped (rich would wrap at 80 columns).
console = Console(markup=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def print_jsonl(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def print_table(rows: Iterable[dict[str, Any]], columns: list[tuple[str, str]], title: str = "") -> None:
    """`columns` are (key, header) pairs; floats print with 4 significant digits."""
    table = Table(title=title or None)
    for _, header in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key, _ in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)
