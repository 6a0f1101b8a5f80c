"""Quality (KVQ): degradation chains, VMAF labels, fragments, the label-free set, the
model's key-frame rule, and the whole path train -> export -> `vq score` -> `vq eval quality`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import smooth_images, write_images
from tests.media_factory import clip_frames, make_clip
from vq.cli.app import main
from vq.eval.quality import NEG_ROW, VMAF_ROW
from vq.preprocess.fragments import fragments
from vq.synth.degrade import KINDS, Chain, Degradation, random_chain, random_stage

from conftest import needs_train


def _clip(n: int = 12, size=(96, 64)) -> np.ndarray:
    return np.stack(clip_frames(n, size))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_keeps_the_shape_is_seeded_and_degrades(kind):
    clip = _clip()
    stage = random_stage(np.random.default_rng(1), kind, severity=0.8)
    once, twice = stage.apply(clip, 25.0), stage.apply(clip, 25.0)
    assert once.shape == clip.shape and once.dtype == np.uint8
    assert not np.array_equal(once, clip)
    again = Degradation.from_json(json.loads(json.dumps(stage.to_json())))
    assert again == stage
    if kind == "rung":  # x264 veryfast is not bit-exact on small frames (see `degrade.rung`)
        return
    np.testing.assert_array_equal(once, twice)  # a pure function of its parameters
    np.testing.assert_array_equal(again.apply(clip, 25.0), once)


def test_temporal_kinds_repeat_frames_and_spans_stay_inside():
    clip = _clip(40)
    frozen = Degradation("stutter", {"freeze": 4, "period": 10, "seed": 0}).apply(clip, 25.0)
    repeats = sum(np.array_equal(frozen[i], frozen[i - 1]) for i in range(1, len(clip)))
    assert repeats >= 9
    part = Degradation("blur", {"sigma": 2.0, "span": [0.25, 0.5]}).apply(clip, 25.0)
    np.testing.assert_array_equal(part[:10], clip[:10])
    np.testing.assert_array_equal(part[20:], clip[20:])
    assert not np.array_equal(part[10:20], clip[10:20])


def test_chains_give_every_level_and_round_trip():
    rng = np.random.default_rng(4)
    chains = [random_chain(rng, depth=(2, 4)) for _ in range(20)]
    assert all(2 <= len(c.stages) <= 4 for c in chains)
    assert sum(c.stages[-1].kind == "encode" for c in chains) >= 8  # most uploads end encoded
    chain = Chain(
        (
            Degradation("blur", {"sigma": 1.0}),
            Degradation("encode", {"codec": "h264", "preset": "ultrafast", "crf": 40}),
        )
    )
    levels = chain.levels(_clip(), 25.0)
    assert len(levels) == 2 and Chain.from_json(chain.to_json()) == chain
    with pytest.raises(Exception, match="unknown degradation"):
        Degradation("nope").apply(_clip(), 25.0)


def test_vmaf_ranks_an_encode_ladder():
    from vq.eval.metrics.vmaf import vmaf, vmaf_to_mos
    from vq.media.encode import encode_roundtrip

    clip = _clip(16, (128, 96))
    same = vmaf(clip, clip).mean()
    mild = vmaf(encode_roundtrip(clip, 25, codec="h264", crf=28)[0], clip).mean()
    harsh = vmaf(encode_roundtrip(clip, 25, codec="h264", crf=48)[0], clip).mean()
    assert same > 90 and same > mild > harsh
    assert vmaf_to_mos(100.0) == 5.0 and vmaf_to_mos(0.0) == 1.0
    with pytest.raises(Exception, match="one shape"):
        vmaf(clip, clip[:, :64])


def test_vmaf_neg_gives_sharpening_no_credit():
    from vq.eval.metrics.vmaf import vmaf, vmaf_scores
    from vq.ladder.client import sharpen

    clip = _clip(8, (128, 96))
    both = vmaf_scores(sharpen(clip), clip, models=("vmaf", "vmaf_neg"))
    # Plain VMAF scores the sharpened copy at least as high as the clip against itself;
    # NEG does not reward the enhancement.
    assert both["vmaf"].mean() >= vmaf(clip, clip).mean() - 1.0
    assert both["vmaf_neg"].mean() < both["vmaf"].mean() - 2.0  # 100 against 94.4 here
    np.testing.assert_array_equal(both["vmaf"], vmaf(sharpen(clip), clip))  # one pass, same scores
    with pytest.raises(Exception, match="unknown VMAF model"):
        vmaf_scores(clip, clip, models=("vmaf_4k",))


def test_vmaf_features_say_which_detail_was_lost():
    """The same libvmaf pass gives VMAF's elementary features: 1 for an undamaged clip;
    a 2x rescale loses the finest detail, so VIF at scale 0 falls further than at scale 3."""
    from vq.eval.metrics.vmaf import VMAF_FEATURES, vmaf, vmaf_scores

    clip = _clip(8, (128, 96))
    same = vmaf_scores(clip, clip, features=True)
    assert set(same) == {"vmaf", *VMAF_FEATURES}
    assert all(np.all(same[k] > 0.99) for k in VMAF_FEATURES)
    soft = Degradation("rescale", {"factor": 0.5}).apply(clip, 25.0)
    lost = {k: float(np.mean(v)) for k, v in vmaf_scores(soft, clip, features=True).items()}
    assert lost["vif0"] < lost["vif3"] - 0.1 and lost["adm"] < 0.98, lost
    np.testing.assert_array_equal(vmaf_scores(soft, clip)["vmaf"], vmaf(soft, clip))  # same scores
    with pytest.raises(Exception, match="come with the vmaf model"):
        vmaf_scores(soft, clip, models=("vmaf_neg",), features=True)


def test_fragments_keep_native_pixels_and_fit_small_frames():
    clip = np.random.default_rng(0).integers(0, 256, (3, 200, 300, 3), dtype=np.uint8)
    frag = fragments(clip, grid=4, patch=32)
    assert frag.shape == (3, 128, 128, 3)
    # The top-left mini-patch is a native 32x32 block of the frame (centred in its cell).
    y, x = round((50 - 32) / 2), round((75 - 32) / 2)
    np.testing.assert_array_equal(frag[:, :32, :32], clip[:, y : y + 32, x : x + 32])
    np.testing.assert_array_equal(fragments(clip, 4, 32), frag)  # no rng: deterministic
    small = fragments(clip[:, :20, :40], grid=4, patch=32)
    assert small.shape == (3, 128, 128, 3)


def test_aligned_fragments_start_on_the_codec_grid_inside_the_frame():
    from vq.preprocess.fragments import fragment_origins

    rng = np.random.default_rng(1)
    for size in (37, 200, 333, 720, 1080):
        for _ in range(20):
            origin = fragment_origins(size, 4, 32, rng, align=16)
            assert np.all(origin % 16 == 0) and np.all(origin >= 0) and np.all(origin <= max(0, size - 32))
    free = fragment_origins(300, 4, 32, np.random.default_rng(2))
    assert np.any(free % 16)  # align=1 leaves origins free, as before
    clip = np.random.default_rng(0).integers(0, 256, (2, 200, 300, 3), dtype=np.uint8)
    frag = fragments(clip, 4, 32, align=16)
    y, x = fragment_origins(200, 4, 32, align=16)[0], fragment_origins(300, 4, 32, align=16)[0]
    np.testing.assert_array_equal(frag[:, :32, :32], clip[:, y : y + 32, x : x + 32])


def test_thumbnail_is_the_whole_frame_in_area_averages():
    from vq.preprocess.fragments import thumbnail

    # 3x3 blocks of one value each, 96 px -> 32: every block becomes its value exactly
    blocks = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    clip = blocks.repeat(3, axis=1).repeat(3, axis=2)
    np.testing.assert_array_equal(thumbnail(clip), blocks)
    # a 2x2 mean that is not a whole number rounds; a flat frame stays flat at any size
    pair = np.zeros((1, 64, 64, 3), np.uint8)
    pair[:, ::2] = 1  # alternate rows 0 and 1: every 2x2 bin holds two of each
    assert np.all(thumbnail(pair) == 0)  # 0.5 rounds to even
    pair[:, ::2] = 3
    assert np.all(thumbnail(pair) == 2)
    for h, w in ((1080, 1920), (200, 300), (20, 40)):
        flat = np.full((1, h, w, 3), 77, np.uint8)
        out = thumbnail(flat)
        assert out.shape == (1, 32, 32, 3) and np.all(out == 77)
    # left half dark, right half bright: the thumbnail keeps the layout of the scene
    split = np.zeros((1, 720, 1280, 3), np.uint8)
    split[:, :, 640:] = 200
    out = thumbnail(split)[0, :, :, 0]
    assert np.all(out[:, :16] == 0) and np.all(out[:, 16:] == 200)


def test_the_context_cell_shows_the_whole_frame_and_leaves_the_cuts_alone():
    from vq.preprocess.fragments import cut_settings, thumbnail

    clip = np.random.default_rng(0).integers(0, 256, (3, 200, 300, 3), dtype=np.uint8)
    cut = cut_settings({"fragments": {"grid": 4, "patch": 32, "align": 16, "context": 1}})
    assert cut == {"grid": 4, "patch": 32, "align": 16, "context": 1}
    assert cut_settings({"fragments": {"grid": 4, "patch": 32}})["context"] == 0  # older cards
    with_context = fragments(clip, rng=np.random.default_rng(5), **cut)
    without = fragments(clip, rng=np.random.default_rng(5), **{**cut, "context": 0})
    np.testing.assert_array_equal(with_context[:, -32:, -32:], thumbnail(clip))
    mask = np.ones((128, 128), bool)
    mask[-32:, -32:] = False  # every other cell: the same cut, from the same random draw
    np.testing.assert_array_equal(with_context[:, mask], without[:, mask])
    # A thumbnail the caller made once per window (the scorer's views) is the same cell,
    # from a frame smaller than a cut too.
    for frames in (clip, clip[:, :20, :40]):
        given = fragments(frames, rng=np.random.default_rng(5), thumb=thumbnail(frames), **cut)
        np.testing.assert_array_equal(given, fragments(frames, rng=np.random.default_rng(5), **cut))


def test_dihedral_turns_are_the_eight_flips_and_quarter_turns():
    from vq.preprocess.fragments import dihedral

    clip = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    turned = [dihedral(clip, t) for t in range(8)]
    np.testing.assert_array_equal(turned[0], clip)
    assert len({t.tobytes() for t in turned}) == 8  # all different
    expected = {np.rot90(clip, k, axes=(1, 2)).tobytes() for k in range(4)}
    expected |= {np.rot90(clip[:, :, ::-1], k, axes=(1, 2)).tobytes() for k in range(4)}
    assert {t.tobytes() for t in turned} == expected
    # Whole pixels move whatever the element type and layout: a strided float clip too.
    wide = np.random.default_rng(1).random((2, 6, 10, 3)).astype(np.float32)[:, ::-1, ::2]
    for t in range(8):
        reference = wide[:, :, ::-1] if t & 1 else wide
        reference = reference[:, ::-1] if t & 2 else reference
        reference = reference.transpose(0, 2, 1, 3) if t & 4 else reference
        got = dihedral(wide, t)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, reference)


def test_keyframe_selection_marks_the_largest_kl_frames():
    import jax.numpy as jnp

    from vq.train.models.kvq import keyframe_selection

    kl = jnp.asarray([[0.1, 0.5, 0.3, 0.5, 0.0]])
    sel = np.asarray(keyframe_selection(kl, 3))[0]  # (T, k)
    assert sel.sum(axis=0).tolist() == [1, 1, 1] and sel.sum() == 3
    assert [int(np.argmax(sel[:, j])) for j in range(3)] == [1, 3, 2]  # ties: earlier first


def test_energy_stem_sees_noise_and_blur_and_treats_contrast_as_a_shift():
    import jax.numpy as jnp
    from flax import nnx

    from vq.train.models.kvq import BLOCK, ENERGY_CHANNELS, band_energy

    rng = np.random.default_rng(0)
    texture = rng.normal(0.0, 0.3, (1, 2, 32, 32, 3)).astype(np.float32)
    blurred = (
        texture + np.roll(texture, 1, 2) + np.roll(texture, 1, 3) + np.roll(texture, (1, 1), (2, 3))
    ) / 4
    filters = nnx.Linear(BLOCK * BLOCK * ENERGY_CHANNELS, 8, use_bias=False, rngs=nnx.Rngs(0))

    def energy(x, scale=1):
        return np.asarray(band_energy(jnp.asarray(x), filters, scale, token=16))

    e = energy(texture)
    assert e.shape == (1, 2, 4, 8)  # (B, T, tokens, filters)
    assert np.all(energy(blurred).mean(axis=(0, 1, 2)) < e.mean(axis=(0, 1, 2)))  # blur removes energy
    # Twice the contrast is twice the response: log energy moves by log 4, nothing else.
    np.testing.assert_allclose(energy(2 * texture) - e, np.log(4.0), atol=1e-3)
    # Block means are removed: a brightness offset changes nothing.
    np.testing.assert_allclose(energy(texture + 0.5), e, atol=1e-4)
    assert energy(texture, scale=2).shape == (1, 2, 4, 8)


def test_oriented_steps_see_which_direction_a_motion_blur_emptied():
    import jax.numpy as jnp

    from vq.synth import degrade
    from vq.train.models.kvq import oriented_energy

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)

    def steps(clip, scale=1):
        return np.asarray(oriented_energy(jnp.asarray(clip[None] / 255.0, jnp.float32), scale, 16))

    e = steps(texture)
    assert e.shape == (1, 2, 16, 4)  # (B, T, tokens, directions)
    # Right, down, down-right, down-left: a blur along one empties that step the most.
    for angle, emptied in ((0, 0), (90, 1), (45, 2), (135, 3)):
        drop = (steps(degrade.motion_blur(texture, 25.0, 9, angle)) - e).mean(axis=(0, 1, 2))
        assert np.argmin(drop) == emptied, (angle, drop)
        assert drop[emptied] < drop.max() - 0.5  # by a clear margin, not a tie
    for scale in (2, 4):
        assert steps(texture, scale).shape == (1, 2, 16, 4)
    # How unevenly the directions hold energy, not how much: contrast changes nothing.
    grey = jnp.asarray(texture[None] / 255.0 - 0.5, jnp.float32)
    np.testing.assert_allclose(oriented_energy(2 * grey, 1, 16), oriented_energy(grey, 1, 16), atol=1e-3)
    np.testing.assert_allclose(e.sum(axis=-1), 0.0, atol=1e-4)
    # Steps stay inside a token: flat tokens side by side at different levels have none in
    # any direction (a step across a token's edge would show in right and down only).
    levels = rng.random((4, 4)).astype(np.float32)
    flat = np.kron(levels, np.ones((16, 16), np.float32))[None, None, :, :, None].repeat(3, axis=-1)
    np.testing.assert_allclose(oriented_energy(jnp.asarray(flat), 1, 16), 0.0, atol=1e-4)


def test_the_train_share_spreads_over_every_kind_of_source():
    from vq.train.kvq.task import spread

    names = [f"{kind}/{i:03d}" for kind in ("bsd100", "photos", "set14", "videos") for i in range(29)]
    picked = spread(sorted(names), 30)
    assert len(set(picked)) == 30 and {n.split("/")[0] for n in picked} == {
        "bsd100",
        "photos",
        "set14",
        "videos",
    }
    assert spread(names[:5], 30) == names[:5]


def test_the_in_chain_rank_loss_counts_only_a_chain_s_own_order():
    """Two chains of (pristine, level 1, filler): the in-chain term sees only the two
    pristine > level-1 pairs, however many cross-source pairs the pooled term has."""
    import jax.numpy as jnp

    from vq.train.kvq.task import rank_losses

    mos = jnp.asarray([5.0, 4.0, 3.0, 4.9, 2.0, 1.0])
    level = jnp.asarray([0, 1, -1, 0, 1, -1])
    group = jnp.asarray([0, 0, 0, 1, 1, 1])
    right_order = jnp.asarray([4.0, 3.0, 2.0, 4.0, 3.0, 2.0])
    rank, chain_rank, _, right = rank_losses(right_order, mos, level, group, margin=0.05)
    assert float(chain_rank) == 0.0 and float(right) == 1.0
    # Level 1 of chain 0 scored above its pristine clip by 0.5: one of two pairs wrong,
    # by the margin plus 0.5.
    wrong = right_order.at[1].set(4.5)
    rank, chain_rank, _, right = rank_losses(wrong, mos, level, group, margin=0.05)
    assert float(chain_rank) == pytest.approx(0.55 / 2) and float(right) == 0.5
    assert 0.0 < float(rank) < float(chain_rank)  # pooled: diluted by the cross-source pairs


def test_the_across_chain_rank_loss_orders_a_source_s_fillers_by_vmaf():
    """One group (pristine, level 1, two fillers from other chains of the source): the
    across-chain term sees the pairs with a filler in them that VMAF orders by more than
    0.2 MOS, and never the chain's own pair or a pair from another group."""
    import jax.numpy as jnp

    from vq.train.kvq.task import rank_losses

    mos = jnp.asarray([5.0, 4.0, 3.0, 3.1, 1.0])
    level = jnp.asarray([0, 1, -1, -1, 0])
    group = jnp.asarray([0, 0, 0, 0, 1])
    # Right by VMAF everywhere except the chain's own pair (level 1 above pristine), and
    # the two fillers within 0.2 MOS of each other in the wrong order (no known order).
    score = jnp.asarray([4.4, 4.5, 2.9, 2.8, 1.0])
    _, chain_rank, source_rank, _ = rank_losses(score, mos, level, group, margin=0.05)
    assert float(chain_rank) > 0.0 and float(source_rank) == 0.0
    # Filler 2 scored 4.6, above pristine and level 1: of the 4 ordered pairs with a
    # filler in them, those two are wrong, by the margin plus 0.2 and plus 0.1.
    wrong = score.at[2].set(4.6)
    _, _, source_rank, _ = rank_losses(wrong, mos, level, group, margin=0.05)
    assert float(source_rank) == pytest.approx((0.25 + 0.15) / 4, abs=1e-6)  # float32


