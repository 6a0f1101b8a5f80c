"""scripts/gather_sources.py's pure parts: how a wallpaper becomes a training picture.

The downloads themselves need PyPI and Debian's mirrors, so they are not run here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gather_sources.py"


@pytest.fixture(scope="module")
def gather():
    spec = importlib.util.spec_from_file_location("gather_sources", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scaled_picture_cuts_the_long_side_and_keeps_the_shape(gather):
    rng = np.random.default_rng(0)
    wide = Image.fromarray(rng.integers(0, 256, (900, 3200, 3), dtype=np.uint8))
    out = gather.scaled_picture(wide)
    assert out.dtype == np.uint8 and out.shape == (360, 1280, 3)
    tall = Image.fromarray(rng.integers(0, 256, (2000, 1000, 3), dtype=np.uint8))
    assert gather.scaled_picture(tall).shape == (1280, 640, 3)


def test_scaled_picture_never_enlarges_and_keeps_small_pictures_exact(gather):
    small = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    assert np.array_equal(gather.scaled_picture(Image.fromarray(small)), small)


def test_scaled_picture_is_a_clean_low_pass(gather):
    """A flat picture stays flat and a smooth ramp stays monotone: no ringing, no noise."""
    flat = Image.fromarray(np.full((1440, 2560, 3), 77, dtype=np.uint8))
    assert np.all(gather.scaled_picture(flat) == 77)
    ramp = np.tile(np.linspace(0, 255, 2560).astype(np.uint8)[None, :, None], (1440, 1, 3))
    row = gather.scaled_picture(Image.fromarray(ramp))[100, :, 0].astype(int)
    assert np.all(np.diff(row) >= 0) and row[0] <= 2 and row[-1] >= 253


def test_scaled_picture_refuses_transparency_and_flattens_opaque_alpha(gather):
    rgba = np.full((200, 300, 4), 255, dtype=np.uint8)
    assert gather.scaled_picture(Image.fromarray(rgba)).shape == (200, 300, 3)
    rgba[10, 10, 3] = 0
    with pytest.raises(ValueError, match="transparent"):
        gather.scaled_picture(Image.fromarray(rgba))


def test_render_list_is_pinned_and_names_are_unique(gather):
    kept = []
    for spec, pictures in gather.RENDER_PACKAGES.items():
        assert "=" in spec, f"{spec} is not pinned to a version"
        kept += [gather.render_name(spec, rel) for rel in pictures]
    assert len(kept) == len(set(kept)) == 45
    assert gather.render_name("plasma-workspace-wallpapers=4:5.27.5-2", "wallpapers/Kay") == "plasma_Kay.png"


def test_photo_list_is_pinned_and_shares_no_picture_with_the_renders(gather):
    """A picture in both lists would train twice as two sources."""
    photos = []
    for spec, pictures in gather.PHOTO_PACKAGES.items():
        assert "=" in spec, f"{spec} is not pinned to a version"
        photos += [gather.render_name(spec, rel) for rel in pictures]
    renders = {gather.render_name(spec, rel) for spec, rels in gather.RENDER_PACKAGES.items() for rel in rels}
    assert len(photos) == len(set(photos)) == 14
    assert not set(photos) & renders
    assert "lomiri_Bridge_by_Sander_Klootwijk.png" in photos
