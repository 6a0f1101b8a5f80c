"""Write clean dark, flat and smooth variants of training photographs, for the quality model.

    python scripts/make_variants.py --data ../shared/data/images/bsd100 ... \\
        --train-data runs/sources/train/extra --out runs/sources/train/variants

`--data` is what `vq train kvq --data` is given: its sources are split by the same hash
(`--holdout`, default 0.25, the training default) and only the training side is used;
`--train-data` sources always train and may all be used. Only photographs are varied
(videos would have to be re-encoded to be written, which is not clean). Each variant is a
PNG in `--out` named ``<kind>_<folder>_<stem>.png`` and a row in `manifest.json`: where it
came from and the exact parameters (`vq.synth.pristine_variants`). Then train with
``--train-data runs/sources/train/variants`` beside the other train-only folders. The same
inputs and seed give the same folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vq.errors import VqError
from vq.fsutil import atomic_write_text
from vq.images import read_rgb, write_png
from vq.synth.pristine_variants import make_variant, plan_variants
from vq.synth.quality_data import find_sources, split_sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", default=[], help="split sources (as vq train kvq --data)")
    parser.add_argument("--train-data", action="append", default=[], help="train-only sources")
    parser.add_argument("--holdout", type=float, default=0.25)
    parser.add_argument("--per-kind", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        split = find_sources(args.data) if args.data else []
        extra = find_sources(args.train_data) if args.train_data else []
        side = split_sources(split, args.holdout)
        photos = {
            s.name: s for s in split + extra if s.kind == "image" and side.get(s.name, "train") == "train"
        }
        plan = plan_variants(list(photos), args.per_kind, args.seed)
        args.out.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (name, kind) in enumerate(plan):
            rng = np.random.default_rng([args.seed, i])
            image, params = make_variant(read_rgb(photos[name].path), kind, rng)
            file = f"{kind}_{name.replace('/', '_').rsplit('.', 1)[0]}.png"
            write_png(args.out / file, image)
            rows.append({"file": file, "from": name, **params})
            print(f"{file}  {image.shape[1]}x{image.shape[0]}")
        manifest = {
            "seed": args.seed,
            "holdout": args.holdout,
            "data": args.data,
            "train_data": args.train_data,
            "variants": rows,
        }
        atomic_write_text(args.out / "manifest.json", json.dumps(manifest, indent=1))
    except VqError as e:
        sys.exit(f"error: {e}")
    print(f"{len(rows)} variants of {len(photos)} training photographs in {args.out}")


if __name__ == "__main__":
    main()