def test_the_cost_loss_compares_differences_inside_a_group_only():
    """Two groups of three: a score off the label by one offset per group costs nothing
    (the source's own level is not asked for); a step read at half its fall costs its
    miss on each pair it is in, and a pair across groups never counts."""
    import jax.numpy as jnp

    from vq.train.kvq.task import cost_l1

    mos = jnp.asarray([5.0, 3.0, 2.0, 4.0, 3.5, 1.0])
    group = jnp.asarray([0, 0, 0, 1, 1, 1])
    offset = mos + jnp.asarray([-0.7, -0.7, -0.7, 0.4, 0.4, 0.4])
    assert float(cost_l1(offset, mos, group)) == pytest.approx(0.0, abs=1e-6)
    # Clip 1 read at 4.0: its fall from clip 0 is 1 where the label's is 2, and its rise
    # over clip 2 is 2 where the label's is 1. Two of the 6 unordered pairs (12 ordered)
    # miss by 1 each, both ways round.
    half = mos.at[1].set(4.0)
    assert float(cost_l1(half, mos, group)) == pytest.approx(4.0 / 12, abs=1e-6)
    # Group 1 shifted as a whole against group 0 changes nothing.
    assert float(cost_l1(half.at[3:].add(2.0), mos, group)) == pytest.approx(4.0 / 12, abs=1e-6)


def test_a_group_fills_from_other_chains_or_else_from_its_own_in_order():
    """A one-level chain of a source with two chains is filled with the other chain's
    levels, as fillers; a source with one chain refills from its own levels, in the chain
    (their order is exact: no VMAF pair may contradict it)."""
    from vq.synth.quality_data import Version
    from vq.train.kvq.task import GROUP, pick_group

    def version(source: str, chain: int, level: int) -> Version:
        return Version(f"{source}/c{chain}l{level}", source, "train", chain, level, [], 90.0, 4.0, 25.0, "")

    pristine = version("a", -1, 0)
    two_chains = {("a", 0): [pristine, version("a", 0, 1)], ("a", 1): [pristine, version("a", 1, 1)]}
    for seed in range(8):
        members = pick_group(two_chains, np.random.default_rng(seed))
        assert len(members) == GROUP and [m[1] for m in members] == [True, True, False, False]
        chain = members[1][0].chain
        assert all(row.chain == 1 - chain for row, _ in members[2:])
    one_chain = {("a", 0): two_chains[("a", 0)]}
    members = pick_group(one_chain, np.random.default_rng(0))
    assert all(in_chain for _, in_chain in members) and members[2][0] is one_chain[("a", 0)][1]


