"""Matching: coarse candidate recall (voting, mean vectors), fine segment alignment, filters."""

from vq.registry import Registry

ALIGNERS = Registry("aligner")
ALIGNERS.register(
    "diagonal",
    "vq.match.align:DiagonalAligner",
    summary="the seed's method: threshold, diagonal runs, open/close, merge, NMS",
)
ALIGNERS.register(
    "tn",
    "vq.match.tn:TemporalNetwork",
    summary="VCSL's Temporal Network: longest weighted monotonic paths through top-k matches",
)

FILTERS = Registry("filter")
FILTERS.register(
    "same_uploader",
    "vq.match.filters:same_uploader",
    summary="drop matches whose reference has the query's uploader",
)
FILTERS.register("min_seconds", "vq.match.filters:min_seconds", summary="drop matches shorter than N seconds")
FILTERS.register(
    "min_ratio", "vq.match.filters:min_ratio", summary="drop matches covering less than a share of the query"
)
