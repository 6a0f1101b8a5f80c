"""Typed training configs: one dataclass per task, overridden from files and the command line.

Each task's ``train/<task>/config.py`` defines a dataclass that extends `TrainConfig`
(the settings the trainer itself reads) with the task's own fields, and a
``get_config(smoke=False)`` returning an instance: the shipped model's settings, or a
seconds-long smoke run. `vq train TASK` then applies, in order: ``--config FILE`` (JSON or
TOML, field -> value), the task's options (``--data``, ``--steps``, one per field), and
``--set key=value`` (dotted keys reach into dict fields: ``encoder_kwargs.width_mult=0.5``).
Values given as text are converted by the field's type, so a typo or a wrong type fails
with one line naming the field. This module imports no JAX: configs load on any install.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vq.errors import UsageError


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings shared by every task."""

    steps: int = dataclasses.field(default=1000, metadata={"help": "Total optimisation steps."})
    batch_size: int = dataclasses.field(
        default=32, metadata={"help": "Global batch, split over all devices (a multiple of their count)."}
    )
    learning_rate: float = dataclasses.field(
        default=1e-3, metadata={"help": "Peak learning rate (AdamW, warmup + cosine).", "flags": ["--lr"]}
    )
    warmup_steps: int = dataclasses.field(default=50, metadata={"help": "Linear warmup steps."})
    weight_decay: float = dataclasses.field(default=1e-4, metadata={"help": "AdamW weight decay."})
    grad_clip: float = dataclasses.field(default=1.0, metadata={"help": "Global gradient-norm clip."})
    seed: int = dataclasses.field(default=0, metadata={"help": "Seed for init and data order."})
    log_every: int = dataclasses.field(default=10, metadata={"help": "Steps between metric lines."})
    eval_every: int = dataclasses.field(
        default=0, metadata={"help": "Steps between evaluations (0: at the end)."}
    )
    checkpoint_every: int = dataclasses.field(default=200, metadata={"help": "Steps between checkpoints."})
    keep_checkpoints: int = dataclasses.field(default=3, metadata={"help": "Checkpoints kept."})


def field_types(config_cls: type) -> dict[str, Any]:
    """Resolved type hints of a config dataclass, field name -> type."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def coerce(value: Any, kind: Any, where: str) -> Any:
    """`value` (text from a command line, or a parsed file value) as type `kind`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        empty = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if empty and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], where) if len(inner) == 1 else value
    if origin in (list, tuple):
        item = args[0] if args else str
        if isinstance(value, str):
            text = value.strip()
            value = _literal(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        return [coerce(v, item, where) for v in value]
    if origin is dict or kind is dict:
        if isinstance(value, str):
            value = _literal(value)
        if not isinstance(value, dict):
            raise UsageError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return lowered in ("true", "1", "yes")
            return bool(value)
        if kind in (int, float, str):
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return kind(value)
        if kind is Path:
            return str(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {value!r} is not a valid {getattr(kind, '__name__', kind)}") from None
    return value


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text


def override(config: Any, values: dict[str, Any], source: str) -> Any:
    """A copy of `config` with `values` (field or dotted "field.key" -> value) applied."""
    types_ = field_types(type(config))
    updates: dict[str, Any] = {}
    for key, value in values.items():
        name, _, sub = key.partition(".")
        if name not in types_:
            known = ", ".join(sorted(types_))
            raise UsageError(f"{source}: {type(config).__name__} has no field {name!r} (fields: {known})")
        if sub:
            current = dict(updates.get(name, getattr(config, name)) or {})
            if not isinstance(getattr(config, name), dict | type(None)):
                raise UsageError(f"{source}: {name} is not a mapping; set it as {name}=VALUE")
            _set_dotted(current, sub.split("."), _literal(value) if isinstance(value, str) else value)
            updates[name] = current
        else:
            updates[name] = coerce(value, types_[name], f"{source} {name}")
    return dataclasses.replace(config, **updates)


def _set_dotted(mapping: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        mapping[key] = dict(mapping.get(key) or {})
        mapping = mapping[key]
    mapping[keys[-1]] = value


def parse_assignments(items: list[str], what: str = "--set") -> dict[str, str]:
    """["a=1", "b.c=x"] -> {"a": "1", "b.c": "x"}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} must look like KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_file(path: str | Path) -> dict[str, Any]:
    """Field -> value from a JSON or TOML file (by suffix)."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{path}: unreadable config ({e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a config file holds a mapping of field -> value")
    return data