def test_a_ladder_group_is_rungs_of_one_source_outside_any_chain():
    from vq.synth.quality_data import Version
    from vq.train.kvq.task import GROUP, pick_rungs

    def rung(source: str, height: int, level: int) -> Version:
        return Version(f"{source}/r{height}l{level}", source, "train", height, level, [], 80.0, 4.0, 25.0, "")

    rungs = {s: [rung(s, h, lv) for h in range(3) for lv in (1, 2, 3)] for s in ("a", "b")}
    for seed in range(6):
        members = pick_rungs(rungs, np.random.default_rng(seed))
        assert len(members) == GROUP and not any(in_chain for _, in_chain in members)
        assert len({row.source for row, _ in members}) == 1
        assert len({row.id for row, _ in members}) == GROUP  # drawn without repeats
    few = {"c": [rung("c", 0, 1), rung("c", 1, 1)]}
    assert len(pick_rungs(few, np.random.default_rng(0))) == GROUP


def test_rung_order_tau_is_kendall_per_source_and_none_without_an_order():
    from vq.synth.quality_data import Version, rung_order_tau

    def rung(source: str, i: int, vmaf: float) -> Version:
        return Version(f"{source}/r{i}", source, "holdout", 0, i, [], vmaf, 1 + vmaf / 25, 25.0, "")

    rows = [rung("a", i, v) for i, v in enumerate((90, 70, 50, 30))]
    rows += [rung("b", i, v) for i, v in enumerate((80, 60, 40))]
    agree = np.asarray([r.vmaf for r in rows])
    assert rung_order_tau(agree, rows) == pytest.approx(1.0)
    # Source a ordered backwards (tau -1), source b right (tau 1): the mean is 0.
    mixed = np.asarray([-r.vmaf if r.source == "a" else r.vmaf for r in rows])
    assert rung_order_tau(mixed, rows) == pytest.approx(0.0)
    # One swapped pair of 6 in source a: tau 4/6; b stays 1.
    swapped = agree.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    assert rung_order_tau(swapped, rows) == pytest.approx((4 / 6 + 1) / 2)
    assert rung_order_tau(np.ones(len(rows)), rows) is None  # constant scores order nothing
    assert rung_order_tau(agree[:2], rows[:2]) is None  # under 3 rungs


def test_client_post_accuracy_compares_each_rung_with_its_post_processed_twin():
    from vq.synth.quality_data import Version, client_post_accuracy

    def version(vid: str, vmaf: float) -> Version:
        return Version(vid, "a", "holdout", 0, 1, [], vmaf, 1 + vmaf / 25, 25.0, "")

    # VMAF: sharpening helps rung 1, hurts rung 2, leaves rung 3 as it was.
    rows = [version("a/r1", 60), version("a/r2", 80), version("a/r3", 70)]
    rows += [version("a/r1+sharpen", 65), version("a/r2+sharpen", 75), version("a/r3+sharpen", 70)]
    assert client_post_accuracy(np.asarray([r.vmaf for r in rows]), rows) == pytest.approx(1.0)
    # A score that likes every sharpened rung: right on r1, wrong on r2, half on the VMAF tie.
    likes_sharp = np.asarray([3.0, 4.0, 3.5, 3.2, 4.2, 3.7])
    assert client_post_accuracy(likes_sharp, rows) == pytest.approx(1.5 / 3)
    assert client_post_accuracy(likes_sharp[:3], rows[:3]) is None  # no twins


def test_chain_steps_relabelled_carry_their_change_down_the_chain():
    from vq.eval.metrics.vmaf import vmaf_to_mos
    from vq.synth.quality_data import Version, chain_labelled_by

    def version(level: int, kinds: list[str], vmaf: float, neg: float | None, chain: int = 0) -> Version:
        stages = [{"kind": k} for k in kinds]
        vid = f"a/c{chain}l{level}" if level else "a/pristine"
        return Version(vid, "a", "train", chain if level else -1, level, stages, vmaf, 0.0, 25.0, "", neg)

    pristine = version(0, [], 99.0, 99.0)
    # VMAF: encode -9, sharpen +6, encode -8, colour -3, sharpen +2 (NEG: -11, -28, -5, -5, -10)
    chain = [
        version(1, ["encode"], 90.0, 88.0),
        version(2, ["encode", "sharpen"], 96.0, 60.0),
        version(3, ["encode", "sharpen", "encode"], 88.0, 55.0),
        version(4, ["encode", "sharpen", "encode", "color"], 85.0, 50.0),
        version(5, ["encode", "sharpen", "encode", "color", "sharpen"], 87.0, 40.0),
    ]
    other = [
        version(1, ["sharpen"], 101.0, 80.0, chain=1),
        version(2, ["sharpen", "blur"], 70.0, 50.0, chain=1),
    ]
    rows = [pristine, *chain, *other]
    # No gain: a rise at an enhancing step becomes a tie, and stays off the levels after it.
    no_gain = chain_labelled_by(rows, "vmaf_no_gain")
    assert [r.vmaf for r in no_gain] == pytest.approx([99, 90, 90, 82, 79, 79, 99, 68])
    assert no_gain[3].mos == pytest.approx(float(vmaf_to_mos(82.0)))
    # NEG's change at each sharpening step (colour and the rest keep VMAF's).
    neg_sharpen = chain_labelled_by(rows, "vmaf_neg_sharpen")
    assert [r.vmaf for r in neg_sharpen] == pytest.approx([99, 90, 62, 54, 51, 41, 80, 49])
    assert [r.level for r in neg_sharpen] == [r.level for r in rows]
    assert [r.vmaf for r in rows] == [99, 90, 96, 88, 85, 87, 101, 70]  # the given rows unchanged
    assert chain_labelled_by(rows, "vmaf") == rows
    with pytest.raises(Exception, match="vmaf_neg_sharpen, not 'psnr'"):
        chain_labelled_by(rows, "psnr")
    with pytest.raises(Exception, match="no vmaf_neg label"):
        chain_labelled_by(
            [*rows, version(3, ["sharpen", "blur", "noise"], 60.0, None, chain=1)], "vmaf_neg_sharpen"
        )


def test_rungs_relabelled_by_vmaf_neg_carry_its_order_and_its_pseudo_mos():
    from vq.eval.metrics.vmaf import vmaf_to_mos
    from vq.synth.quality_data import Version, labelled_by

    def version(vid: str, vmaf: float, neg: float | None) -> Version:
        return Version(vid, "a", "train", 0, 1, [], vmaf, float(vmaf_to_mos(vmaf)), 25.0, "", neg)

    rows = [version("a/r1", 80, 78), version("a/r1+sharpen", 90, 70)]
    assert labelled_by(rows, "vmaf") == rows
    neg = labelled_by(rows, "vmaf_neg")
    assert [r.vmaf for r in neg] == [78, 70] and neg[0].mos > neg[1].mos  # the order flips
    assert neg[1].mos == pytest.approx(float(vmaf_to_mos(70)))
    assert rows[1].vmaf == 90  # the rows given are left as they were
    with pytest.raises(Exception, match="rebuild"):
        labelled_by([version("a/r2", 60, None)], "vmaf_neg")
    # A manifest row says NEG only where it was measured, and reads back as it was.
    chain_clip = version("a/c0l1", 60, None)
    assert "vmaf_neg" not in chain_clip.to_json() and rows[0].to_json()["vmaf_neg"] == 78
    assert Version(**chain_clip.to_json()) == chain_clip and Version(**rows[0].to_json()) == rows[0]


def test_random_chains_never_draw_a_ladder_rung():
    rng = np.random.default_rng(0)
    drawn = {s.kind for _ in range(200) for s in random_chain(rng, depth=(1, 4)).stages}
    drawn |= {random_stage(rng).kind for _ in range(200)}
    assert "rung" not in drawn and {"encode", "rescale", "noise"} <= drawn


def test_the_energy_floor_sees_noise_that_texture_hides():
    """Light noise over a token that is half texture, half flat: the mean energy (led by
    the texture) barely moves, the mean log energy (led by the flat blocks) moves a lot."""
    import jax.numpy as jnp
    from flax import nnx

    from vq.train.models.kvq import BLOCK, ENERGY_CHANNELS, band_energy

    rng = np.random.default_rng(0)
    half = np.zeros((1, 2, 16, 16, 3), np.float32)
    half[..., :8, :] = rng.normal(0.0, 0.5, (1, 2, 16, 8, 3))
    noisy = half + rng.normal(0.0, 0.02, half.shape).astype(np.float32)
    filters = nnx.Linear(BLOCK * BLOCK * ENERGY_CHANNELS, 8, use_bias=False, rngs=nnx.Rngs(0))

    def stats(x):
        out = np.asarray(band_energy(jnp.asarray(x), filters, 1, token=16, floor=True))
        return out[..., :8].mean(), out[..., 8:].mean()  # mean energy, mean log energy

    (mean, quiet), (mean_noisy, quiet_noisy) = stats(half), stats(noisy)
    assert mean_noisy - mean < 0.05 and quiet_noisy - quiet > 1.0
    # Without the floor the stem is the one the shipped model was trained with.
    plain = np.asarray(band_energy(jnp.asarray(half), filters, 1, token=16))
    assert plain.shape == (1, 2, 1, 8) and np.allclose(plain.mean(), mean)


