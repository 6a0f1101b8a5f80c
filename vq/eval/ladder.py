"""Encoding decisions on held-out sources: the KVQ-driven ladder against VMAF and fixed CRF.

`vq eval ladder --sources ...` runs the ladder search of `vq ladder` on every source with
VMAF beside the quality model on the same windows (`LadderOptions.reference`), and client
post-processing on every cheaper hull rung. Two sets of sources: `tune` sets the two
thresholds (they may be sources the quality model trained on), `sources` are reported
(they should be held out of the quality model's training: its card lists them).

* **Per-title choice.** The fixed ladder ships every source at CRF `baseline_crf` at its
  own height. The quality target S is the lowest score whose choices (cheapest hull rung
  with KVQ >= S) give the tuning sources at least the fixed ladder's mean VMAF; the VMAF
  target V (the full-reference search, as ab-av1 / Av1an do it) is found the same way.
  On the test sources: bitrate saved against the fixed ladder, the VMAF change, and how
  often the KVQ choice is the VMAF choice.
* **Matching the fixed ladder.** The same, anchored: the cheapest rung scoring at least
  the fixed ladder's own rung less a drop D (`vq ladder --match-crf`), D tuned the same
  way; it needs only the model's ordering of one video's encodes, not its level across
  videos. Beside it, VMAF anchored the same way with no drop (the cheapest rung with at
  least the fixed rung's VMAF): the most any per-title choice on this rung grid saves at
  each video's own VMAF, and the choice the KVQ one is checked against.
* **One price for the catalogue** (Netflix's dynamic optimizer, in its Lagrangian form):
  each video ships the hull rung where one more score point would cost more than a price
  in kbps (`choose_rung(kbps_per_point=...)`), the price tuned the same way, on KVQ and on
  VMAF. It spends bits where they buy the most quality, so with the true VMAF and the
  right price it is the oracle below (up to the grid's gaps); with KVQ it needs the
  score's steps between one video's encodes to mean the same on every video.
* **The most there is to save.** `most_saved_at_equal_vmaf`: the least total bitrate any
  choice of one rung per video reaches at the fixed ladder's mean VMAF, knowing every
  rung's VMAF (an oracle over the test sources, not a rule): how much a per-title target
  on this rung grid could save at all, full reference or not.
* **How well the score orders one video's rungs.** Kendall's tau between the KVQ score
  and VMAF over each source's rungs (every height and CRF): 1 when the model orders the
  encodes as VMAF does. Every rule above needs this order, resolution against compression
  included; the mean over the test sources (and over the tuning sources,
  `rung_order_tau_tuning`) says whether a failed rule is the model's order or the rule.
* **Device-cloud decision.** The margin is the smallest for which no tuning source ships
  a post-processed rung more than `max_vmaf_loss` VMAF below the rung it replaces. On the
  test sources: how often the rule fires, its violations, and the bandwidth saved; the
  same losses in VMAF NEG beside them, since plain VMAF credits sharpening itself (an
  unsharp-masked copy of a clip scores 100 against the clip).

The tuned drop and margin, with what they were tuned with and whether each met its goal,
are `card_ladder` in the report; `card` writes them into that artifact's card (checked
first to hold the model evaluated), where `vq ladder` takes its defaults from.

Per-source ladder records are cached in `work` (keyed by the source and the options), so
a rerun only redoes what changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import UsageError, VqError
from vq.eval.base import Evaluator, Report, Table, Ui, backend_option, model_option, precision_option
from vq.eval.metrics.correlation import within_group_krocc
from vq.fsutil import atomic_write_text, expand_inputs
from vq.ladder.rd import choose_rung, client_decision, full_height_rung, upper_hull
from vq.media import VIDEO_SUFFIXES
from vq.models import Artifact, load_model, write_card
from vq.pipelines.ladder import LadderOptions, ladder_section, run_ladder
from vq.stages.quality import DEFAULT_VIEWS

# Each grid runs from the dearest setting to the cheapest.
SCORE_GRID = np.round(np.arange(5.0, 0.9999, -0.01), 2)
DROP_GRID = np.round(np.arange(0.0, 2.0001, 0.005), 3)
MATCH_GRID = np.round(np.arange(-1.0, 2.0001, 0.005), 3)
VMAF_GRID = np.round(np.arange(100.0, -0.0001, -0.1), 1)
MARGIN_GRID = np.round(np.arange(0.0, 1.0001, 0.01), 2)
# kbps per score point (KVQ's 1-5 points and VMAF's 0-100 alike), 20 steps a decade
SLOPE_GRID = np.geomspace(1e6, 0.1, 141)
RECORD_FORMAT = 2  # part of the cache key: 2 added VMAF NEG to every rung


@dataclass
class LadderEvalOptions:
    sources: list[Path] = field(
        metadata={"help": "Reported source videos (held out of the quality model).", "required": True}
    )
    tune: list[Path] = field(
        metadata={"help": "Source videos the targets and the client margin are tuned on.", "required": True}
    )
    work: Path = field(
        metadata={"help": "Folder for the per-source ladder records (cached).", "required": True}
    )
    model: str | None = model_option()
    backend: str = backend_option()
    precision: str = precision_option()
    codec: str = field(default="h264", metadata={"help": "h264, hevc or av1."})
    heights: list[int] = field(
        default_factory=list, metadata={"help": "Rung heights (default: each source's, 2/3 and 1/2 of it)."}
    )
    crfs: list[int] = field(
        default_factory=list, metadata={"help": "CRFs to try (default: five per codec, plus the baseline's)."}
    )
    baseline_crf: int = field(default=23, metadata={"help": "The fixed ladder's CRF (at the source height)."})
    max_seconds: float = field(default=6.0, metadata={"help": "Seconds of each source encoded."})
    segment: float = field(default=3.0, metadata={"help": "Seconds per scored window."})
    views: int = field(
        default=DEFAULT_VIEWS, metadata={"help": "Fragment placements the quality model averages."}
    )
    client_post: list[str] = field(
        default_factory=lambda: ["sharpen", "sr"], metadata={"help": "Client post-processing to test."}
    )
    max_vmaf_loss: float = field(
        default=1.0, metadata={"help": "VMAF a post-processed rung may lose against the rung it replaces."}
    )
    card: Path | None = field(
        default=None,
        metadata={
            "help": "Write the tuned drop and client margin into this artifact's card (the model "
            "evaluated, exported to a folder), where vq ladder takes its defaults from."
        },
    )


def _ladder_options(opts: LadderEvalOptions) -> LadderOptions:
    from vq.pipelines.ladder import DEFAULT_CRFS

    crfs = sorted({*(opts.crfs or DEFAULT_CRFS[opts.codec]), opts.baseline_crf})
    return LadderOptions(
        codec=opts.codec,
        heights=list(opts.heights),
        crfs=crfs,
        target_score=5.0,  # nothing reaches it: every cheaper hull rung gets client post-processing
        client_post=list(opts.client_post),
        # the record's own decision is unused: each rule's is replayed here
        client_margin=0.0 if opts.client_post else None,
        max_seconds=opts.max_seconds,
        segment=opts.segment,
        views=opts.views,
        model=opts.model,
        backend=opts.backend,
        precision=opts.precision,
        reference=True,
    ).checked()


def _cached_ladder(path: Path, lopts: LadderOptions, work: Path) -> dict[str, Any]:
    """The ladder record of `path`, from `work` when one was written with these options."""
    from vq.stages.quality import SCORING  # at call time: the version in force now

    # The quality model by content, not by name, and how the stage scores with it: a new
    # shipped `vq-kvq` or a new way of placing its views must not reuse old records.
    model = load_model(lopts.model, task="kvq").card.files["fp32"]["sha256"]
    what = json.dumps([str(path.resolve()), asdict(lopts), model, SCORING, RECORD_FORMAT], default=str)
    cache = work / f"{path.stem}-{hashlib.sha256(what.encode()).hexdigest()[:16]}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    record = run_ladder(path, lopts)
    atomic_write_text(cache, json.dumps(record))
    return record


def pick(record: dict[str, Any], metric: str, match_crf: int | None = None, **rule: float) -> int:
    """The rung `choose_rung` ships for one source on `metric` ("score" or "vmaf"); with
    `match_crf`, anchored at the fixed ladder's rung at that CRF."""
    rungs = record["rungs"]
    kbps = [r["kbps"] for r in rungs]
    values = [r[metric] for r in rungs]
    anchor = None if match_crf is None else baseline(record, match_crf)
    return choose_rung(kbps, values, upper_hull(kbps, values), anchor=anchor, **rule)[0]


