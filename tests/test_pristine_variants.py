"""Clean dark / flat / smooth variants of training photographs (vq.synth.pristine_variants)
and the script that writes them (scripts/make_variants.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vq.images import read_rgb, write_png
from vq.synth.pristine_variants import (
    KINDS,
    darken,
    flatten,
    make_variant,
    plan_variants,
    smoothest_window,
)
from vq.synth.quality_data import find_sources, split_sources

REPO = Path(__file__).resolve().parent.parent


def test_darken_is_monotone_darker_and_skips_no_level():
    ramp = np.arange(256, dtype=np.uint8)
    for gamma in (1.6, 2.0, 2.4):
        out = darken(ramp, gamma, 1.0 / gamma).astype(int)
        assert np.all(np.diff(out) >= 0) and np.all(np.diff(out) <= 1)  # no banding made
        assert np.all(out <= ramp) and out[-1] < 170


def test_flatten_lowers_contrast_and_saturation_about_the_mean():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    out = flatten(image, contrast=0.5, saturation=0.5)
    assert out.std() < 0.6 * image.std()
    assert abs(out.mean() - image.mean()) < 3
    spread = lambda x: (x.max(-1).astype(int) - x.min(-1)).mean()  # noqa: E731
    assert spread(out) < 0.4 * spread(image)


def test_smoothest_window_finds_the_flat_patch_and_the_crop_is_exact():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    image[150:300, 200:400] = 90  # the flat bottom-right quarter
    assert smoothest_window(image, 0.5) == (200, 150, 200, 150)
    crop, params = make_variant(image, "smooth", rng)
    x, y, w, h = params["window"]
    assert min(h, w) >= 256 or (w, h) == (400, 300)  # never smaller than the floor allows
    assert np.array_equal(crop, image[y : y + h, x : x + w])  # cut, never resampled


def test_variants_are_seeded_and_unknown_kinds_fail():
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for kind in KINDS:
        a, pa = make_variant(image, kind, np.random.default_rng(5))
        b, pb = make_variant(image, kind, np.random.default_rng(5))
        assert pa == pb and np.array_equal(a, b) and pa["kind"] == kind
    with pytest.raises(ValueError, match="unknown variant kind"):
        make_variant(image, "sepia", np.random.default_rng(0))


def test_plan_draws_distinct_sources_evenly_over_kinds():
    names = [f"photos/p{i}.png" for i in range(10)]
    plan = plan_variants(names, per_kind=3, seed=4)
    assert plan == plan_variants(list(reversed(names)), per_kind=3, seed=4)  # order-free
    assert len({n for n, _ in plan}) == 9 and {n for n, _ in plan} <= set(names)
    assert [k for _, k in plan].count("dark") == 3
    assert len(plan_variants(names[:4], per_kind=3, seed=4)) == 4  # fewer sources: fewer variants


def test_script_varies_training_photos_only(tmp_path):
    photos = tmp_path / "photos"
    rng = np.random.default_rng(3)
    for i in range(8):
        write_png(photos / f"p{i}.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    out = tmp_path / "variants"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_variants.py"),
            "--data",
            str(photos),
            "--holdout",
            "0.5",
            "--per-kind",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    split = split_sources(find_sources([photos]), 0.5)
    rows = json.loads((out / "manifest.json").read_text())["variants"]
    assert len(rows) == 4 and all(split[r["from"]] == "train" for r in rows)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["file"] for r in rows)
    assert read_rgb(out / rows[0]["file"]).dtype == np.uint8
    missing = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_variants.py"),
            "--data",
            str(tmp_path / "nope"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert (
        missing.returncode == 1
        and missing.stderr.strip().count("\n") == 0
        and "no such file" in missing.stderr
    )
