"""Encoding decisions: the rate-quality hull, rung choice, the device-cloud rule, and
`vq ladder` / `vq eval ladder` end to end on a real clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vq.cli.app import main
from vq.ladder.rd import choose_rung, client_decision, upper_hull


def test_hull_keeps_only_efficient_concave_points():
    # 0 cheapest; 1 dominated by 0 (dearer, worse); 2 under the chord 0-3; 3, 4 on the hull;
    # 5 equal in rate to 4 but worse.
    kbps = [100, 150, 300, 400, 900, 900]
    score = [2.0, 1.9, 2.5, 3.5, 4.0, 3.8]
    assert upper_hull(kbps, score) == [0, 3, 4]
    assert upper_hull([1, 2, 3], [1.0, 2.0, 3.0]) == [0, 2]  # collinear: the middle adds nothing
    assert upper_hull([5], [float("nan")]) == []
    with pytest.raises(ValueError):
        upper_hull([1, 2], [1.0])


def test_choice_walks_the_hull():
    kbps, score = [100, 400, 900], [2.0, 3.5, 4.0]
    hull = upper_hull(kbps, score)
    assert choose_rung(kbps, score, hull, target_score=3.0)[0] == 1
    assert choose_rung(kbps, score, hull, target_score=2.0)[0] == 0
    index, why = choose_rung(kbps, score, hull, target_score=4.5)
    assert index == 2 and "no rung reaches" in why
    assert choose_rung(kbps, score, hull, max_kbps=500)[0] == 1
    index, why = choose_rung(kbps, score, hull, max_kbps=50)
    assert index == 0 and "cheapest" in why
    # within 0.6 of the best (4.0): 3.5 qualifies, so the 400 kbps rung
    index, why = choose_rung(kbps, score, hull, max_drop=0.6)
    assert index == 1 and "within 0.6" in why
    assert choose_rung(kbps, score, hull, max_drop=0.0)[0] == 2
    assert choose_rung(kbps, score, hull, max_drop=5.0)[0] == 0
    with pytest.raises(ValueError):
        choose_rung(kbps, score, hull)
    with pytest.raises(ValueError):
        choose_rung(kbps, score, hull, target_score=3.0, max_drop=0.1)


def test_choice_at_a_price_per_score_point():
    # hull slopes: 200 kbps a point from 100 to 400 kbps, then 1000 kbps a point to 900
    kbps, score = [100, 400, 900], [2.0, 3.5, 4.0]
    hull = upper_hull(kbps, score)
    assert choose_rung(kbps, score, hull, kbps_per_point=100)[0] == 0
    index, why = choose_rung(kbps, score, hull, kbps_per_point=500)
    assert index == 1 and "500 kbps" in why
    assert choose_rung(kbps, score, hull, kbps_per_point=5000)[0] == 2
    assert choose_rung(kbps, score, hull, kbps_per_point=200)[0] == 0  # a tie: the cheaper
    with pytest.raises(ValueError):
        choose_rung(kbps, score, hull, max_drop=0.1, kbps_per_point=500)


def test_one_price_for_every_video_is_the_least_bitrate_for_the_quality_it_reaches():
    """The Lagrangian bound: no choice of one rung per video with at least the priced
    choice's total VMAF costs fewer total kbps, whatever the price."""
    import itertools

    from vq.eval.ladder import pick

    rng = np.random.default_rng(1)
    records = []
    for _ in range(4):
        vmaf = rng.uniform(40, 99, 6)
        kbps = rng.uniform(50, 900, 6)
        records.append(
            {"rungs": [{"vmaf": float(v), "kbps": float(k)} for v, k in zip(vmaf, kbps, strict=True)]}
        )
    every = list(itertools.product(*[r["rungs"] for r in records]))
    for price in (0.5, 5.0, 20.0, 200.0):
        chosen = [r["rungs"][pick(r, "vmaf", kbps_per_point=price)] for r in records]
        reached, spent = sum(x["vmaf"] for x in chosen), sum(x["kbps"] for x in chosen)
        least = min(sum(x["kbps"] for x in c) for c in every if sum(x["vmaf"] for x in c) >= reached - 1e-9)
        assert spent == pytest.approx(least)