def baseline(record: dict[str, Any], baseline_crf: int) -> int:
    """The fixed ladder's rung: `baseline_crf` at the source's own (the tallest) height."""
    return full_height_rung(record["rungs"], baseline_crf)


def _mean_vmaf(records: list[dict], picks: list[int]) -> float:
    return float(np.mean([r["rungs"][i]["vmaf"] for r, i in zip(records, picks, strict=True)]))


def keeps_vmaf(records: list[dict], floor: float, metric: str, **rule: Any) -> bool:
    """Whether the rule's choices keep the sources' mean VMAF at `floor` or above."""
    return _mean_vmaf(records, [pick(r, metric, **rule) for r in records]) >= floor


def tune_rule(
    records: list[dict], floor: float, metric: str, key: str, grid: np.ndarray, **fixed: Any
) -> float:
    """The cheapest setting of one rule (`key` over `grid`, walked from the dearest end)
    whose choices keep the tuning sources' mean VMAF at `floor` or above (the dearest when
    none does: `keeps_vmaf` tells)."""
    best = float(grid[0])
    for value in grid:
        if not keeps_vmaf(records, floor, metric, **fixed, **{key: float(value)}):
            break
        best = float(value)
    return best


def most_saved_at_equal_vmaf(records: list[dict], baseline_crf: int, units: int = 100) -> float:
    """1 - (least total kbps of one rung per record with mean VMAF >= the fixed rungs')
    / (the fixed rungs' total kbps): an exact knapsack over VMAF summed in 1/`units` steps."""
    # least[s]: the fewest kbps whose rungs' VMAF sum to exactly s units (inf: unreachable)
    if any(not np.isfinite(r["vmaf"]) for record in records for r in record["rungs"]):
        raise UsageError("a rung without a finite VMAF: the bitrate oracle needs every rung's")
    least = np.zeros(1)
    need = 0
    fixed_kbps = 0.0
    for record in records:
        rungs = record["rungs"]
        vmaf = np.round(np.clip([r["vmaf"] for r in rungs], 0.0, None) * units).astype(int)
        kbps = np.asarray([r["kbps"] for r in rungs], np.float64)
        grown = np.full(len(least) + int(vmaf.max()), np.inf)
        for v, k in zip(vmaf, kbps, strict=True):
            np.minimum(grown[v : v + len(least)], least + k, out=grown[v : v + len(least)])
        least = grown
        fixed = baseline(record, baseline_crf)
        need += int(vmaf[fixed])
        fixed_kbps += float(kbps[fixed])
    return float(1.0 - least[need:].min() / fixed_kbps)


