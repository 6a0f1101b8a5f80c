"""Gather the sources `vq eval ladder` tunes and reports on, from the quality model's card.

    python scripts/gather_sources.py --out runs/sources      # first: the clips it names
    python scripts/ladder_sources.py --out runs/ladder-sources

The ladder is only as good as the quality model, so it is reported on content that model
never trained on: the card's held-out sources (``training.data.holdout_source_names``).
Held-out videos are linked into ``test/``; held-out photos become 8 s camera-move clips
there (the same renderer and size as `gather_sources.py`'s slideshows, seeded by name).
The videos the model *did* train on go to ``tune/``: they set the ladder's thresholds,
which is tuning, not a result. Images of the other sets (BSD100, Set5, Set14) are too
small for a 360p slideshow and are left out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gather_sources import REPO, SHARED, render_slideshow

VIDEO_SUFFIXES = {".mp4", ".avi", ".webm", ".mkv", ".mov"}


def resolve(name: str, sources: Path) -> Path:
    """A card path (``videos/x.mp4``, ``heldout/x.avi``, ``runs/sources/...``) on disk."""
    for base in (REPO, SHARED, sources):
        if (base / name).exists():
            return (base / name).resolve()
    raise SystemExit(f"{name}: not found (run scripts/gather_sources.py --out {sources} first)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sources", type=Path, default=REPO / "runs" / "sources")
    parser.add_argument("--card", type=Path, default=REPO / "vq" / "zoo" / "vq-kvq" / "card.json")
    args = parser.parse_args()
    data = json.loads(args.card.read_text())["training"]["data"]
    held = set(data["holdout_source_names"])
    test, tune = args.out / "test", args.out / "tune"
    for folder in (test, tune):
        folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name in sorted(held):
        folder, _, file = name.partition("/")
        if Path(file).suffix.lower() in VIDEO_SUFFIXES:
            src = resolve(name, args.sources)
            link = test / file
            link.unlink(missing_ok=True)
            link.symlink_to(src)
            manifest.append({"path": f"test/{file}", "from": name})
        elif folder == "photos":
            dest = test / f"slideshow_{Path(file).stem}.mp4"
            if not dest.exists():
                seed = int.from_bytes(hashlib.sha256(file.encode()).digest()[:4], "big")
                render_slideshow(SHARED / "images" / "photos" / file, dest, seed=seed)
            manifest.append({"path": f"test/{dest.name}", "from": name, "rendered": True})
    for entry in data["train"]:
        path = Path(entry)
        if path.suffix.lower() not in VIDEO_SUFFIXES or f"{path.parent.name}/{path.name}" in held:
            continue
        src = (REPO / path).resolve()
        if not src.exists():
            raise SystemExit(f"{entry}: not found (run scripts/gather_sources.py first)")
        link = tune / path.name
        link.unlink(missing_ok=True)
        link.symlink_to(src)
        manifest.append({"path": f"tune/{path.name}", "from": entry})
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    counts = {k: sum(m["path"].startswith(k) for m in manifest) for k in ("test", "tune")}
    print(f"wrote {args.out}: {counts}")


if __name__ == "__main__":
    main()