def test_choice_anchored_at_a_fixed_ladders_rung():
    kbps, score = [100, 400, 900], [2.0, 3.5, 4.0]
    hull = upper_hull(kbps, score)
    assert choose_rung(kbps, score, hull, max_drop=0.0, anchor=1)[0] == 1
    assert choose_rung(kbps, score, hull, max_drop=1.5, anchor=1)[0] == 0
    index, why = choose_rung(kbps, score, hull, max_drop=-0.4, anchor=1)  # better than the anchor
    assert index == 2 and "rung 1" in why
    # an anchor under the hull: a cheaper rung scoring as well wins, on the hull or not
    kbps, score = [100, 200, 210, 500], [1.0, 3.05, 3.9, 3.0]
    assert (
        upper_hull(kbps, score) == [0, 2] and choose_rung(kbps, score, [0, 2], max_drop=0.0, anchor=3)[0] == 1
    )
    kbps, score = [100, 500, 400, 900], [2.0, 3.0, 3.5, 4.0]
    hull = upper_hull(kbps, score)
    assert hull == [0, 2, 3] and choose_rung(kbps, score, hull, max_drop=0.0, anchor=1)[0] == 2
    # ...and where every hull rung that reaches it is dearer, the anchor itself ships
    kbps, score = [100, 300, 900], [2.0, 2.4, 4.0]
    hull = upper_hull(kbps, score)
    assert hull == [0, 2] and choose_rung(kbps, score, hull, max_drop=0.0, anchor=1)[0] == 1
    index, why = choose_rung(kbps, score, hull, max_drop=-2.0, anchor=1)
    assert index == 2 and "no rung scores 2 above" in why
    with pytest.raises(ValueError):
        choose_rung(kbps, score, hull, target_score=3.0, anchor=1)


def test_most_saved_at_equal_vmaf_is_the_exact_knapsack():
    import itertools

    from vq.eval.ladder import most_saved_at_equal_vmaf

    rng = np.random.default_rng(0)
    records = []
    for _ in range(4):
        crfs = [18, 23, 28, 33]
        vmaf = np.sort(rng.uniform(60, 99, 4))[::-1]
        kbps = np.sort(rng.uniform(50, 900, 4))[::-1]
        rungs = [
            {"height": 360, "crf": c, "vmaf": round(float(v), 2), "kbps": round(float(k), 2)}
            for c, v, k in zip(crfs, vmaf, kbps, strict=True)
        ]
        records.append({"rungs": rungs})
    fixed = [r["rungs"][1] for r in records]
    floor, total = sum(x["vmaf"] for x in fixed), sum(x["kbps"] for x in fixed)
    least = min(
        sum(x["kbps"] for x in pick)
        for pick in itertools.product(*[r["rungs"] for r in records])
        if sum(x["vmaf"] for x in pick) >= floor - 1e-9
    )
    assert most_saved_at_equal_vmaf(records, 23) == pytest.approx(1 - least / total, abs=1e-9)
    assert most_saved_at_equal_vmaf(records, 23) >= 0.0  # the fixed rungs themselves qualify
    # one record: only its own rungs at least as good as the fixed one count
    one = records[:1]
    assert most_saved_at_equal_vmaf(one, 23) == pytest.approx(0.0)


def test_client_decision_ships_the_next_rung_down_when_post_processing_beats_the_chosen_one():
    kbps, score = [100, 400, 900], [2.0, 3.5, 4.0]
    hull = [0, 1, 2]
    post = {"sharpen": {0: 4.5, 1: 4.1}, "sr": {1: 4.2}}
    decision = client_decision(kbps, score, hull, 2, post, margin=0.0)
    # the next rung down (400 kbps), never the cheapest (100 kbps, though it scores 4.5),
    # with the client mode that does best on it
    assert decision["ship"] == 1 and decision["post"] == "sr"
    assert decision["saved_kbps"] == 500 and decision["saved_fraction"] == pytest.approx(500 / 900)
    assert client_decision(kbps, score, hull, 2, post, margin=0.15)["post"] == "sr"
    assert client_decision(kbps, score, hull, 2, post, margin=0.25) is None
    assert client_decision(kbps, score, hull, 1, post, margin=0.0)["ship"] == 0
    assert client_decision(kbps, score, hull, 0, post, margin=0.0) is None  # nothing cheaper
    assert client_decision(kbps, score, [0, 2], 2, post, margin=0.0)["ship"] == 0  # next on the hull