def rung_order_tau(record: dict[str, Any]) -> float | None:
    """Kendall's tau between the model's score and VMAF over one source's rungs (the raw
    score: the ladder's smoothing within a height turns disagreements into ties); None
    with fewer than 3 rungs or no order to compare (every score or VMAF equal)."""
    rungs = record["rungs"]
    raw = [r.get("raw_score", r["score"]) for r in rungs]
    tau = within_group_krocc(raw, [r["vmaf"] for r in rungs], [""] * len(rungs))
    return None if tau is None else round(tau, 4)


def mean_of_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(np.mean(known)), 4) if known else None


def device_cloud(record: dict[str, Any], chosen: int, margin: float) -> dict | None:
    """The client decision for one source at `margin`, with the VMAF it costs the viewer."""
    rungs = record["rungs"]
    kbps = [r["kbps"] for r in rungs]
    score = [r["score"] for r in rungs]
    hull = upper_hull(kbps, score)
    post = {}
    for i, r in enumerate(rungs):
        for mode, values in r.get("post", {}).items():
            post.setdefault(mode, {})[i] = values["score"]
    decision = client_decision(kbps, score, hull, chosen, post, margin)
    if decision is None:
        return None
    shipped = rungs[decision["ship"]]
    decision["vmaf_shown"] = shipped["post"][decision["post"]]["vmaf"]
    decision["vmaf_replaced"] = rungs[chosen]["vmaf"]
    # VMAF NEG beside it: plain VMAF credits the sharpening itself (records before it had none).
    decision["vmaf_neg_shown"] = shipped["post"][decision["post"]].get("vmaf_neg")
    decision["vmaf_neg_replaced"] = rungs[chosen].get("vmaf_neg")
    return decision


