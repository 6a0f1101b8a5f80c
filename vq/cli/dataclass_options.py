"""Command-line options generated from a dataclass: one ``--flag`` per field.

Task configs (`vq train TASK`) and evaluation options (`vq eval NAME`) are typed
dataclasses; their fields, types and ``metadata={"help": ..., "flags": [...],
"required": True}`` are the single source of the options, their help and their
conversion. Typer reads a command's parameters from its signature, so the command is a
function whose ``__signature__`` is built here.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

_SCALARS = (str, int, float, bool, Path)


def _option_type(kind: Any) -> Any | None:
    """The annotation typer should see for a field type, or None to leave the field to
    ``--set``/``--config`` (mappings, nested structures)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _option_type(inner[0]) if len(inner) == 1 else None
    if origin in (list, tuple):
        item = args[0] if args else str
        return list[item] if item in _SCALARS else None
    return kind if kind in _SCALARS else None


def field_parameters(cls: type, shown_defaults: Any = None) -> list[inspect.Parameter]:
    """Keyword parameters for the option-able fields of dataclass `cls`.

    With `shown_defaults` (an instance) every option defaults to None, meaning "not
    given", and its help shows the instance's value: callers layer the given options over
    a config built elsewhere. Without it the dataclass defaults are the option defaults.
    """
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        kind = _option_type(hints[f.name])
        if kind is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}" if kind is bool else flag, *f.metadata.get("flags", [])]
        help_text = f.metadata.get("help", "")
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if shown_defaults is not None:
            value = getattr(shown_defaults, f.name)
            help_text += f" (task default: {_show(value)})" if value not in (None, [], "") else ""
            default: Any = None
            annotation = kind | None
        elif f.metadata.get("required") or not has_default:
            default, annotation = ..., kind
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            annotation = kind if default is not None else kind | None
        option = typer.Option(default, *decls, help=help_text, show_default=shown_defaults is None)
        params.append(
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
        )
    return params


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def given(values: dict[str, Any], cls: type) -> dict[str, Any]:
    """The field options that were given (not None, not an empty repeatable option)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names and v is not None and v != [] and v != ()}


def make_command(
    callback: Callable[[dict[str, Any]], Any], params: list[inspect.Parameter], doc: str
) -> Callable[..., Any]:
    """A function typer can register whose signature is `params`; it calls `callback`
    with the parsed values as one dict."""

    def command(**values: Any) -> Any:
        return callback(values)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    return command