def test_the_default_drop_and_margin_come_from_the_quality_model_s_card():
    """Both are in the model's score units: the card's `ladder` section (what `vq eval
    ladder` tuned for it) fills what the user left out, and says so; a card without one
    gets the built-in values, a malformed one a clear error."""
    from dataclasses import replace

    from vq.errors import ModelError, UsageError
    from vq.models import load_model
    from vq.pipelines.ladder import DEFAULT_CLIENT_MARGIN, DEFAULT_MAX_DROP, LadderOptions, tuned_settings

    card = load_model("vq-kvq", task="kvq").card
    shipped = card.extra["ladder"]
    tuned, source = tuned_settings(card)
    assert (tuned["max_drop"], tuned["client_margin"]) == (shipped["max_drop"], shipped["client_margin"])
    assert source == "vq-kvq card"
    bare = replace(card, extra={k: v for k, v in card.extra.items() if k != "ladder"})
    assert tuned_settings(bare) == (
        {"max_drop": DEFAULT_MAX_DROP, "client_margin": DEFAULT_CLIENT_MARGIN},
        "built-in default",
    )
    for bad in (
        None,
        [0.0, 0.1],
        {"max_drop": 0.1},
        {"max_drop": "a lot", "client_margin": 0.1},
        {"max_drop": 0.0, "client_margin": float("nan")},
        {"max_drop": True, "client_margin": 0.1},
        {"max_drop": -1, "client_margin": 0},
    ):
        with pytest.raises(ModelError, match="ladder"):
            tuned_settings(replace(card, extra={"ladder": bad}))

    # nothing given: the model's drop, and its margin once the client post-processes
    opts, filled = LadderOptions(client_post=["sharpen"]).checked().with_model_settings(card)
    assert (opts.max_drop, opts.client_margin) == (tuned["max_drop"], tuned["client_margin"])
    assert filled == {"max_drop": tuned["max_drop"], "client_margin": tuned["client_margin"], "from": source}
    # a margin tuned with other client modes or views is still used, and the record says so
    for other in ({"client_post": ["sharpen", "sr"]}, {"client_post": ["sharpen"], "views": 8}):
        _, filled = LadderOptions(**other).checked().with_model_settings(card)
        assert filled["from"].startswith("vq-kvq card (tuned with other")
    # what the user gave is kept: another rule, a drop, a margin; no client, no margin
    # (option given, the drop that results: none for the other rules, 0 to match a rung)
    for given, drop in (
        ({"target_score": 3.5}, None),
        ({"max_kbps": 800.0}, None),
        ({"max_drop": 0.2}, 0.2),
        ({"match_crf": 23}, 0.0),
        ({"kbps_per_point": 500.0}, None),
    ):
        opts, filled = LadderOptions(**given).checked().with_model_settings(card)
        assert filled == {} and opts.client_margin is None and opts.max_drop == drop
    given = LadderOptions(client_post=["sr"], client_margin=-0.5, max_drop=0.1).checked()
    # nothing to fill: a malformed section is never read
    assert given.with_model_settings(replace(card, extra={"ladder": None})) == (given, {})
    with pytest.raises(UsageError, match="--client-margin goes with --client-post"):
        LadderOptions(client_margin=0.1).checked()


@pytest.fixture(scope="module")
def clip(shared_data):
    return shared_data / "videos" / "example3.mp4"  # 854x480, 2 s, 24 fps, with audio


