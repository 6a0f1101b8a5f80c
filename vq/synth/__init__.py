"""Synthetic edits: the ways uploaders disguise copies, for training and evaluation.

The copy-detection seed lists what re-uploads do to hide a copy: black or white borders,
blur-fill padding, crops, templates (the same clip in a decorated frame with a title),
picture-in-picture, live-stream screen recordings with scrolling comments and chrome,
player screen recordings, watermarks, filters, blur, re-encoding and speed changes, often
stacked. Each is an `Edit`, kept by kind:

* `geometry`  bars, blur fill, crop, scale, rotate, flip;
* `overlays`  pages around the picture (picture-in-picture, template, live stream,
  screen recording) and text over it (watermark, bullet comments);
* `pixel`     colour, strong grades (film looks), blur, noise, re-encoding;
* `timeline`  speed, frame rate, trim (they re-time instead of repainting);
* `render`    streaming a source through edits into a file (`render`, `splice`);
* `motion`    camera moves over still photos (clips from images);
* `families`  the registry `random_edit(family, rng, ...)` draws from.

Everything is a function of its parameters and the seed: an evaluation set rebuilt from
the same seed is identical.
"""

from vq.synth.base import Box, Edit
from vq.synth.families import (
    BOXED,
    FAMILIES,
    FAMILY_REGISTRY,
    SPATIAL_FAMILIES,
    EditFamily,
    family_names,
    random_edit,
)
from vq.synth.geometry import BlurFill, Border, Crop, Flip, Rotate, Scale
from vq.synth.overlays import (
    BulletComments,
    LiveStreamChrome,
    PictureInPicture,
    ScreenRecording,
    Template,
    Watermark,
)
from vq.synth.pixel import Blur, Color, ColorGrade, Noise, Reencode
from vq.synth.render import BackgroundVideo, EditRecord, apply_spatial, render, splice, track_box
from vq.synth.timeline import TEMPORAL, FrameRate, Reverse, Speed, Trim, segments_from

__all__ = [
    "BOXED",
    "FAMILIES",
    "FAMILY_REGISTRY",
    "SPATIAL_FAMILIES",
    "TEMPORAL",
    "BackgroundVideo",
    "Blur",
    "BlurFill",
    "Border",
    "Box",
    "BulletComments",
    "Color",
    "ColorGrade",
    "Crop",
    "Edit",
    "EditFamily",
    "EditRecord",
    "Flip",
    "FrameRate",
    "LiveStreamChrome",
    "Noise",
    "PictureInPicture",
    "Reencode",
    "Reverse",
    "Rotate",
    "Scale",
    "ScreenRecording",
    "Speed",
    "Template",
    "Trim",
    "Watermark",
    "apply_spatial",
    "family_names",
    "random_edit",
    "render",
    "segments_from",
    "splice",
    "track_box",
]