def test_energy_stem_and_patch_embedding_convolutions_compute_their_definitions():
    """The strided convolutions (what exports and runs) equal the definitions written out
    in numpy: 8 channels per pixel (RGB, change since the last frame, luma steps right and
    down, zero past the edge), optionally 2x2-averaged, cut into blocks, block mean
    removed, a linear filter bank, squared, averaged per token, logged; and each token's
    pixels with their frame differences through one linear map."""
    import jax.numpy as jnp
    from flax import nnx

    from vq.train.models import create_model
    from vq.train.models.kvq import BLOCK, ENERGY_CHANNELS, band_energy

    rng = np.random.default_rng(1)
    clip = rng.normal(0.0, 1.0, (2, 3, 32, 32, 3)).astype(np.float32)
    filters = nnx.Linear(BLOCK * BLOCK * ENERGY_CHANNELS, 5, use_bias=False, rngs=nnx.Rngs(2))
    w = np.asarray(filters.kernel[...])

    def reference(x, scale, token=16):
        b, t, s = x.shape[:3]
        prev = np.concatenate([x[:, :1], x[:, :-1]], axis=1)
        luma = x.mean(-1, keepdims=True)
        dx, dy = np.zeros_like(luma), np.zeros_like(luma)
        dx[:, :, :, :-1] = luma[:, :, :, 1:] - luma[:, :, :, :-1]
        dy[:, :, :-1] = luma[:, :, 1:] - luma[:, :, :-1]
        c = np.concatenate([x, x - prev, dx, dy], axis=-1)
        if scale > 1:
            c = c.reshape(b, t, s // scale, scale, s // scale, scale, 8).mean(axis=(3, 5))
        n = s // scale // BLOCK
        blocks = (
            c.reshape(b, t, n, BLOCK, n, BLOCK, 8).transpose(0, 1, 2, 4, 3, 5, 6).reshape(b, t, n, n, -1, 8)
        )
        blocks = blocks - blocks.mean(axis=4, keepdims=True)
        r = blocks.reshape(b, t, n, n, -1) @ w
        per = token // scale // BLOCK
        g = n // per
        e = (r**2).reshape(b, t, g, per, g, per, -1).mean(axis=(3, 5))
        return np.log(1e-5 + e).reshape(b, t, g * g, -1)

    for scale in (1, 2):
        got = np.asarray(band_energy(jnp.asarray(clip), filters, scale, token=16))
        np.testing.assert_allclose(got, reference(clip.astype(np.float64), scale), atol=2e-4)

    model = create_model("kvq", seed=0, frames=3, short_frames=2, size=32, token=16, dim=8, heads=2, depth=1)
    b, t = clip.shape[:2]
    prev = np.concatenate([clip[:, :1], clip[:, :-1]], axis=1)
    x = np.concatenate([clip, clip - prev], axis=-1)
    patches = x.reshape(b, t, 2, 16, 2, 16, 6).transpose(0, 1, 2, 4, 3, 5, 6).reshape(b, t, 4, -1)
    expected = patches @ np.asarray(model.embed.kernel[...]) + np.asarray(model.embed.bias[...])
    from vq.train.models.kvq import frame_planes

    got = np.asarray(model.patch_embed(jnp.asarray(clip), frame_planes(jnp.asarray(clip))))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_niqe_prefers_pristine_pictures():
    from PIL import Image, ImageFilter

    from vq.eval.metrics.niqe import fit_pristine, niqe

    pristine = smooth_images(6, (288, 384), seed=1)
    model = fit_pristine(pristine[:5])
    test = pristine[5]
    blurred = np.asarray(Image.fromarray(test).filter(ImageFilter.GaussianBlur(3)))
    noisy = np.clip(test + np.random.default_rng(0).normal(0, 25, test.shape), 0, 255).astype(np.uint8)
    clean = niqe(test, model)
    assert clean < niqe(blurred, model) and clean < niqe(noisy, model)
    with pytest.raises(Exception, match="at least"):
        niqe(test[:50, :50], model)


def _sources(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(4):
        make_clip(videos / f"v{i}.mp4", n=40, size=(160, 96), crf=12)
    write_images(tmp_path / "photos", smooth_images(4, (200, 300), seed=3))
    return [tmp_path / "videos", tmp_path / "photos"]


def test_label_free_set_is_split_by_source_cached_and_labelled(tmp_path):
    from vq.synth.quality_data import (
        build_quality_set,
        chain_rank_accuracy,
        load_quality_set,
        step_accuracy_by_stage,
        step_cost_by_stage,
    )

    sources = _sources(tmp_path)
    rows = build_quality_set(sources, tmp_path / "set", holdout=0.25, chains=1, seed=0, frames=8)
    assert {r.split for r in rows} == {"train", "holdout"}
    for kind in ("v", "img"):  # stratified: a held-out video and a held-out photo
        assert any(r.split == "holdout" and kind in r.source for r in rows)
    assert all(r.split == next(q.split for q in rows if q.source == r.source) for r in rows)
    pristine = [r for r in rows if r.level == 0]
    assert len(pristine) == 8 and all(r.vmaf > 90 for r in pristine)
    assert all(1.0 <= r.mos <= 5.0 for r in rows)
    clip = np.load(tmp_path / "set" / rows[1].file)
    assert clip.shape[0] == 8 and clip.dtype == np.uint8
    again = build_quality_set(sources, tmp_path / "set", holdout=0.25, chains=1, seed=0, frames=8)
    assert [r.to_json() for r in again] == [r.to_json() for r in rows]  # cached, not rebuilt
    assert len(load_quality_set(tmp_path / "set", "holdout")) == sum(r.split == "holdout" for r in rows)
    # The labels' own order is perfect rank accuracy; its reverse is zero.
    truth = np.asarray([-r.level for r in rows], float)
    assert chain_rank_accuracy(truth, rows) == 1.0 and chain_rank_accuracy(-truth, rows) == 0.0
    with pytest.raises(Exception, match="other settings"):
        build_quality_set(sources, tmp_path / "set", holdout=0.5, chains=1, seed=0, frames=8)
    # Every version carries VMAF's elementary features from its labelling pass.
    assert all(set(r.features) == {"adm", "vif0", "vif1", "vif2", "vif3"} for r in rows)
    assert all(min(r.features.values()) > 0.99 for r in pristine)
    assert min(min(r.features.values()) for r in rows) < 0.9
    # A set built before they were recorded gets them filled in, the same numbers, once.
    from vq.synth.quality_data import add_labels

    label_file = next((tmp_path / "set" / "labels").glob("*.json"))
    recorded = json.loads(label_file.read_text())
    label_file.write_text(json.dumps([{k: v for k, v in r.items() if k != "features"} for r in recorded]))
    split = recorded[0]["split"]
    assert add_labels(tmp_path / "set", split, ["features"]) == len(recorded)
    filled = json.loads(label_file.read_text())
    for now, before in zip(filled, recorded, strict=True):
        assert now["features"] == pytest.approx(before["features"], abs=1e-6)
        assert "vmaf_neg" not in now  # only what was asked for
    assert add_labels(tmp_path / "set", split, ["features"]) == 0
    with pytest.raises(Exception, match="cannot add"):
        add_labels(tmp_path / "set", split, ["psnr"])
    # Training with the auxiliary loss: a head per feature, and the loss adds its L1.
    from vq.train.kvq.config import get_config
    from vq.train.kvq.task import KvqTask, masked_l1

    config = get_config(smoke=True)
    config.set_dir, config.feature_weight = str(tmp_path / "set"), 2.0
    task = KvqTask(config)
    assert task.model_kwargs["feature_outputs"] == 5
    batch = task.batch(0, range(4))
    assert batch["features"].shape == (4, 5) and np.isfinite(batch["features"]).all()
    model = task.create_model(0)
    total, metrics = task.loss(model, batch, None)
    task.feature_weight = 0.0
    without, _ = task.loss(model, batch, None)
    assert float(total - without) == pytest.approx(2.0 * float(metrics["feature_l1"]), rel=1e-5)
    predicted, _, aux = model.score_and_features(batch["clip"])
    assert aux.shape == (4, 5)
    np.testing.assert_array_equal(np.asarray(predicted), np.asarray(model(batch["clip"])[0]))
    # Rows with no features recorded (ladder rungs) are left out of the loss, not zeros.
    target = batch["features"].copy()
    target[1:] = np.nan
    assert float(masked_l1(aux, target)) == pytest.approx(float(np.abs(aux[0] - batch["features"][0]).mean()))
    import jax

    assert np.isfinite(np.asarray(jax.grad(lambda a: masked_l1(a, target))(aux))).all()
    # Chains labelled by VMAF NEG (--chain-label vmaf_neg): the training split gets it
    # filled in once; the training rows' labels are NEG's, their levels (the in-chain
    # order) unchanged; the held-out rows stay VMAF's (the bench's label).
    from vq.eval.metrics.vmaf import vmaf_to_mos
    from vq.synth.quality_data import load_quality_set

    config.feature_weight, config.chain_label = 0.0, "psnr"
    with pytest.raises(Exception, match="psnr"):
        KvqTask(config)
    config.chain_label = "vmaf_neg"
    task = KvqTask(config)
    stored = load_quality_set(tmp_path / "set", "train")
    assert all(r.vmaf_neg is not None for r in stored)
    assert all(r.vmaf_neg is None for r in load_quality_set(tmp_path / "set", "holdout"))
    assert [r.level for r in task.train_rows] == [r.level for r in stored]
    assert [r.vmaf for r in task.train_rows] == [r.vmaf_neg for r in stored]
    assert [r.mos for r in task.train_rows] == pytest.approx([vmaf_to_mos(r.vmaf_neg) for r in stored])
    assert min(r.vmaf_neg for r in stored if r.level == 0) > 90
    assert any(abs(r.vmaf_neg - r.vmaf) > 0.5 for r in stored)  # a label of its own
    assert task.data_facts["chain_label"] == "vmaf_neg"
    assert add_labels(tmp_path / "set", "train", ["vmaf_neg"]) == 0
    # The labels between: VMAF with some steps judged apart (`chain_labelled_by`).
    from vq.synth.quality_data import chain_labelled_by

    for label in ("vmaf_no_gain", "vmaf_neg_sharpen"):
        config.chain_label = label
        task = KvqTask(config)
        assert task.train_rows == chain_labelled_by(stored, label)
        assert [r.level for r in task.train_rows] == [r.level for r in stored]
        assert task.data_facts["chain_label"] == label
    assert all(
        a.vmaf <= b.vmaf for a, b in zip(chain_labelled_by(stored, "vmaf_no_gain"), stored, strict=True)
    )
    config.chain_label, config.feature_weight = "vmaf", 2.0
    config.probe = True  # a linear probe keeps every head but the score's frozen
    with pytest.raises(Exception, match="linear probe"):
        KvqTask(config)
    config.probe = False
    # A clip that changed under its label is an error, not a silent relabel.
    label_file.write_text(json.dumps([{k: v for k, v in r.items() if k != "features"} for r in recorded]))
    degraded = tmp_path / "set" / recorded[1]["file"]
    np.save(degraded, np.load(tmp_path / "set" / recorded[0]["file"]))
    with pytest.raises(Exception, match="changed since the set was built"):
        add_labels(tmp_path / "set", split, ["features"])
    # Pairs closer than `min_gap` VMAF do not count; none left is an error, not a number.
    assert chain_rank_accuracy(truth, rows, min_gap=6.0) == 1.0
    with pytest.raises(Exception, match="apart"):
        chain_rank_accuracy(truth, rows, min_gap=1000.0)
    # Every step of every chain is counted once, under the kind of the stage it adds.
    by_stage = step_accuracy_by_stage(truth, rows)
    added = [r.stages[-1]["kind"] for r in rows if r.level > 0]
    assert {k: n for k, (n, _) in by_stage.items()} == {k: added.count(k) for k in set(added)}
    assert all(acc == 1.0 for _, acc in by_stage.values())
    assert all(acc == 0.0 for _, acc in step_accuracy_by_stage(-truth, rows).values())
    assert all(acc == 0.5 for _, acc in step_accuracy_by_stage(np.zeros(len(rows)), rows).values())
    # Each step is judged against the level before it, not the pristine clip: scores that
    # put every level below pristine but rising along the chain get every later step wrong.
    rising = np.asarray([10.0 if r.level == 0 else r.level for r in rows])
    steps = step_accuracy_by_stage(rising, rows)
    first = sum(1 for r in rows if r.level == 1)
    assert sum(n * acc for n, acc in steps.values()) == pytest.approx(first)
    # The cost of a kind: the median fall over its steps, against the level before.
    vmaf = np.asarray([r.vmaf for r in rows])
    by_level = {(r.source, r.chain, r.level): r.vmaf for r in rows}
    clean = {r.source: r.vmaf for r in rows if r.level == 0}
    falls: dict[str, list[float]] = {}
    for r in rows:
        if r.level > 0:
            before = by_level[(r.source, r.chain, r.level - 1)] if r.level > 1 else clean[r.source]
            falls.setdefault(r.stages[-1]["kind"], []).append(before - r.vmaf)
    cost = step_cost_by_stage(vmaf, rows)
    assert cost == pytest.approx({k: float(np.median(v)) for k, v in falls.items()})
    assert all(c == 0.0 for c in step_cost_by_stage(np.zeros(len(rows)), rows).values())
    assert step_cost_by_stage(2 * vmaf, rows) == pytest.approx({k: 2 * c for k, c in cost.items()})


def test_more_windows_add_training_clips_and_leave_the_bench_alone(tmp_path):
    from vq.synth.quality_data import build_quality_set, built_windows, source_of

    sources = _sources(tmp_path)
    one = build_quality_set(sources, tmp_path / "one", chains=1, seed=0, frames=8)
    three = build_quality_set(sources, tmp_path / "three", chains=1, seed=0, frames=8, windows=3)
    assert built_windows(tmp_path / "three") == 3 and built_windows(tmp_path / "one") == 1
    assert built_windows(tmp_path / "none") == 1
    held = lambda rows: [r.to_json() for r in rows if r.split == "holdout"]  # noqa: E731
    assert held(three) == held(one)  # the held-out bench does not depend on windows
    train_one = {r.source for r in one if r.split == "train"}
    train_three = {r.source for r in three if r.split == "train"}
    assert {source_of(s) for s in train_three} == train_one and len(train_three) == 3 * len(train_one)
    # Another window of a photo is another camera move over it, with chains of its own.
    first = next(
        r
        for r in three
        if r.split == "train" and r.level == 0 and "photos/" in r.source and "#w" not in r.source
    )
    other = next(r for r in three if r.source == first.source + "#w1" and r.level == 0)
    assert not np.array_equal(
        np.load(tmp_path / "three" / first.file), np.load(tmp_path / "three" / other.file)
    )
    with pytest.raises(Exception, match="other settings"):
        build_quality_set(sources, tmp_path / "three", chains=1, seed=0, frames=8)


def test_train_only_sources_join_the_training_split_and_leave_the_bench_alone(tmp_path):
    from vq.synth.quality_data import build_quality_set

    sources = _sources(tmp_path)
    before = build_quality_set(sources, tmp_path / "set", chains=1, seed=0, frames=8)
    extra = tmp_path / "extra"
    write_images(extra, smooth_images(3, (180, 240), seed=9))
    after = build_quality_set(sources, tmp_path / "set", chains=1, seed=0, frames=8, train_only=[extra])
    # Every source built before is still there, cached and split as it was...
    assert [r.to_json() for r in after if not r.source.startswith("extra/")] == [r.to_json() for r in before]
    # ...and the new ones only train, however their names hash.
    added = [r for r in after if r.source.startswith("extra/")]
    assert len({r.source for r in added}) == 3 and {r.split for r in added} == {"train"}
    # Had they come in through the split, the split itself could have moved (a rank cut
    # over more names): the reason train-only sources stay out of it.
    with pytest.raises(Exception, match="both a split source and a train-only source"):
        build_quality_set(sources, tmp_path / "set", chains=1, seed=0, frames=8, train_only=[sources[1]])
    from vq.train.kvq.config import get_config
    from vq.train.kvq.task import KvqTask

    config = get_config(smoke=True)
    config.train_data, config.set_dir = [str(extra)], str(tmp_path / "set")
    with pytest.raises(Exception, match="give the --data sources too"):
        KvqTask(config)


def test_clip_files_round_trip_exactly_in_either_format_and_fail_in_one_line(tmp_path):
    from vq.errors import MediaError
    from vq.synth.clip_files import load_clip, save_clip

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (5, 37, 53, 3), dtype=np.uint8)  # odd sizes, nothing to compress
    smooth = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :, None], 48, axis=1)
    smooth = np.repeat(np.repeat(smooth, 4, axis=0), 3, axis=3)
    for clip in (noise, smooth):
        for suffix in (".npy", ".mkv"):
            path = tmp_path / f"clip{suffix}"
            save_clip(path, clip)
            np.testing.assert_array_equal(load_clip(path), clip)
    assert isinstance(load_clip(tmp_path / "clip.npy", mmap=True), np.memmap)
    assert (tmp_path / "clip.mkv").stat().st_size < smooth.nbytes / 4  # what it is for
    with pytest.raises(ValueError, match="uint8"):
        save_clip(tmp_path / "bad.mkv", noise.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "clip.npy"]  # nothing half-written
    (tmp_path / "cut.mkv").write_bytes((tmp_path / "clip.mkv").read_bytes()[:40])
    with pytest.raises(MediaError) as e:
        load_clip(tmp_path / "cut.mkv")
    assert "cut.mkv" in str(e.value) and "\n" not in str(e.value)