def test_ladder_end_to_end(clip, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out, plot = tmp_path / "shipped.mp4", tmp_path / "rd.png"
    args = ["ladder", str(clip), "--crf", "20", "--crf", "40", "--heights", "480", "--heights", "240"]
    args += ["--max-seconds", "1", "--client-post", "sharpen", "--target-score", "1.0"]
    assert main([*args, "--out", str(out), "--plot", str(plot), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    rungs = {(r["height"], r["crf"]): r for r in record["rungs"]}
    assert set(rungs) == {(480, 20), (480, 40), (240, 20), (240, 40)}
    assert rungs[480, 20]["width"] == 854 and rungs[240, 20]["width"] == 428
    for height in (480, 240):  # a lower CRF costs more bits
        assert rungs[height, 20]["kbps"] > rungs[height, 40]["kbps"]
    assert all(1.0 <= r["score"] <= 5.0 for r in record["rungs"])
    hull = record["hull"]
    assert hull and all(record["rungs"][i]["on_hull"] for i in hull)
    # target 1.0: every rung reaches it, so the cheapest hull rung is chosen
    cheapest = min(hull, key=lambda i: record["rungs"][i]["kbps"])
    assert record["chosen"]["rung"] == cheapest and record["shipped"]["rung"] == cheapest
    assert record["client"]["decision"] is None  # nothing is cheaper than the cheapest
    # the client margin was not given: the shipped model's tuned one, and the record says so
    from vq.models import load_model

    margin = load_model("vq-kvq").card.extra["ladder"]["client_margin"]
    assert record["defaults"] == {"client_margin": margin, "from": "vq-kvq card"}
    assert record["client"]["margin"] == margin
    assert record["timings"]["encode_s"] > 0 and record["searched_seconds"] == pytest.approx(1.0, abs=0.05)
    # the shipped rung over the whole video: its size, the source's duration, audio kept
    from vq.media import probe

    info = probe(out)
    shipped = record["rungs"][cheapest]
    assert (info.width, info.height) == (shipped["width"], shipped["height"])
    assert info.duration == pytest.approx(probe(clip).duration, abs=0.1) and info.has_audio
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ladder_client_post_replaces_a_rung_it_beats(shared_data, capsys):
    """A target no rung reaches picks the best rung; every cheaper hull rung is then
    scored after the client's post-processing, and a negative margin forces the swap.
    (`chaplin.mp4`: a clip the model clearly scores higher at CRF 20 than at 44. On
    `example3.mp4`'s first second, fog and snow that CRF 44 smooths away, it does not.)"""
    clip = shared_data / "videos" / "chaplin.mp4"
    args = ["ladder", str(clip), "--crf", "20", "--crf", "44", "--heights", "240", "--max-seconds", "1"]
    args += ["--client-post", "sharpen", "--client-post", "sr", "--target-score", "5", "--json"]
    assert main([*args, "--client-margin", "-5"]) == 0
    record = json.loads(capsys.readouterr().out)
    decision = record["client"]["decision"]
    cheap = record["rungs"][decision["ship"]]
    assert cheap["crf"] == 44 and set(cheap["post"]) == {"sharpen", "sr"}
    assert record["shipped"]["post"] == decision["post"] and decision["saved_fraction"] > 0


def test_ladder_matches_a_fixed_rung_at_fewer_bits(clip, capsys):
    """--match-crf adds its CRF to the grid and ships the cheapest rung the model scores at
    least as high as the full-height rung at that CRF."""
    args = ["ladder", str(clip), "--crf", "20", "--crf", "44", "--heights", "240", "--max-seconds", "1"]
    assert main([*args, "--match-crf", "30", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    rungs = {r["crf"]: r for r in record["rungs"]}
    assert set(rungs) == {20, 30, 44} and record["target"] == {"max_drop": 0.0, "match_crf": 30}
    chosen = record["chosen"]
    assert chosen["kbps"] <= rungs[30]["kbps"] and chosen["score"] >= rungs[30]["score"]
    assert "rung 1" in chosen["why"]


def test_ladder_ships_at_a_catalogue_price(clip, capsys):
    """--kbps-per-point ships the hull rung that maximises price x score - kbps: a price
    no rung's gain is worth ships the cheapest hull rung, a price every gain is worth the
    best, and the record names the rule."""
    args = ["ladder", str(clip), "--crf", "20", "--crf", "44", "--heights", "240", "--max-seconds", "1"]
    picks = {}
    for price in (1e-3, 1e9):
        assert main([*args, "--kbps-per-point", str(price), "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["target"] == {"kbps_per_point": price} and record["defaults"] == {}
        hull = record["hull"]
        value = [price * record["rungs"][i]["score"] - record["rungs"][i]["kbps"] for i in hull]
        assert record["chosen"]["rung"] == hull[int(np.argmax(value))]
        assert "would cost over" in record["chosen"]["why"]
        picks[price] = record["chosen"]["rung"]
    assert picks[1e-3] == hull[0] and picks[1e9] == hull[-1]


def test_ladder_says_which_defaults_came_from_the_model(clip, tmp_path, capsys):
    import shutil

    from vq.models import load_model

    kvq = load_model("vq-kvq")
    tuned = kvq.card.extra["ladder"]
    args = ["ladder", str(clip), "--crf", "20", "--crf", "44", "--heights", "120", "--max-seconds", "1"]
    assert main([*args, "--client-post", "sharpen"]) == 0
    out = capsys.readouterr().out
    assert f"max drop {tuned['max_drop']:g}, client margin {tuned['client_margin']:g} (vq-kvq card)" in out
    assert main([*args, "--max-drop", "0.5", "--client-margin", "0.2", "--client-post", "sharpen"]) == 0
    assert "vq-kvq card" not in capsys.readouterr().out  # both given: nothing filled in
    # a model whose card has no section: the built-in values; a malformed one: one error line
    bare = tmp_path / "bare"
    shutil.copytree(kvq.root, bare)
    card = json.loads((bare / "card.json").read_text())
    del card["ladder"]
    (bare / "card.json").write_text(json.dumps(card))
    assert main([*args, "--model", str(bare)]) == 0
    assert "max drop 0.015 (built-in default)" in capsys.readouterr().out
    card["ladder"] = {"max_drop": "soon"}
    (bare / "card.json").write_text(json.dumps(card))
    assert main([*args, "--model", str(bare)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ladder section" in err[0]
    assert main([*args, "--model", str(bare), "--max-drop", "0.1"]) == 0  # nothing read from it


def test_ladder_refuses_bad_input(tmp_path, clip, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:3000])
    assert main(["ladder", str(broken), "--heights", "120", "--crf", "30"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert main(["ladder", str(clip), "--target-score", "4", "--max-kbps", "500"]) != 0
    assert "not both" in capsys.readouterr().err
    assert main(["ladder", str(clip), "--codec", "mpeg2"]) != 0
    assert main(["ladder", str(clip), "--client-post", "magic", "--heights", "120", "--crf", "30"]) != 0
    assert "unknown client post-processing" in capsys.readouterr().err
    assert main(["ladder", str(tmp_path / "missing.mp4")]) != 0
    assert main(["ladder", str(clip), "--match-crf", "23", "--target-score", "4"]) != 0
    assert "--match-crf goes with --max-drop" in capsys.readouterr().err
    assert main(["ladder", str(clip), "--match-crf", "23", "--kbps-per-point", "100"]) != 0
    assert "--match-crf goes with --max-drop" in capsys.readouterr().err
    assert main(["ladder", str(clip), "--kbps-per-point", "100", "--max-drop", "0.1"]) != 0
    assert "not both" in capsys.readouterr().err
    for price in ("0", "inf", "nan"):  # an infinite price would tie every rung
        assert main(["ladder", str(clip), "--kbps-per-point", price]) != 0
        assert "--kbps-per-point must be a finite price > 0" in capsys.readouterr().err
    assert main(["ladder", str(clip), "--max-drop", "-0.1"]) != 0
    assert "--max-drop must be >= 0" in capsys.readouterr().err
    assert main(["ladder", str(clip), "--match-crf", "60"]) != 0
    assert "CRFs run from 0 to 51" in capsys.readouterr().err


def test_rung_order_tau_is_the_score_s_agreement_with_vmaf_over_a_source_s_rungs():
    pytest.importorskip("scipy")
    from vq.eval.ladder import mean_of_known, rung_order_tau

    vmaf = [95.0, 90.0, 80.0, 60.0]
    same = {"rungs": [{"score": 4.5 - i, "vmaf": v} for i, v in enumerate(vmaf)]}
    assert rung_order_tau(same) == 1.0
    reversed_ = {"rungs": [{"score": 1.0 + i, "vmaf": v} for i, v in enumerate(vmaf)]}
    assert rung_order_tau(reversed_) == -1.0
    # one swap (the two middle rungs) of 6 pairs: (5 - 1) / 6
    swapped = {"rungs": [{"score": s, "vmaf": v} for s, v in zip([4.0, 2.0, 3.0, 1.0], vmaf, strict=True)]}
    assert rung_order_tau(swapped) == pytest.approx(4 / 6, abs=1e-4)
    # the raw score, where the ladder kept one, is the model's own order
    raw = {"rungs": [{**r, "raw_score": 1.0 + i} for i, r in enumerate(same["rungs"])]}
    assert rung_order_tau(raw) == -1.0
    # no order to compare: None, not NaN in the JSON; the mean skips it
    flat = {"rungs": [{"score": 3.0, "vmaf": v} for v in vmaf]}
    assert rung_order_tau(flat) is None and rung_order_tau({"rungs": same["rungs"][:2]}) is None
    assert mean_of_known([None, 0.5, 1.0]) == 0.75 and mean_of_known([None]) is None


def test_eval_ladder_tunes_on_one_set_and_reports_another(shared_data, tmp_path, capsys, monkeypatch):
    pytest.importorskip("scipy")
    from vq.eval.metrics.vmaf import ffmpeg_with_vmaf

    try:
        ffmpeg_with_vmaf()
    except Exception as e:  # the train/eval extras bring imageio-ffmpeg's libvmaf build
        pytest.skip(str(e))
    videos = shared_data / "videos"
    work = tmp_path / "work"
    args = [
        "eval",
        "ladder",
        "--tune",
        str(videos / "example3.mp4"),
        "--sources",
        str(videos / "example2.mp4"),
    ]
    args += ["--work", str(work), "--heights", "240", "--heights", "120", "--crfs", "30", "--crfs", "44"]
    args += ["--max-seconds", "1", "--client-post", "sharpen", "--json", str(tmp_path / "r.json")]
    # the tuned settings go into a copy of the evaluated model's card; another model's card
    # is refused before anything is encoded
    import shutil

    from vq.models import Artifact, load_model
    from vq.pipelines.ladder import tuned_settings
    from vq.stages.quality import DEFAULT_VIEWS

    card = tmp_path / "kvq-copy"
    shutil.copytree(load_model("vq-kvq").root, card)
    other = tmp_path / "other-kvq"
    shutil.copytree(card, other)
    text = (other / "card.json").read_text()
    sha = Artifact(other).card.files["fp32"]["sha256"]
    (other / "card.json").write_text(text.replace(sha, "0" * len(sha)))
    assert main([*args, "--card", str(other)]) != 0
    assert "not the model evaluated" in capsys.readouterr().err and not work.exists()
    assert main([*args, "--card", str(card)]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    written = Artifact(card).card.extra["ladder"]
    assert written == data["card_ladder"] and written["views"] == DEFAULT_VIEWS
    assert written["client_post"] == ["sharpen"] and written["tuning"] == ["example3.mp4"]
    assert set(written["met"]) == {"max_drop", "client_margin"}
    assert written["max_drop"] == data["summary"]["max_drop"]
    assert written["client_margin"] == data["summary"]["client_margin"]
    assert tuned_settings(Artifact(card).card) == (written, "vq-kvq card")
    assert Artifact(card).verify()  # the model files untouched
    summary = data["summary"]
    assert summary["tuning_sources"] == 1 and summary["test_sources"] == 1
    assert 1.0 <= summary["score_target"] <= 5.0 and 0.0 <= summary["vmaf_target"] <= 100.0
    assert 0.0 <= summary["max_drop"] <= 2.0 and -1.0 <= summary["match_drop"] <= 2.0
    (row,) = data["rows"]
    assert row["fixed"] == "240p/23" and 0 <= row["fixed_vmaf"] <= 100
    assert summary["bitrate_saved_vs_fixed"] == pytest.approx(
        1 - row["kvq_kbps"] / row["fixed_kbps"], abs=1e-3
    )
    # VMAF anchored at the fixed rung never spends more than it and never loses VMAF to it
    assert row["vmaf_match_kbps"] <= row["fixed_kbps"] and row["vmaf_match_vmaf"] >= row["fixed_vmaf"]
    assert summary["vmaf_match_bitrate_saved"] >= 0 and summary["vmaf_match_vmaf_change"] >= 0
    assert summary["match_agreement_with_vmaf"] == float(row["kvq_match"] == row["vmaf_match"])
    assert summary["slope_bitrate_saved"] == pytest.approx(
        1 - row["kvq_slope_kbps"] / row["fixed_kbps"], abs=1e-3
    )
    assert summary["vmaf_slope_vmaf_change"] == pytest.approx(
        row["vmaf_slope_vmaf"] - row["fixed_vmaf"], abs=1e-3
    )
    assert summary["kbps_per_point"] > 0 and summary["vmaf_kbps_per_point"] > 0
    assert summary["slope_agreement_with_vmaf"] == float(row["kvq_slope"] == row["vmaf_slope"])
    # the anchored VMAF choice keeps every video's VMAF, so the oracle saves at least as much
    assert summary["oracle_bitrate_saved"] >= summary["vmaf_match_bitrate_saved"] - 1e-3
    losses = [r["client_vmaf_loss"] for r in data["rows"] if r["client_vmaf_loss"] is not None]
    assert summary["client_violations"] == sum(loss > 1.0 for loss in losses)
    assert summary["client_decisions"] == len(losses)
    neg = [r["client_vmaf_neg_loss"] for r in data["rows"] if r["client_vmaf_neg_loss"] is not None]
    assert len(neg) == len(losses) and summary["client_violations_vmaf_neg"] == sum(x > 1.0 for x in neg)
    record = json.loads(next(work.glob("example2*.json")).read_text())
    assert all(0 <= r["vmaf_neg"] <= 100 for r in record["rungs"])  # beside VMAF on every rung
    shown = [p for r in record["rungs"] for p in r.get("post", {}).values()]
    assert shown and all(0 <= p["vmaf_neg"] <= 100 for p in shown)  # and every post-processed one
    assert summary["rung_order_tau"] == row["rung_order_tau"]  # 2 heights x 3 CRFs: a tau
    assert -1.0 <= row["rung_order_tau"] <= 1.0
    cached = sorted(work.glob("*.json"))
    assert len(cached) == 2  # a rerun reads the records back
    assert main(args) == 0
    assert sorted(work.glob("*.json")) == cached
    monkeypatch.setattr("vq.stages.quality.SCORING", -1)  # another way of scoring: nothing reused
    assert main(args) == 0
    assert len(sorted(work.glob("*.json"))) == 4
    capsys.readouterr()
    clash = [
        "eval",
        "ladder",
        "--tune",
        str(videos / "example2.mp4"),
        "--sources",
        str(videos / "example2.mp4"),
    ]
    assert main([*clash, "--work", str(work), "--heights", "120", "--crfs", "30", "--max-seconds", "1"]) != 0
    assert "overlap" in capsys.readouterr().err
    assert data["tuning"] == ["example3.mp4"]


def test_scores_fall_with_crf_at_each_height():
    from vq.ladder.rd import monotone_in_crf

    heights = [720, 720, 720, 360, 360]
    crfs = [18, 33, 28, 18, 28]  # any order
    out = monotone_in_crf([4.0, 3.8, 3.0, 3.0, 3.2], heights, crfs)
    # 720p by CRF: 4.0, 3.0 (28), 3.8 (33) -> 28 and 33 pool to 3.4; 360p: 3.0, 3.2 -> 3.1
    np.testing.assert_allclose(out, [4.0, 3.4, 3.4, 3.1, 3.1])
    np.testing.assert_array_equal(monotone_in_crf([3.0, 2.0], [1, 1], [10, 20]), [3.0, 2.0])
