"""Options several commands share, declared once (typer accepts one Option as the default
of many parameters)."""

from __future__ import annotations

import typer

from vq.runtimes import BACKEND_CHOICES

MODEL = typer.Option(None, "--model", "-m", help="Zoo name or artifact folder (default: the shipped model).")
COMPANION = typer.Option(
    [],
    "--companion",
    help="Also embed every video with this model, in a companion library inside the new one; a "
    "reference either model finds is one match (repeatable; default: vq-embed-luma, blind to colour "
    "grades, beside the shipped vq-embed; none: one model only).",
)
BACKEND = typer.Option("auto", "--backend", "-b", help=f"One of {', '.join(BACKEND_CHOICES)}.")
PRECISION = typer.Option("fp32", "--precision", "-p", help="fp32, fp16 or int8 (what the artifact holds).")

CLUSTER = typer.Option(
    None,
    "--cluster",
    help="Search sharded libraries (`vq index shard`) through their Ray shards: auto (this "
    "machine's cluster, else a private one), local (a private one), or an address (ray://head:10001).",
)