def test_ladder_rungs_are_built_beside_the_set_and_fill_a_training_group(tmp_path, capsys):
    from vq.synth.clip_files import load_clip
    from vq.synth.quality_data import build_quality_set, build_rungs, load_quality_set, load_rungs, source_of
    from vq.train.kvq.config import get_config
    from vq.train.kvq.task import KvqTask

    sources = _sources(tmp_path)
    build_quality_set(sources, tmp_path / "set", chains=1, seed=0, frames=8)
    before = load_quality_set(tmp_path / "set")
    rows = build_rungs(tmp_path / "set")
    train_sources = {r.source for r in before if r.split == "train"}
    assert {r.source for r in rows} == train_sources and len(rows) == 9 * len(train_sources)
    assert all(r.stages[0]["kind"] == "rung" and r.split == "train" for r in rows)
    for source in train_sources:
        mine = [r for r in rows if r.source == source]
        assert {(r.chain, r.level) for r in mine} == {(h, lv) for h in range(3) for lv in (1, 2, 3)}
        for h in range(3):
            crfs = [r.stages[0]["crf"] for r in sorted(mine, key=lambda r: r.level) if r.chain == h]
            assert crfs == sorted(set(crfs))  # levels rank the CRFs, finest first
        full = next(r for r in mine if r.chain == 0 and r.level == 1)
        half = next(r for r in mine if r.chain == 2 and r.level == 1)
        assert full.stages[0]["height"] == 1.0 and half.stages[0]["height"] == 0.5
        assert max(r.vmaf for r in mine) > min(r.vmaf for r in mine) and all(r.vmaf < 100.5 for r in mine)
    # Rungs are stored compressed (lossless FFV1), chain versions raw.
    assert all(r.file.endswith(".mkv") for r in rows) and before[0].file.endswith(".npy")
    clip = load_clip(tmp_path / "set" / rows[0].file)
    assert clip.shape == np.load(tmp_path / "set" / before[0].file).shape
    # The set itself is unchanged, a second build reads the cache, the hold-out is apart.
    assert [r.to_json() for r in load_quality_set(tmp_path / "set")] == [r.to_json() for r in before]
    again = build_rungs(tmp_path / "set")
    assert [r.to_json() for r in again] == [r.to_json() for r in rows]
    # A set whose rungs an older build kept raw (.npy) has them compressed on the next
    # build: the same pixels, the label file names the new files, the raw ones are gone.
    label_file = next(
        f for f in (tmp_path / "set" / "rung-labels").glob("*.json") if f.name != "settings.json"
    )
    recorded = json.loads(label_file.read_text())
    pixels = {}
    for r in recorded:
        raw = r["file"].removesuffix(".mkv") + ".npy"
        pixels[raw] = load_clip(tmp_path / "set" / r["file"])
        np.save(tmp_path / "set" / raw, pixels[raw])
        (tmp_path / "set" / r["file"]).unlink()
        r["file"] = raw
    label_file.write_text(json.dumps(recorded))
    again = build_rungs(tmp_path / "set")
    assert [r.to_json() for r in again] == [r.to_json() for r in rows]
    assert not list((tmp_path / "set" / "rungs").rglob("*.npy"))
    for raw, before_pixels in pixels.items():
        np.testing.assert_array_equal(
            load_clip(tmp_path / "set" / raw.replace(".npy", ".mkv")), before_pixels
        )
    with pytest.raises(Exception, match="other settings"):  # never rebuilt under a reader
        build_rungs(tmp_path / "set", per_height=2)
    grid_file = tmp_path / "set" / "rungs" / "settings.json"  # a folder from before NEG was recorded
    grid = grid_file.read_text()
    grid_file.write_text(json.dumps({k: v for k, v in json.loads(grid).items() if k != "labels"}))
    with pytest.raises(Exception, match="before VMAF NEG was recorded"):
        build_rungs(tmp_path / "set")
    grid_file.write_text(grid)
    with pytest.raises(Exception, match="1 to 14"):
        build_rungs(tmp_path / "set", per_height=15)
    assert load_rungs(tmp_path / "set", "holdout") == [] and load_rungs(tmp_path / "none") == []

    # The rungs as the phone shows them after its sharpening: the same rungs, one stage more.
    with_post = build_rungs(tmp_path / "set", client_post=["sharpen"])
    assert [r.to_json() for r in with_post[: len(rows)]] == [r.to_json() for r in rows]
    shown = with_post[len(rows) :]
    assert [r.id for r in shown] == [f"{r.id}+sharpen" for r in rows]
    assert all(
        s.stages[:1] == r.stages and s.stages[1]["kind"] == "sharpen"
        for s, r in zip(shown, rows, strict=True)
    )
    from vq.ladder.client import sharpen

    plain = load_clip(tmp_path / "set" / rows[0].file)
    np.testing.assert_array_equal(load_clip(tmp_path / "set" / shown[0].file), sharpen(plain))
    assert shown[0].file == rows[0].file.removesuffix(".mkv") + "+sharpen.mkv"
    assert any(
        abs(s.vmaf - r.vmaf) > 0.01 for s, r in zip(shown, rows, strict=True)
    )  # labelled on its own pixels
    # Every rung also carries VMAF NEG, and the sharpening opens the gap between the two:
    # plain VMAF credits the filter, NEG does not.
    assert all(r.vmaf_neg is not None and r.vmaf_neg <= r.vmaf + 0.5 for r in with_post)
    gap = {
        k: np.mean([r.vmaf - r.vmaf_neg for r in group]) for k, group in (("plain", rows), ("shown", shown))
    }
    assert gap["shown"] > gap["plain"] + 1.0, gap
    assert len(load_rungs(tmp_path / "set")) == len(rows)  # plain rungs unless asked
    assert load_rungs(tmp_path / "set", client_post=["sharpen"]) == with_post
    with pytest.raises(Exception, match="sharpening only"):
        build_rungs(tmp_path / "set", client_post=["sr"])
    # Labels of another filter are never served from the cache.
    filter_file = tmp_path / "set" / "rung-labels" / "sharpen" / "settings.json"
    recorded_filter = filter_file.read_text()
    filter_file.write_text(recorded_filter.replace("1.5", "2.5"))
    with pytest.raises(Exception, match="another filter"):
        build_rungs(tmp_path / "set", client_post=["sharpen"])
    filter_file.write_text(recorded_filter)

    config = get_config(smoke=True)
    config.set_dir, config.batch_size, config.ladder_groups = str(tmp_path / "set"), 8, 1
    config.ladder_post = ["sharpen"]
    task = KvqTask(config)
    assert task.data_facts["train_rungs"] == len(with_post)  # read from the cache, both kinds
    assert task.eval_rungs and all(r.split == "holdout" for r in task.eval_rungs)
    batch = task.batch(0, range(8))
    # Group 0 is 4 rungs of one source (fillers, level -1); group 1 a chain from pristine.
    assert list(batch["level"][:4]) == [-1] * 4 and batch["level"][4] == 0
    config.ladder_groups = 2  # every group: no chain left in the batch
    with pytest.raises(Exception, match="ladder_groups"):
        KvqTask(config)

    # Ladder groups ordered and labelled by VMAF NEG: every rung's label is its NEG.
    config.ladder_groups, config.ladder_label = 1, "vmaf_neg"
    task = KvqTask(config)
    by_id = {r.id: r for r in with_post}
    relabelled = [r for group in task.rungs.values() for r in group]
    assert len(relabelled) == len(with_post) and task.data_facts["ladder_label"] == "vmaf_neg"
    assert all(r.vmaf == by_id[r.id].vmaf_neg for r in relabelled)
    config.ladder_label = "psnr"
    with pytest.raises(Exception, match="vmaf or vmaf_neg"):
        KvqTask(config)
    config.ladder_label = "vmaf"

    config.ladder_groups = 0  # sharpened rungs only change ladder groups
    with pytest.raises(Exception, match="needs --ladder-groups"):
        KvqTask(config)
    config.ladder_post, config.ladder_label = [], "vmaf_neg"  # so do NEG labels
    with pytest.raises(Exception, match="needs --ladder-groups"):
        KvqTask(config)
    config.ladder_label = "vmaf"

    # Starting weights that trained on this set's held-out sources are refused.
    config.ladder_groups = 1
    start = tmp_path / "start"
    start.mkdir()
    recorded = {"task": "kvq", "model": "kvq", "command": "vq train kvq ..."}
    held_out = sorted({r.source for r in before if r.split == "holdout"})
    for named_held_out, refused in ((held_out, False), ([], True)):
        recorded["data"] = {"train": [str(s) for s in sources], "holdout_source_names": named_held_out}
        (start / "config.json").write_text(json.dumps(recorded))
        config.init = str(start)
        if refused:
            with pytest.raises(Exception, match=f"trained on {len(held_out)} of this set's held-out"):
                KvqTask(config)
        else:  # the same split: the start's sources are this fine-tune's too
            facts = KvqTask(config).data_facts
            assert facts["train"] == recorded["data"]["train"]
            trained = {source_of(r.source) for r in before if r.split == "train"}
            assert set(facts["trained_source_names"]) >= trained and not set(held_out) & set(
                facts["trained_source_names"]
            )
    # The chain's record of trained sources is what the check reads, paths or not.
    recorded["data"] = {"train": ["gone/"], "trained_source_names": held_out[:1]}
    (start / "config.json").write_text(json.dumps(recorded))
    with pytest.raises(Exception, match="trained on 1 of this set's held-out"):
        KvqTask(config)
    recorded["data"] = {"train": [str(tmp_path / "gone")], "holdout_source_names": []}
    (start / "config.json").write_text(json.dumps(recorded))
    assert KvqTask(config).data_facts["train"] == []  # not known: not checked, not inherited
    assert "could not be checked" in capsys.readouterr().err


