"""What an evaluation harness is: typed options in, a report (tables + JSON) out.

`vq eval NAME` is generic: the CLI builds its options from the harness's `options`
dataclass (one ``--flag`` per field, help from the field's metadata), calls `run`, prints
the report's tables and writes its `data` with ``--json PATH``. Harnesses never print:
long work goes through `Ui.track` (a progress bar on a terminal) and messages through
`Ui.note`, so a harness runs the same from the CLI, a test or a benchmark script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Ui(Protocol):
    def track(self, items: Iterable[T], total: int, description: str) -> Iterable[T]: ...

    def note(self, message: str, warn: bool = False) -> None: ...


class QuietUi:
    """No progress, no messages (library use, tests)."""

    def track(self, items: Iterable[T], total: int, description: str) -> Iterable[T]:
        return items

    def note(self, message: str, warn: bool = False) -> None:
        pass


@dataclass
class Table:
    """Rows of a report; `columns` are (key, header) pairs."""

    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]


@dataclass
class Report:
    tables: list[Table]
    data: dict[str, Any]  # the full result, written by --json


@dataclass(frozen=True)
class Evaluator:
    """A registered harness (see `vq.tasks.EVALUATORS`)."""

    summary: str
    options: type  # a dataclass; its fields become the command's options
    run: Callable[[Any, Ui], Report]


# Options most harnesses share, declared once (`field(...)` objects are per-use copies).
def model_option() -> Any:
    return field(
        default=None,
        metadata={"help": "Zoo name or artifact folder (default: the shipped model).", "flags": ["-m"]},
    )


def backend_option() -> Any:
    return field(
        default="auto", metadata={"help": "auto, trt, ort, ort-cuda, ort-cpu or jax.", "flags": ["-b"]}
    )


def precision_option() -> Any:
    return field(
        default="fp32", metadata={"help": "fp32, fp16 or int8 (what the artifact holds).", "flags": ["-p"]}
    )
