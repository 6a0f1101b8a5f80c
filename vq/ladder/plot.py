"""The rate-quality picture of a ladder (matplotlib, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vq.errors import UsageError
from vq.fsutil import atomic_path


def plot_ladder(record: dict[str, Any], path: Path) -> Path:
    """One curve per rung height (score against kbps), the hull, the chosen and shipped rungs,
    and client post-processed rungs where the record has them."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'vq[plot]'") from None
    rungs = record["rungs"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for height in sorted({r["height"] for r in rungs}, reverse=True):
        mine = sorted((r for r in rungs if r["height"] == height), key=lambda r: r["kbps"])
        ax.plot([r["kbps"] for r in mine], [r["score"] for r in mine], "o-", ms=4, label=f"{height}p")
        for r in mine:
            ax.annotate(
                f"{r['crf']}", (r["kbps"], r["score"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    hull = [rungs[i] for i in record["hull"]]
    ax.plot([r["kbps"] for r in hull], [r["score"] for r in hull], "k--", lw=1, label="convex hull")
    modes = sorted({m for r in rungs for m in r.get("post", {})})
    for mode, marker in zip(modes, "^v", strict=False):
        pts = [(r["kbps"], r["post"][mode]["score"]) for r in rungs if mode in r.get("post", {})]
        ax.plot(*zip(*pts, strict=True), marker, ls="none", label=f"client {mode}")
    chosen = record["chosen"]
    ax.plot(chosen["kbps"], chosen["score"], "o", ms=12, mfc="none", mec="red", label="chosen")
    shipped = record["shipped"]
    if shipped["rung"] != chosen["rung"]:
        ax.plot(
            shipped["kbps"], chosen["score"], "*", ms=12, color="green", label=f"shipped + {shipped['post']}"
        )
    ax.set_xscale("log")
    ax.set_xlabel("bitrate (kbps, log scale)")
    ax.set_ylabel(f"quality ({record['model']}, 1-5)")
    ax.set_title(f"{Path(record['path']).name}: {record['codec']} ladder")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return path