def test_a_fine_tune_records_the_commands_it_started_from():
    from vq.train.kvq.task import init_commands

    assert init_commands({"command": "b", "data": {"init_command": "a"}}) == ["a", "b"]
    assert init_commands({"command": "c", "data": {"init_commands": ["a", "b"]}}) == ["a", "b", "c"]
    assert init_commands({"command": "a", "data": {}}) == ["a"]


@pytest.mark.slow
def test_kvq_trains_exports_scores_and_evaluates(tmp_path, capsys):
    from vq.stages.quality import QualityScorer
    from vq.synth.quality_data import load_quality_set

    sources = _sources(tmp_path)
    work, art = tmp_path / "work", tmp_path / "kvq"
    args = ["train", "kvq", "--smoke", "--set-dir", str(tmp_path / "set"), "--out", str(work), "--steps", "6"]
    for s in sources:
        args += ["--data", str(s)]
    assert main(args) == 0, capsys.readouterr().err
    metrics = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert "eval/holdout/srocc" in metrics[-1] and "eval/train/srocc" in metrics[-1]
    assert any(key.startswith("eval/holdout/step_acc/") for key in metrics[-1])

    # QPT on the same set's pristine clips, then fine-tuning starts from its backbone.
    qpt = tmp_path / "qpt"
    code = main(
        ["train", "qpt", "--smoke", "--set-dir", str(tmp_path / "set"), "--out", str(qpt), "--steps", "2"]
    )
    assert code == 0, capsys.readouterr().err
    assert "eval/holdout/top1" in (qpt / "metrics.jsonl").read_text()
    from flax import nnx

    from vq.train.kvq.task import pretrained_backbone
    from vq.train.models import create_model

    smoke_kwargs = json.loads((work / "config.json").read_text())["model_kwargs"]
    backbone = pretrained_backbone(str(qpt), smoke_kwargs)
    fresh = create_model("kvq", seed=7, **smoke_kwargs)
    nnx.update(fresh, nnx.state(backbone))
    np.testing.assert_array_equal(np.asarray(fresh.embed.kernel[...]), np.asarray(backbone.embed.kernel[...]))
    with pytest.raises(Exception, match="differ"):
        pretrained_backbone(str(qpt), {**smoke_kwargs, "dim": 32})
    pretrained_backbone(str(qpt), {**smoke_kwargs, "feature_outputs": 5})  # a head of its own
    with pytest.raises(Exception, match="not a vq train qpt workdir"):
        pretrained_backbone(str(work), smoke_kwargs)

    # Fine-tuning: a run that starts from another's checkpoint, with ladder groups.
    from vq.train.kvq.task import trained_kvq

    tuned = tmp_path / "tuned"
    fine_tune = ["--out", str(tuned), "--steps", "1", "--batch-size", "8", "--set", f"init={work}"]
    # With the auxiliary feature head, which its start lacks and its ladder rungs have no
    # targets for, and the loss on differences inside a group.
    more = ["--set", "ladder_groups=1", "--set", "feature_weight=1", "--set", "cost_weight=1"]
    code = main([*args[:5], *fine_tune, *more])
    assert code == 0, capsys.readouterr().err
    last = json.loads((tuned / "metrics.jsonl").read_text().splitlines()[-1])
    assert -1.0 <= last["eval/holdout/rung_tau"] <= 1.0  # held-out rungs were built and scored
    logged = json.loads((tuned / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(logged["feature_l1"]) and np.isfinite(logged["cost_l1"]), logged
    recorded = json.loads((tuned / "config.json").read_text())
    assert recorded["model_kwargs"]["feature_outputs"] == 5
    # A fine-tune of a start that has the head carries it over (and one without drops it).
    from vq.train.kvq.config import get_config
    from vq.train.kvq.task import KvqTask

    config = get_config(smoke=True)
    config.set_dir, config.init, config.feature_weight = str(tmp_path / "set"), str(tuned), 1.0
    trained_head = trained_kvq(str(tuned), recorded["model_kwargs"]).feature_head.kernel[...]
    carried = KvqTask(config).create_model(seed=9).feature_head.kernel[...]
    np.testing.assert_array_equal(np.asarray(carried), np.asarray(trained_head))
    config.feature_weight = 0.0
    assert KvqTask(config).create_model(seed=9).feature_head is None
    first = json.loads((work / "config.json").read_text())
    assert recorded["data"]["init_commands"] == [first["command"]]
    assert recorded["data"]["trained_source_names"] == first["data"]["trained_source_names"]
    assert recorded["data"]["train"] == first["data"]["train"]  # same set: the same sources
    start = trained_kvq(str(work), smoke_kwargs)
    fresh = create_model("kvq", seed=7, **smoke_kwargs)
    nnx.update(fresh, nnx.state(start))
    np.testing.assert_array_equal(np.asarray(fresh.embed.kernel[...]), np.asarray(start.embed.kernel[...]))
    with pytest.raises(Exception, match="not a vq train kvq workdir"):
        trained_kvq(str(qpt), smoke_kwargs)
    # Directional steps may be added to a start without them: it scores as the start did.
    with_steps = {**smoke_kwargs, "oriented": 2}
    grown = create_model("kvq", seed=3, **with_steps)
    nnx.update(grown, nnx.state(trained_kvq(str(work), with_steps)))
    clip = np.random.default_rng(1).random((2, 4, 64, 64, 3), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(grown(clip)[0]), np.asarray(start(clip)[0]))
    assert grown.embed_oriented is not None
    with pytest.raises(Exception, match="differ"):
        trained_kvq(str(work), {**with_steps, "dim": 32})
    # The context cell may be switched on over a start without it: the same weights learn
    # to read the new cell (it is how fragments are cut, not a part of the network).
    shown = trained_kvq(str(work), {**smoke_kwargs, "context": 1})
    np.testing.assert_array_equal(np.asarray(shown.embed.kernel[...]), np.asarray(start.embed.kernel[...]))
    assert main(["export", "onnx", str(work), "--out", str(art)]) == 0, capsys.readouterr().err
    card = json.loads((art / "card.json").read_text())
    assert card["task"] == "kvq" and [o["name"] for o in card["outputs"]] == ["score", "frame_kl"]
    # The feature head trains, and is not part of the exported graph.
    assert main(["export", "onnx", str(tuned), "--out", str(tmp_path / "tuned-art")]) == 0
    tuned_card = json.loads((tmp_path / "tuned-art" / "card.json").read_text())
    import onnx

    graph = onnx.load(tmp_path / "tuned-art" / tuned_card["files"]["fp32"]["path"]).graph
    assert tuned_card["flax"]["kwargs"]["feature_outputs"] == 5
    assert [o.name for o in graph.output] == ["score", "frame_kl"]
    # A fine-tune may start from an exported model too (how the shipped one is tuned further).
    from_art = trained_kvq(str(art), smoke_kwargs)
    np.testing.assert_array_equal(np.asarray(from_art.embed.kernel[...]), np.asarray(start.embed.kernel[...]))
    from vq.train.kvq.task import starting_point, trained_by

    begun = starting_point(str(art))  # the card's record stands in for the workdir's
    assert (
        begun["command"] == first["command"]
        and begun["model_files"]["params_sha256"] == card["flax"]["sha256"]
    )
    assert trained_by(begun) == set(first["data"]["trained_source_names"])

    # Scores mean the same on every backend.
    windows = np.stack([_clip(4, (96, 64)), _clip(4, (96, 64))[::-1]])
    with QualityScorer(art, backend="ort-cpu") as ort, QualityScorer(art, backend="jax") as ref:
        a, keys = ort.score_windows(windows)
        b, _ = ref.score_windows(windows)
    assert np.all((a >= 1) & (a <= 5)) and np.max(np.abs(a - b)) < 0.01 and keys.shape == (2, 2)

    good = make_clip(tmp_path / "clips" / "good.mp4", n=60, size=(160, 96), crf=18)
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    out = tmp_path / "scores.jsonl"
    code = main(
        [
            "score",
            str(tmp_path / "clips"),
            "--model",
            str(art),
            "--json",
            "--out",
            str(out),
            "--segment",
            "0.8",
        ]
    )
    assert code == 1  # one input failed; the batch went on
    records = {r["path"].split("/")[-1]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["broken.mp4"]["status"] == "error" and "\n" not in records["broken.mp4"]["error"]
    ok = records["good.mp4"]
    assert ok["status"] == "ok" and 1 <= ok["score"] <= 5 and len(ok["segments"]) == 3
    assert ok["segments"][-1]["end"] == pytest.approx(2.4, abs=0.05) and ok["key_frames"]
    # the views the score averaged: the stage's default, on error records too
    from vq.stages.quality import DEFAULT_VIEWS

    assert ok["views"] == DEFAULT_VIEWS and records["broken.mp4"]["views"] == DEFAULT_VIEWS
    assert good.exists()

    report = tmp_path / "quality.json"
    code = main(
        [
            "eval",
            "quality",
            "--sources",
            str(sources[0]),
            "--sources",
            str(sources[1]),
            "--work",
            str(tmp_path / "set"),
            "--model",
            str(art),
            "--chains",
            "1",
            "--json",
            str(report),
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads(report.read_text())
    methods = [row["method"] for row in result["overall"]]
    # NIQE needs 40 sharp patches of pristine train clips; this bench is too small for it.
    assert methods[1:] == ["laplacian variance", VMAF_ROW, NEG_ROW]
    assert "NIQE left out" in capsys.readouterr().err
    vmaf_row, neg_row = result["overall"][-2:]
    # VMAF NEG beside the label: recorded in the bench once, its own order of the chains.
    stored = {r.id: r.vmaf_neg for r in load_quality_set(tmp_path / "set", "holdout")}
    assert None not in stored.values() and 0.0 < neg_row["srocc"] <= 1.0 and 0.0 <= neg_row["rank_acc"] <= 1.0
    assert any(row["method"] == NEG_ROW for row in result["by_stage"])
    assert vmaf_row["srocc"] == pytest.approx(1.0) and 0.5 <= vmaf_row["rank_acc"] <= 1.0
    assert all(np.isfinite(row["srocc"]) for row in result["overall"])
    assert (
        vmaf_row["srocc_within"] == pytest.approx(1.0) and 0.0 <= result["vmaf_between_source_share"] <= 1.0
    )
    # ... and with every source put at its own level: the label is there already (1), and
    # every row's figure is a rank correlation.
    assert vmaf_row["srocc_offset_free"] == pytest.approx(1.0)
    assert all(-1.0 <= row["srocc_offset_free"] <= 1.0 for row in result["overall"])
    # ... and with each kind of damage left out: the chains without it, pristine clips kept.
    clips_by_kind = {
        kind: sum(all(s["kind"] != kind for s in c["stages"]) for c in result["clips"])
        for kind in {s["kind"] for c in result["clips"] for s in c["stages"]}
    }
    left_out = [row for row in result["without_kind"] if row["method"] == VMAF_ROW]
    assert {row["kind"] for row in left_out} == set(clips_by_kind)
    assert all(row["clips"] == clips_by_kind[row["kind"]] < len(result["clips"]) for row in left_out)
    assert all(row["srocc"] == pytest.approx(1.0) for row in left_out)
    # Each method's share of its own score variance between sources; the label's row is the
    # label's share, the figure a score without content bias would match.
    assert vmaf_row["between_share"] == pytest.approx(result["vmaf_between_source_share"])
    assert all(0.0 <= row["between_share"] <= 1.0 for row in result["overall"])
    # ... and in VMAF points: how far apart the clean clips are put (VMAF's own: near 0).
    assert 0.0 <= vmaf_row["clean_spread"] < 3.0
    assert all(np.isfinite(row["clean_spread"]) and row["clean_spread"] >= 0 for row in result["overall"])
    # ... and by name: each held-out source's mean offset from VMAF, for every method but VMAF.
    assert set(result["source_offsets"]) == set(methods) - {VMAF_ROW}
    assert all(
        set(per_source) == {c["source"] for c in result["clips"]}
        and all(np.isfinite(list(per_source.values())))
        for per_source in result["source_offsets"].values()
    )
    stages = [row for row in result["by_stage"] if row["method"] == VMAF_ROW]
    assert stages and all(row["steps"] >= 1 and 0.0 <= row["step_acc"] <= 1.0 for row in stages)
    # Each kind's cost by VMAF, and what each score reads of it mapped onto VMAF: VMAF
    # mapped onto itself reads its own cost (its logistic is near the identity).
    assert all(row["read_cost"] == pytest.approx(row["vmaf_cost"], abs=1.0) for row in stages)
    assert all(np.isfinite(row["read_cost"]) for row in result["by_stage"])
    # The rung bench: the held-out sources' ladder rungs, VMAF's own order is tau 1.
    rung_rows = {row["method"]: row for row in result["rungs"]}
    held = {c["source"] for c in result["clips"]}
    # Each rung twice: as encoded, and as the phone shows it after sharpening (the default).
    assert {c["source"] for c in result["rung_clips"]} == held and len(result["rung_clips"]) == 18 * len(held)
    assert rung_rows[VMAF_ROW]["rung_tau"] == pytest.approx(1.0)
    assert (
        rung_rows[VMAF_ROW]["rung_tau_post"] == pytest.approx(1.0) and rung_rows[VMAF_ROW]["post_acc"] == 1.0
    )
    model_row = result["rungs"][0]  # the model's row comes first
    assert model_row["rung_tau"] is not None and -1 <= model_row["rung_tau"] <= 1
    assert 0.0 <= model_row["post_acc"] <= 1.0
    # Against VMAF NEG the same figures: NEG's own row is exact, VMAF's is not (it credits sharpening).
    neg_row = rung_rows["VMAF NEG"]
    assert neg_row["rung_tau_post_neg"] == pytest.approx(1.0) and neg_row["post_acc_neg"] == 1.0
    assert rung_rows[VMAF_ROW]["rung_tau_post_neg"] < 1.0
    assert -1 <= model_row["rung_tau_post_neg"] <= 1 and 0.0 <= model_row["post_acc_neg"] <= 1.0


def test_shipped_model_scores_the_same_on_every_backend_and_sees_damage(shared_data, tmp_path):
    """vq-kvq (trained here; card: vq/zoo/vq-kvq) on a real clip: ORT and JAX agree within
    0.01 on the 1-5 scale, and a blurred, badly re-encoded copy scores clearly lower."""
    from vq.media import open_video
    from vq.media.encode import encode_roundtrip
    from vq.stages.quality import QualityScorer

    with open_video(shared_data / "videos" / "chaplin.mp4") as video:
        clip = video.sample(times=2.0 + np.arange(16) / 25.0, fast=False).images
    damaged = Degradation("blur", {"sigma": 2.5}).apply(clip, 25.0)
    damaged = encode_roundtrip(damaged, 25.0, codec="h264", crf=44, preset="veryfast")[0]
    windows = np.stack([clip, damaged])
    with QualityScorer(backend="ort-cpu") as ort, QualityScorer(backend="jax") as ref:
        assert ort.name == "vq-kvq"
        a, keys = ort.score_windows(windows)
        b, _ = ref.score_windows(windows)
    assert np.max(np.abs(a - b)) < 0.01
    assert a[0] - a[1] > 0.5, a
    assert keys.shape == (2, 4) and len(set(keys[0].tolist())) == 4


def test_a_score_averages_seeded_fragment_placements(shared_data):
    """views=K: the mean of K placements drawn from seeds 1..K, view k in the k-th flip or
    quarter turn (the same for every clip of one size, so a score never changes);
    views=1: the cell centres, upright."""
    from vq.errors import UsageError
    from vq.media import open_video
    from vq.preprocess.fragments import dihedral
    from vq.preprocess.normalize import to_model_input
    from vq.stages.quality import QualityScorer, view_turn

    with open_video(shared_data / "videos" / "chaplin.mp4") as video:
        clip = video.sample(times=1.0 + np.arange(16) / 25.0, fast=False).images
    with QualityScorer(backend="ort-cpu", views=3) as three, QualityScorer(backend="ort-cpu", views=1) as one:
        a = three.score_windows([clip])[0]
        np.testing.assert_array_equal(three.score_windows([clip])[0], a)

        def single(rng, turn=0):
            frag = dihedral(fragments(clip, rng=rng, **three.cut), turn)
            x = to_model_input(frag[None], three.card.preprocessing)
            return float(three.run({"clip": x})["score"][0])

        manual = np.mean([single(np.random.default_rng(v), v - 1) for v in (1, 2, 3)])
        assert [view_turn(v) for v in (None, 1, 2, 8, 9)] == [0, 0, 1, 7, 0]
        np.testing.assert_allclose(a, [manual], atol=1e-5)
        np.testing.assert_allclose(one.score_windows([clip])[0], [single(None)], atol=1e-5)
        # two clips of one size in one call see the same placements as each alone
        both = three.score_windows([clip, clip[::-1]])[0]
        np.testing.assert_allclose(both[0], a[0], atol=1e-5)
    with pytest.raises(UsageError, match="views"):
        QualityScorer(backend="ort-cpu", views=0)


@needs_train
def test_a_context_model_card_says_how_to_cut():
    from vq.train.models import model_io

    assert "context" not in model_io("kvq", align=16).preprocessing["fragments"]  # cards as before
    assert model_io("kvq", align=16, context=1).preprocessing["fragments"] == {
        "grid": 4,
        "patch": 32,
        "align": 16,
        "context": 1,
    }


def test_the_scorer_cuts_windows_as_its_card_says(shared_data, tmp_path):
    """A card whose fragments carry the context cell is scored with it: the same score as
    cutting by hand with the thumbnail in the last cell, and not the score without it."""
    import json
    import shutil

    from vq.media import open_video
    from vq.models import load_model
    from vq.preprocess.fragments import dihedral
    from vq.preprocess.normalize import to_model_input
    from vq.stages.quality import QualityScorer, view_turn

    art = tmp_path / "kvq-context"
    shutil.copytree(load_model("vq-kvq").root, art)
    card = json.loads((art / "card.json").read_text())
    card["preprocessing"]["fragments"]["context"] = 1
    (art / "card.json").write_text(json.dumps(card))
    with open_video(shared_data / "videos" / "chaplin.mp4") as video:
        clip = video.sample(times=1.0 + np.arange(16) / 25.0, fast=False).images
    with (
        QualityScorer(art, backend="ort-cpu", views=1) as scorer,
        QualityScorer(backend="ort-cpu", views=1) as plain,
    ):
        assert scorer.cut["context"] == 1 and plain.cut["context"] == 0
        by_hand = to_model_input(fragments(clip, **scorer.cut)[None], scorer.card.preprocessing)
        score = scorer.score_windows([clip])[0]
        np.testing.assert_allclose(score, scorer.run({"clip": by_hand})["score"], atol=1e-5)
        assert abs(float(score[0]) - float(plain.score_windows([clip])[0][0])) > 1e-4
    # Several views share one thumbnail per window: still each view's hand cut, averaged.
    with QualityScorer(art, backend="ort-cpu", views=2) as scorer:
        views = [
            dihedral(fragments(clip, rng=np.random.default_rng(v), **scorer.cut), view_turn(v))
            for v in (1, 2)
        ]
        by_hand = scorer.run({"clip": to_model_input(np.stack(views), scorer.card.preprocessing)})["score"]
        np.testing.assert_allclose(scorer.score_windows([clip])[0][0], by_hand.mean(), atol=1e-5)


def test_segment_windows_cover_the_video_and_stay_inside():
    from vq.pipelines.score import segment_windows

    windows = segment_windows(10.0, 25.0, 16, 2.0, 30)
    assert [(a, b) for a, b, _ in windows] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0), (8.0, 10.0)]
    for a, b, times in windows:
        assert len(times) == 16 and a <= times[0] and times[-1] <= b and np.allclose(np.diff(times), 0.04)
    assert len(segment_windows(3600.0, 25.0, 16, 2.0, 30)) == 30  # spread over a long video
    ((a, b, times),) = segment_windows(0.3, 25.0, 16, 2.0, 30)  # shorter than one window
    assert (a, b) == (0.0, 0.3) and times[0] == 0.0


def _clip_preprocessing(mean: float, std: float) -> dict:
    """A 4-frame, 64 px fragment model's preprocessing (2x2 lattice on the 16 px grid)."""
    return {
        "scale": 1 / 255,
        "mean": [mean] * 3,
        "std": [std] * 3,
        "color": "RGB",
        "fragments": {"grid": 2, "patch": 32, "align": 16},
        "frames": 4,
    }


@needs_train
def test_calibration_clips_are_video_windows_cut_as_the_runtime_cuts_them(tmp_path):
    """int8 calibration of a video model: `count` fragment clips of consecutive frames from
    the videos given (files or folders), normalised as the runtime feeds them, the same
    draws for the same seed; a short video holds its last frame; no videos is one error."""
    from vq.errors import UsageError
    from vq.export.calibration import clip_feeds
    from vq.models import TensorSpec

    make_clip(tmp_path / "a.mp4", n=30, size=(160, 96))
    make_clip(tmp_path / "short.mp4", n=2, size=(96, 64))
    (tmp_path / "notes.txt").write_text("not a video")
    spec = TensorSpec("clip", "float32", ("B", 4, 64, 64, 3))
    prep = _clip_preprocessing(0.45, 0.25)
    feeds = list(clip_feeds([tmp_path], spec, prep, count=5, batch=2, seed=0))
    assert [f["clip"].shape for f in feeds] == [(2, 4, 64, 64, 3), (2, 4, 64, 64, 3), (1, 4, 64, 64, 3)]
    x = np.concatenate([f["clip"] for f in feeds])
    assert x.dtype == np.float32 and x.min() >= -0.45 / 0.25 - 1e-5 and x.max() <= 0.55 / 0.25 + 1e-5
    assert all(c.std() > 0.05 for c in x)  # pictures, not padding
    again = np.concatenate([f["clip"] for f in clip_feeds([tmp_path], spec, prep, count=5, batch=2, seed=0)])
    np.testing.assert_array_equal(again, x)
    with pytest.raises(UsageError, match="no calibration videos"):
        list(clip_feeds([tmp_path / "notes.txt"], spec, prep, count=2))


@needs_train
def test_calibration_clips_hold_consecutive_frames(tmp_path):
    """Each calibration clip is `frames` consecutive frames of one video (flat frames whose
    grey level steps by 8 a frame: every clip climbs by one step a frame, whatever its
    placement and turn), and a video shorter than a window holds its last frame."""
    from vq.export.calibration import clip_feeds
    from vq.media.encode import write_video
    from vq.models import TensorSpec

    def flat(n):
        return [np.full((96, 160, 3), 40 + 8 * i, np.uint8) for i in range(n)]

    prep = _clip_preprocessing(0.0, 1.0)
    spec = TensorSpec("clip", "float32", ("B", 4, 64, 64, 3))
    (tmp_path / "long").mkdir()
    write_video(tmp_path / "long" / "steps.mp4", flat(24), 25)
    levels = np.concatenate([f["clip"] for f in clip_feeds([tmp_path / "long"], spec, prep, 6)]).mean(
        axis=(2, 3, 4)
    )
    np.testing.assert_allclose(np.diff(levels * 255, axis=1), 8.0, atol=1.5)
    assert len({round(float(v)) for v in levels[:, 0] * 255}) > 1  # windows start at different moments
    short = write_video(tmp_path / "short.mp4", flat(2), 25)
    (held,) = (f["clip"] for f in clip_feeds([short], spec, prep, 1))
    steps = np.diff(held[0].mean(axis=(1, 2, 3)) * 255)
    assert steps[0] == pytest.approx(8.0, abs=1.5) and np.abs(steps[1:]).max() < 1.0


@needs_train
def test_int8_quality_model_quantises_only_its_matrix_products(tmp_path, capsys):
    """`vq export onnx --arch kvq --precision int8 --calib VIDEO`: calibrated on the video's
    windows, and only the family's `int8_op_types` in int8 (the stem's convolutions, whose
    outputs become log energies, stay float)."""
    import onnx

    from vq.train.kvq.config import SMOKE_MODEL

    video = make_clip(tmp_path / "calib.mp4", n=40, size=(160, 96))
    out = tmp_path / "kvq"
    sets = [x for k, v in SMOKE_MODEL.items() for x in ("--set", f"{k}={v}")]
    args = ["export", "onnx", "--arch", "kvq", *sets, "--out", str(out), "--precision", "int8"]
    code = main([*args, "--calib", str(video), "--calib-count", "6"])
    assert code == 0, capsys.readouterr().err
    card = json.loads((out / "card.json").read_text())
    facts = card["export"]["int8"]["cpu"]
    assert facts["op_types"] == ["Gemm", "MatMul"] and facts["calibration_samples"] == 6
    graph = onnx.load(out / card["files"]["int8-cpu"]["path"]).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    products = [n for n in graph.node if n.op_type == "MatMul"]
    assert convs and not any(i in dequantized for n in convs for i in n.input)
    assert any(n.input[0] in dequantized for n in products)


@needs_train
def test_requantising_reads_the_ops_from_the_family_or_else_the_card():
    """`vq export int8` on an artifact: the ops come from its model family; where that
    family is not installed, from what its card recorded; with neither, one clear error."""
    import copy

    from vq.errors import UsageError
    from vq.export.artifact import _int8_op_types
    from vq.models import load_model

    card = load_model("vq-kvq").card
    assert _int8_op_types(card) == {"MatMul", "Gemm"}
    elsewhere = copy.deepcopy(card)
    elsewhere.flax = {**elsewhere.flax, "model": "a_family_not_installed"}
    with pytest.raises(UsageError, match=r"a_family_not_installed.*not installed"):
        _int8_op_types(elsewhere)
    elsewhere.export = {**elsewhere.export, "int8": {"cpu": {"op_types": ["MatMul"]}}}
    assert _int8_op_types(elsewhere) == {"MatMul"}
    elsewhere.export["int8"]["cpu"]["op_types"] = "all"
    assert _int8_op_types(elsewhere) is None
