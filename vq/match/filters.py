"""Post-match filter rules over the metadata given with a video (uploader, title, ...).

Each filter takes (query record, match) and returns True to keep the match. The seed's
filter module "brings in the upload's information for business-specific rules"; these are
the common ones, configured per library (`[filters]` in library.toml) or per run.
"""

from __future__ import annotations

from typing import Any


def same_uploader(query_meta: dict[str, Any], match: dict[str, Any], **_: Any) -> bool:
    """Re-uploads by the original uploader are not copies."""
    q, r = query_meta.get("uploader"), (match.get("ref_metadata") or {}).get("uploader")
    return not (q is not None and q == r)


def min_seconds(query_meta: dict[str, Any], match: dict[str, Any], seconds: float = 2.0, **_: Any) -> bool:
    return sum(s["query_end"] - s["query_start"] for s in match["segments"]) >= seconds


def min_ratio(query_meta: dict[str, Any], match: dict[str, Any], ratio: float = 0.1, **_: Any) -> bool:
    duration = query_meta.get("duration") or 0.0
    if duration <= 0:
        return True
    return sum(s["query_end"] - s["query_start"] for s in match["segments"]) / duration >= ratio
