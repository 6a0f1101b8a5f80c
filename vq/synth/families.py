"""The registry of edit families: what `random_edit(family, ...)` can draw, and of what kind.

One row per family, in a fixed order: seeded draws index into the family list, so
reordering changes every set drawn from it. Adding a family changes draws over the whole
list too (training views take their edits from `SPATIAL_FAMILIES`: new families join the
augmentation); harnesses whose sets must stay fixed name their families explicitly
(`vq eval pairs`'s `EVAL_FAMILIES`, the classic `vq eval dedup` suite). The kind says
what an edit does (geometry, overlay, pixel, timeline); `boxed` families keep the source
picture as a rectangle that the content box can find. Third parties add families through
the ``vq.edit_family`` entry-point group (an `EditFamily`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vq.errors import UsageError
from vq.registry import Registry
from vq.synth import geometry, overlays, pixel, timeline
from vq.synth.base import Edit

KINDS = ("geometry", "overlay", "pixel", "timeline")


@dataclass(frozen=True)
class EditFamily:
    kind: str  # one of KINDS
    draw: Callable[..., Edit]  # (rng, (w, h), background=None) -> Edit
    boxed: bool = False  # the output keeps the source picture as a findable rectangle


FAMILY_REGISTRY = Registry("edit_family", ordered=True)

for _name, _family in (
    ("border", EditFamily("geometry", geometry.random_border, boxed=True)),
    ("letterbox", EditFamily("geometry", geometry.random_letterbox, boxed=True)),
    ("blur_fill", EditFamily("geometry", geometry.random_blur_fill, boxed=True)),
    ("crop", EditFamily("geometry", geometry.random_crop)),
    ("scale", EditFamily("geometry", geometry.random_scale)),
    ("picture_in_picture", EditFamily("overlay", overlays.random_picture_in_picture, boxed=True)),
    ("template", EditFamily("overlay", overlays.random_template, boxed=True)),
    ("live_stream", EditFamily("overlay", overlays.random_live_stream, boxed=True)),
    ("screen_recording", EditFamily("overlay", overlays.random_screen_recording, boxed=True)),
    ("watermark", EditFamily("overlay", overlays.random_watermark)),
    ("bullet_comments", EditFamily("overlay", overlays.random_bullet_comments)),
    ("color", EditFamily("pixel", pixel.random_color_grade)),
    ("blur", EditFamily("pixel", pixel.random_blur)),
    ("noise", EditFamily("pixel", pixel.random_noise)),
    ("flip", EditFamily("geometry", geometry.random_flip)),
    ("rotate", EditFamily("geometry", geometry.random_rotate)),
    ("reencode", EditFamily("pixel", pixel.random_reencode)),
    ("speed", EditFamily("timeline", timeline.random_speed)),
    ("frame_rate", EditFamily("timeline", timeline.random_frame_rate)),
    ("grade", EditFamily("pixel", pixel.random_grade)),
):
    FAMILY_REGISTRY.register(_name, _family, summary=_family.kind)


def family_names(
    kind: str | None = None, boxed: bool | None = None, spatial: bool | None = None
) -> tuple[str, ...]:
    """Registered family names in registry order, optionally filtered."""
    out = []
    for name in FAMILY_REGISTRY.names():
        family: EditFamily = FAMILY_REGISTRY.get(name)
        if kind is not None and family.kind != kind:
            continue
        if boxed is not None and family.boxed != boxed:
            continue
        if spatial is not None and (family.kind != "timeline") != spatial:
            continue
        out.append(name)
    return tuple(out)


def random_edit(family: str, rng: np.random.Generator, size: tuple[int, int], background: Any = None) -> Edit:
    """An edit of `family` with random parameters, for a source of `size` = (w, h)."""
    if family not in FAMILY_REGISTRY:
        raise UsageError(f"unknown edit family {family!r} (known: {', '.join(family_names())})")
    return FAMILY_REGISTRY.get(family).draw(rng, size, background=background)


FAMILIES = family_names()
# Families that edit single frames (the rest re-time the video): training views, full copies.
SPATIAL_FAMILIES = family_names(spatial=True)
# Families whose output keeps the source picture as a rectangle the content box can find.
BOXED = family_names(boxed=True)
