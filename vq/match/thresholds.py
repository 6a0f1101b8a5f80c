"""The decision thresholds of a copy-detection library, in one place.

Every embedding has its own similarity scale, so the values a library starts with come
from the model card (``"matching"``: set from the model's `vq eval pairs` run, the cosine
at 1 % false positives); these defaults apply only to a model whose card gives none.
`vq index create` writes them into ``library.toml``, where an operator may change them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from vq.match.motion import NO_MOVING_QUERY


@dataclass(frozen=True)
class Thresholds:
    frame: float = 0.55  # cosine for a frame pair to count as a match
    min_score: float = 0.6  # mean similarity along a reported segment
    # Of references matched over one stretch of the query, those scoring more than this
    # below the best are dropped (`vq.match.segments.best_references`). Libraries made
    # before this setting existed get this default when opened.
    ref_margin: float = 0.02
    # A segment's two sides must change together (`vq.match.motion`): their mean-removed
    # vectors correlate at least this much. -1 turns the test off (libraries made before it).
    min_motion: float = -1.0
    # ... unless the reference barely changes along the segment (a still, a test card):
    # below this mean distance of its vectors from their mean the test abstains.
    motion_floor: float = 0.06
    # ... and there, a query whose vectors move at least this far from their mean is not
    # the still's copy (`vq.match.motion`); the default turns this off (libraries made before it).
    moving_query: float = NO_MOVING_QUERY
    # The two sides' pixels (`vq.match.pixels`; a library that keeps thumbnails): a segment
    # agreeing at least `pixel_confirm` is a copy, one under `min_pixels` is not; between
    # them, or where the reference's pixels move less than `pixel_floor` (RMS, luma levels),
    # the embedding's test above decides. A failing segment may be re-placed on the speed-1
    # line over its stretch whose pixels agree best, if that agrees at least `pixel_search`
    # over at least `pixel_search_seconds` (`vq.match.pixels.pixel_line`); a passing one
    # moved onto a clearly better line, of any speed, over fewer frames. Read off the
    # held-out suites (`BENCHMARKS.md`): true copies' lines agree at a median of 0.93, the
    # hardest (a template, letterbox + comments, crops) at 0.085-0.19; wrong references of
    # the fixed camera at most 0.134, and the best of many lines 4 s or longer through
    # other moments of it at most 0.285. `min_pixels` -1 turns the test off; libraries
    # without thumbnails never take it.
    min_pixels: float = 0.12
    pixel_confirm: float = 0.3
    pixel_floor: float = 3.0
    pixel_search: float = 0.3
    pixel_search_seconds: float = 4.0
    # The soundtrack (`vq.index.audio`): a reference whose sound the query carries has at
    # least this many landmark hashes agreeing on one offset, and this share of the
    # query's (`vq eval audio`: 1 % of other recordings reach 0.008).
    audio_votes: float = 20.0
    audio_score: float = 0.03
    # ... or, with fewer agreeing landmarks (at least `audio_lead_votes`: a lead, not a
    # match), the learned fingerprint (`vq-audiofp`) agrees: its window vectors match the
    # reference's at least this well, at the landmarks' offset. 0.46 is its match score at
    # 1 % false positives on its held-out recordings (`vq eval audio`, 4 s queries).
    audio_learned: float = 0.46
    audio_lead_votes: float = 5.0

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> Thresholds:
        """Known keys of `values` over the defaults (unknown keys, such as a card's note
        on how the values were set, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in (values or {}).items() if k in names})

    @classmethod
    def from_card(cls, card: Any, fps: float | None = None) -> Thresholds:
        """What a model card recommends (its ``matching`` block), over the defaults; for a
        library storing `fps`, the look-alike cut of the nearest rate the card gives one for
        (``min_motion_at_fps``: {rate: cut}): the test sees more reference frames at a
        denser rate, and its best cut moves with them (`BENCHMARKS.md`)."""
        matching = dict(card.extra.get("matching") or {})
        by_rate = matching.get("min_motion_at_fps")
        if fps is not None and by_rate:
            nearest = min(by_rate, key=lambda rate: (abs(float(rate) - fps), float(rate)))
            matching["min_motion"] = by_rate[nearest]
        return cls.from_mapping(matching)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