def margin_keeps_vmaf(records: list[dict], chosen: list[int], margin: float, max_loss: float) -> bool:
    """Whether no device-cloud decision at `margin` loses more than `max_loss` VMAF."""
    decisions = [device_cloud(r, c, margin) for r, c in zip(records, chosen, strict=True)]
    return all(d is None or d["vmaf_shown"] >= d["vmaf_replaced"] - max_loss for d in decisions)


def tune_margin(records: list[dict], chosen: list[int], max_loss: float) -> float:
    """The smallest margin at which no decision loses more than `max_loss` VMAF (the
    largest on the grid when none keeps to it: `margin_keeps_vmaf` tells)."""
    for margin in MARGIN_GRID:
        if margin_keeps_vmaf(records, chosen, float(margin), max_loss):
            return float(margin)
    return float(MARGIN_GRID[-1])


def card_to_tune(folder: Path, model: str | None) -> Artifact:
    """The artifact in `folder`, checked to hold the model evaluated (the same fp32 graph):
    a drop or a margin is in one model's score units and means nothing for another."""
    target = Artifact(folder)
    evaluated = load_model(model, task="kvq")
    if target.card.files["fp32"]["sha256"] != evaluated.card.files["fp32"]["sha256"]:
        raise UsageError(
            f"--card {folder}: not the model evaluated ({evaluated.name}); its settings would not fit"
        )
    return target


def _ladders(
    sources: list[Path], lopts: LadderOptions, opts: LadderEvalOptions, ui: Ui, failed: list, what: str
):
    paths = expand_inputs([str(s) for s in sources], VIDEO_SUFFIXES)
    if not paths:
        raise UsageError(f"no {what} videos found")
    records = []
    for path in ui.track(paths, len(paths), f"{what} ladders"):
        try:
            records.append(_cached_ladder(path, lopts, opts.work))
        except VqError as e:  # a bad file is reported and the batch goes on
            failed.append({"path": str(path), "error": str(e)})
            ui.note(f"{path}: {e}", warn=True)
    if not records:
        raise UsageError(f"no {what} video could be encoded")
    return records


def _rung_columns(column: str, rung: dict[str, Any]) -> dict[str, Any]:
    return {
        column: f"{rung['height']}p/{rung['crf']}",
        f"{column}_kbps": rung["kbps"],
        f"{column}_vmaf": rung["vmaf"],
    }


