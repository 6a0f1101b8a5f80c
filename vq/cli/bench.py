"""`vq bench`: measure backends side by side on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from vq.bench import Variant, bench_backends, default_variants, machine_info
from vq.cli.extras import parse_pairs
from vq.cli.output import err_console, print_table
from vq.errors import UsageError
from vq.fsutil import atomic_write_text
from vq.models import load_model

app = typer.Typer(
    help="Benchmarks that compare variants in one run (ratios, not absolutes).", no_args_is_help=True
)


@app.command("backends")
def backends_cmd(
    model: str = typer.Option("vq-enhance-x2", "--model", "-m", help="Zoo name or artifact folder."),
    variants: list[str] = typer.Option(
        [],
        "--variant",
        "-v",
        help="backend-device-precision, e.g. ort-cpu-int8 (repeatable); default: everything available here.",
    ),
    batch: str = typer.Option("1,8,32", "--batch", help="Comma-separated batch sizes."),
    dims: list[str] = typer.Option([], "--dims", help="Size for a symbolic dim, e.g. H=128."),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads (0: ORT default)."),
    min_seconds: float = typer.Option(1.0, "--min-seconds", help="Measure each point at least this long."),
    json_path: Path = typer.Option(None, "--json", help="Also write the rows as JSON here."),
) -> None:
    """Throughput and p50/p99 latency per backend and batch size, baseline = first variant."""
    artifact = load_model(model)
    try:
        batches = [int(b) for b in batch.split(",") if b.strip()]
    except ValueError:
        raise UsageError(f"--batch must be comma-separated integers, got {batch!r}") from None
    chosen = [_parse_variant(v) for v in variants] or default_variants(artifact)
    if not chosen:
        raise UsageError("no backend available to benchmark: pip install 'vq[cpu]'")
    sizes = {k: int(v) for k, v in parse_pairs(dims, "--dims").items()}
    for spec in artifact.card.inputs:  # symbolic image dims default to the TensorRT opt size
        for d in spec.shape:
            if isinstance(d, str) and d != "B" and d not in sizes:
                sizes[d] = int(artifact.card.export.get("profile", {}).get(d, [0, 128])[1])
    err_console.print(f"model {artifact.name}; variants: {', '.join(v.label for v in chosen)}", style="dim")
    rows = bench_backends(artifact, chosen, batches, sizes, threads or None, min_seconds=min_seconds)
    print_table(
        rows,
        [
            ("label", "variant"),
            ("batch", "batch"),
            ("items_per_s", "items/s"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("speedup", f"x {chosen[0].label}"),
            ("error", "error"),
        ],
        title=f"{artifact.name} backends",
    )
    if json_path:
        atomic_write_text(
            json_path, _json({"model": artifact.name, "dims": sizes, "machine": machine_info(), "rows": rows})
        )
        err_console.print(f"wrote {json_path}", style="dim")


def _parse_variant(text: str) -> Variant:
    parts = text.split("-")
    if len(parts) != 3:
        raise UsageError(f"variant must be backend-device-precision (e.g. ort-cpu-int8), got {text!r}")
    return Variant(*parts)


def _json(obj: object) -> str:
    import json

    return json.dumps(obj, indent=2) + "\n"
