"""Progress bars that show on a terminal and stay quiet when output is piped."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    return sys.stderr.isatty()


def track(items: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate `items`, drawing a rich progress bar on stderr when it is a terminal."""
    if not progress_enabled():
        yield from items
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


class TerminalUi:
    """The `vq.eval.base.Ui` shape for library code run from a command (dataset builds
    inside `vq train`): a progress bar on a terminal, notes as one line on stderr."""

    def track(self, items: Iterable[T], total: int, description: str) -> Iterable[T]:
        return track(items, total=total, description=description)

    def note(self, message: str, warn: bool = False) -> None:
        print(("warning: " if warn else "") + message, file=sys.stderr, flush=True)