def run(opts: LadderEvalOptions, ui: Ui) -> Report:
    lopts = _ladder_options(opts)
    card = None if opts.card is None else card_to_tune(opts.card, opts.model)  # before the long part
    failed: list[dict[str, str]] = []
    tune_recs = _ladders(opts.tune, lopts, opts, ui, failed, "tuning")
    test_recs = _ladders(opts.sources, lopts, opts, ui, failed, "test")
    overlap = {r["path"] for r in tune_recs} & {r["path"] for r in test_recs}
    if overlap:
        raise UsageError(f"tuning and test sources overlap: {sorted(overlap)}")
    floor = _mean_vmaf(tune_recs, [baseline(r, opts.baseline_crf) for r in tune_recs])
    anchored = {"match_crf": opts.baseline_crf}
    # name -> (metric, the rule's settings); tuned settings keep the tuning sources' VMAF
    rules: dict[str, tuple[str, dict[str, Any]]] = {
        "kvq_drop": ("score", {"max_drop": tune_rule(tune_recs, floor, "score", "max_drop", DROP_GRID)}),
        "kvq_target": (
            "score",
            {"target_score": tune_rule(tune_recs, floor, "score", "target_score", SCORE_GRID)},
        ),
        "kvq_match": (
            "score",
            {
                "max_drop": tune_rule(tune_recs, floor, "score", "max_drop", MATCH_GRID, **anchored),
                **anchored,
            },
        ),
        "vmaf_target": (
            "vmaf",
            {"target_score": tune_rule(tune_recs, floor, "vmaf", "target_score", VMAF_GRID)},
        ),
        "vmaf_match": ("vmaf", {"max_drop": 0.0, **anchored}),  # not tuned: each video's own VMAF
        "kvq_slope": (
            "score",
            {"kbps_per_point": tune_rule(tune_recs, floor, "score", "kbps_per_point", SLOPE_GRID)},
        ),
        "vmaf_slope": (
            "vmaf",
            {"kbps_per_point": tune_rule(tune_recs, floor, "vmaf", "kbps_per_point", SLOPE_GRID)},
        ),
    }

    def picks_of(record: dict[str, Any]) -> dict[str, int]:
        out = {"fixed": baseline(record, opts.baseline_crf)}
        out.update({name: pick(record, metric, **rule) for name, (metric, rule) in rules.items()})
        return out

    tune_chosen = [picks_of(r)["kvq_drop"] for r in tune_recs]
    margin = tune_margin(tune_recs, tune_chosen, opts.max_vmaf_loss)

    rows = []
    for r in test_recs:
        picks = picks_of(r)
        rungs = r["rungs"]
        decision = device_cloud(r, picks["kvq_drop"], margin)
        shipped = None if decision is None else rungs[decision["ship"]]
        # report column -> rule; each gives "<column>", "<column>_kbps", "<column>_vmaf"
        columns = {
            "fixed": "fixed",
            "kvq": "kvq_drop",
            "kvq_target": "kvq_target",
            "vmaf_pick": "vmaf_target",
            "kvq_match": "kvq_match",
            "vmaf_match": "vmaf_match",
            "kvq_slope": "kvq_slope",
            "vmaf_slope": "vmaf_slope",
        }
        rows.append(
            {
                "source": Path(r["path"]).name,
                **{
                    k: v
                    for col, rule in columns.items()
                    for k, v in _rung_columns(col, rungs[picks[rule]]).items()
                },
                "agree": picks["kvq_drop"] == picks["vmaf_target"],
                "match_agree": picks["kvq_match"] == picks["vmaf_match"],
                "slope_agree": picks["kvq_slope"] == picks["vmaf_slope"],
                "client": None
                if shipped is None
                else f"{shipped['height']}p/{shipped['crf']}+{decision['post']}",
                "client_saved_kbps": 0.0 if decision is None else decision["saved_kbps"],
                "client_vmaf_loss": None
                if decision is None
                else round(decision["vmaf_replaced"] - decision["vmaf_shown"], 3),
                "client_vmaf_neg_loss": None
                if decision is None or decision["vmaf_neg_shown"] is None
                else round(decision["vmaf_neg_replaced"] - decision["vmaf_neg_shown"], 3),
                "rung_order_tau": rung_order_tau(r),
            }
        )
    fixed_kbps = sum(row["fixed_kbps"] for row in rows)

    def saved(prefix: str) -> float:
        return round(1.0 - sum(row[f"{prefix}_kbps"] for row in rows) / fixed_kbps, 4)

    def vmaf_change(prefix: str) -> float:
        return round(float(np.mean([row[f"{prefix}_vmaf"] - row["fixed_vmaf"] for row in rows])), 3)

    losses = [row["client_vmaf_loss"] for row in rows if row["client_vmaf_loss"] is not None]
    neg_losses = [row["client_vmaf_neg_loss"] for row in rows if row["client_vmaf_neg_loss"] is not None]
    summary = {
        "tuning_sources": len(tune_recs),
        "test_sources": len(test_recs),
        "max_drop": rules["kvq_drop"][1]["max_drop"],
        "score_target": rules["kvq_target"][1]["target_score"],
        "vmaf_target": rules["vmaf_target"][1]["target_score"],
        "match_drop": rules["kvq_match"][1]["max_drop"],
        "client_margin": margin,
        "bitrate_saved_vs_fixed": saved("kvq"),
        "vmaf_change_vs_fixed": vmaf_change("kvq"),
        "agreement_with_vmaf": round(float(np.mean([x["agree"] for x in rows])), 4),
        "rung_order_tau": mean_of_known([x["rung_order_tau"] for x in rows]),
        "rung_order_tau_tuning": mean_of_known([rung_order_tau(r) for r in tune_recs]),
        "score_target_bitrate_saved": saved("kvq_target"),
        "score_target_vmaf_change": vmaf_change("kvq_target"),
        "vmaf_driven_bitrate_saved": saved("vmaf_pick"),
        "vmaf_driven_vmaf_change": vmaf_change("vmaf_pick"),
        "match_bitrate_saved": saved("kvq_match"),
        "match_vmaf_change": vmaf_change("kvq_match"),
        "match_agreement_with_vmaf": round(float(np.mean([x["match_agree"] for x in rows])), 4),
        "vmaf_match_bitrate_saved": saved("vmaf_match"),
        "vmaf_match_vmaf_change": vmaf_change("vmaf_match"),
        "kbps_per_point": round(rules["kvq_slope"][1]["kbps_per_point"], 3),
        "slope_bitrate_saved": saved("kvq_slope"),
        "slope_vmaf_change": vmaf_change("kvq_slope"),
        "slope_agreement_with_vmaf": round(float(np.mean([x["slope_agree"] for x in rows])), 4),
        "vmaf_kbps_per_point": round(rules["vmaf_slope"][1]["kbps_per_point"], 3),
        "vmaf_slope_bitrate_saved": saved("vmaf_slope"),
        "vmaf_slope_vmaf_change": vmaf_change("vmaf_slope"),
        "oracle_bitrate_saved": round(most_saved_at_equal_vmaf(test_recs, opts.baseline_crf), 4),
        "oracle_bitrate_saved_tuning": round(most_saved_at_equal_vmaf(tune_recs, opts.baseline_crf), 4),
        "client_decisions": len(losses),
        "client_violations": int(sum(loss > opts.max_vmaf_loss for loss in losses)),
        "client_worst_vmaf_loss": max(losses) if losses else None,
        "client_violations_vmaf_neg": int(sum(loss > opts.max_vmaf_loss for loss in neg_losses)),
        "client_worst_vmaf_neg_loss": max(neg_losses) if neg_losses else None,
        "client_bandwidth_saved": round(
            sum(x["client_saved_kbps"] for x in rows) / sum(x["kvq_kbps"] for x in rows), 4
        ),
    }
    tables = [
        Table(
            f"Per-title ladder on {len(test_recs)} test sources (tuned on {len(tune_recs)}: KVQ within "
            f"{summary['max_drop']:g} of the best rung, VMAF >= {summary['vmaf_target']:g}; KVQ within "
            f"{summary['match_drop']:g} of the fixed rung's score or above; client margin {margin:g})",
            [
                ("source", "source"),
                ("fixed", f"fixed crf {opts.baseline_crf}"),
                ("fixed_kbps", "kbps"),
                ("fixed_vmaf", "VMAF"),
                ("kvq", "KVQ pick"),
                ("kvq_kbps", "kbps"),
                ("kvq_vmaf", "VMAF"),
                ("vmaf_pick", "VMAF pick"),
                ("agree", "agree"),
                ("kvq_match", "KVQ match pick"),
                ("kvq_match_kbps", "kbps"),
                ("kvq_match_vmaf", "VMAF"),
                ("vmaf_match", "VMAF match pick"),
                ("kvq_slope", "KVQ slope pick"),
                ("kvq_slope_vmaf", "VMAF"),
                ("vmaf_slope", "VMAF slope pick"),
                ("client", "client ships"),
                ("client_vmaf_loss", "VMAF lost"),
                ("client_vmaf_neg_loss", "NEG lost"),
                ("rung_order_tau", "tau vs VMAF"),
            ],
            rows,
        ),
        Table(
            "Summary (test sources)",
            [("key", "measure"), ("value", "value")],
            [{"key": k, "value": v} for k, v in summary.items()],
        ),
    ]
    data = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "summary": summary,
        "rows": rows,
        "tuning": [Path(r["path"]).name for r in tune_recs],
        "failed": failed,
    }
    data["options"]["sources"] = [str(s) for s in opts.sources]
    # What `vq ladder` takes as its defaults for this model (`vq.pipelines.ladder.tuned_settings`).
    drop = rules["kvq_drop"][1]["max_drop"]
    met = {
        "max_drop": keeps_vmaf(tune_recs, floor, "score", max_drop=drop),
        "client_margin": margin_keeps_vmaf(tune_recs, tune_chosen, margin, opts.max_vmaf_loss),
    }
    data["card_ladder"] = ladder_section(drop, margin, opts.views, opts.client_post, data["tuning"], met)
    for name, ok in met.items():
        if not ok:
            ui.note(
                f"no {name} on the grid met its goal on the tuning videos: {name} is its dearest end",
                warn=True,
            )
    if card is not None:
        card.card.extra["ladder"] = data["card_ladder"]
        ui.note(f"wrote the tuned ladder settings into {write_card(card.root, card.card)}")
    return Report(tables, data)


EVALUATOR = Evaluator(
    summary="KVQ-driven encoding ladder vs fixed CRF and VMAF-driven choice; device-cloud decision",
    options=LadderEvalOptions,
    run=run,
)
