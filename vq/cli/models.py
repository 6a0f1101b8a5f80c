"""`vq models`: list, show and verify model artifacts."""

from __future__ import annotations

import typer

from vq.cli.output import console, print_json, print_table
from vq.models import list_models, load_model
from vq.tasks import default_models

app = typer.Typer(
    help="Model artifacts: the shipped zoo and any folder with a card.json.", no_args_is_help=True
)


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List models on the search path (vq/zoo and $VQ_MODEL_PATH)."""
    defaults = {v: k for k, v in default_models().items()}
    rows = [
        {
            "name": a.name,
            "task": a.card.task,
            "version": a.card.version,
            "precisions": a.precisions,
            "default_for": defaults.get(a.name, ""),
            "path": str(a.root),
        }
        for a in list_models()
    ]
    if json_out:
        print_json(rows)
    else:
        print_table(
            rows,
            [
                ("name", "name"),
                ("task", "task"),
                ("version", "version"),
                ("precisions", "precisions"),
                ("default_for", "default for"),
                ("path", "path"),
            ],
        )


@app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Zoo name or artifact folder."),
    json_out: bool = typer.Option(False, "--json", help="Print the card as JSON."),
) -> None:
    """Print a model's card: I/O, preprocessing, export facts, training facts, metrics."""
    artifact = load_model(name)
    card = artifact.card.to_json()
    if json_out:
        print_json({**card, "path": str(artifact.root)})
        return
    console.print(f"{artifact.name} ({card['task']}, v{card['version']})  {artifact.root}", style="bold")
    if card.get("description"):
        console.print(card["description"])
    for t in artifact.card.inputs:
        console.print(f"  input  {t.name}: {t.dtype} {list(t.shape)}")
    for t in artifact.card.outputs:
        console.print(f"  output {t.name}: {t.dtype} {list(t.shape)}")
    graphs = ", ".join(f"{g} ({e.get('bytes', 0) / 1e6:.2f} MB)" for g, e in artifact.card.files.items())
    console.print(f"  graphs: {graphs}")
    parity = card.get("export", {}).get("parity", {})
    if parity:
        console.print(f"  parity vs JAX: max abs error {parity.get('max_abs_error'):.3g}")
    if card.get("training", {}).get("command"):
        console.print(f"  trained with: {card['training']['command']}")
    for key, value in card.get("metrics", {}).items():
        console.print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")


@app.command("verify")
def verify_cmd(name: str = typer.Argument(..., help="Zoo name or artifact folder.")) -> None:
    """Check every file of a model against the sha256 in its card."""
    artifact = load_model(name)
    checked = artifact.verify()
    console.print(f"{artifact.name}: {len(checked)} file(s) match their sha256 ({', '.join(checked)})")
