"""The `vq` command line: one typer module per command group, composed in `app.py`."""

from __future__ import annotations

import shlex

# The arguments of the running `vq` invocation, set by `vq.cli.app.main`; model cards
# record them as the exact command that produced a model.
invocation: list[str] = []


def command_line() -> str:
    """The command as typed, for cards (`vq train enhance --data ... --out runs/x`)."""
    return shlex.join(["vq", *invocation])
