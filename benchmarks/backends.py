"""Backend benchmark: one exported ResNet on JAX (jit) vs ONNX Runtime fp32 vs int8.

Exports a ResNet (default: ResNet-18, 160 px, 256-d GeM embedding, the frame-embedding
shape of the copy-detection path) with jax2onnx, calibrates static int8 on real images,
then measures every backend available here, in one process on the same inputs:
throughput at batch 1, 8 and 32 and p50/p99 latency, each as a ratio to JAX. Adds
ORT-CUDA and TensorRT (fp32/fp16/int8) rows on GPU hosts.

    python benchmarks/backends.py                      # prints a table
    python benchmarks/backends.py --json benchmarks/results/backends.json

Needs the `train` extra (JAX, jax2onnx) for the export and the JAX row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from vq.bench import bench_backends, default_variants, machine_info, make_feeds, measure
from vq.cli.output import print_table
from vq.export.artifact import export_artifact
from vq.export.calibration import image_feeds
from vq.fsutil import atomic_write_text
from vq.train.models import create_model, model_io

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CALIB = REPO.parent / "shared" / "data" / "images" / "bsd100"


class _RawOrt:
    """A bare ORT CPU session over any graph file, with the Session.run(feeds) shape."""

    def __init__(self, path: Path):
        from vq.export.parity import ort_session

        self._session = ort_session(path)

    def run(self, feeds):
        return self._session.run(None, feeds)


def gpu_int8_graph_on_cpu(artifact, batches, min_seconds, rows) -> list[dict]:
    """Why vq ships two int8 graphs: the symmetric (TensorRT) graph on ORT's CPU kernels."""
    session = _RawOrt(artifact.onnx_path("int8", "cuda"))
    base = {r["batch"]: r["items_per_s"] for r in rows if r.get("label") == rows[0]["label"]}
    out = []
    for batch in batches:
        stats = measure(session, make_feeds(artifact, batch, {}), min_seconds=min_seconds)
        out.append(
            {
                "label": "ort-cpu-int8(gpu graph)",
                "batch": batch,
                **stats,
                "speedup": stats["items_per_s"] / base[batch],
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. width_mult=0.5 (repeatable)",
    )
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--calib", type=Path, default=DEFAULT_CALIB, help="image folder for int8")
    parser.add_argument("--calib-count", type=int, default=128)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="write rows + machine info here")
    args = parser.parse_args()

    from vq.cli.extras import literal, parse_pairs

    kwargs = {
        "image_size": args.image_size,
        **{k: literal(v) for k, v in parse_pairs(args.set, "--set").items()},
    }
    io = model_io(args.arch, **kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = export_artifact(
            create_model(args.arch, seed=0, **kwargs),
            model_name=args.arch,
            model_kwargs=kwargs,
            out_dir=Path(tmp) / args.arch,
            name=args.arch,
            task="embed",
            precisions=("fp32", "int8"),
            calibration=lambda seed: image_feeds(
                [args.calib], io.inputs[0], io.preprocessing, count=args.calib_count, seed=seed
            ),
        )
        batches = [int(b) for b in args.batches.split(",")]
        variants = default_variants(artifact)
        rows = bench_backends(artifact, variants, batches, min_seconds=args.min_seconds)
        rows += gpu_int8_graph_on_cpu(artifact, batches, args.min_seconds, rows)
        export_facts = {
            "parity": artifact.card.export["parity"],
            "int8_vs_fp32": {t: v["vs_fp32"] for t, v in artifact.card.export["int8"].items()},
        }
    title = f"{args.arch} {kwargs}, {machine_info()['cores']} cores"
    print_table(
        rows,
        [
            ("label", "variant"),
            ("batch", "batch"),
            ("items_per_s", "frames/s"),
            ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"),
            ("speedup", f"x {variants[0].label}"),
            ("error", "error"),
        ],
        title=title,
    )
    print(json.dumps(export_facts, indent=1))
    if args.json:
        atomic_write_text(
            args.json,
            json.dumps(
                {
                    "model": args.arch,
                    "model_kwargs": kwargs,
                    "machine": machine_info(),
                    "export": export_facts,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n",
        )


if __name__ == "__main__":
    main()
