"""Import the optional `train`-extra packages inside a command, with a clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

from vq.errors import MissingExtraError


def require_train(module: str, what: str) -> ModuleType:
    """Import `module` (under vq.train / vq.export); a missing JAX stack names the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(what, "train", e) from e


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    """["a=1", "b=x"] -> {"a": "1", "b": "x"} for repeated --set/--dims style options."""
    from vq.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def literal(value: str):
    """'3' -> 3, '0.5' -> 0.5, 'gem' -> 'gem', 'true' -> True (for --set model options)."""
    import ast

    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
