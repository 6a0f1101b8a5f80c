"""Quality assessment on held-out sources: a quality model against VMAF and chain order.

`vq eval quality --sources ... --work DIR` builds (once, cached in DIR) the label-free
bench of `vq.synth.quality_data` from the held-out side of the sources (the same
whole-source split training uses, so with the training sources none of these pictures
was trained on), scores every clip with the model through its runtime stage on any
backend, and reports, overall and per degradation kind:

* SROCC / KROCC / PLCC (after the VQEG 4-parameter logistic) against VMAF;
* in-chain rank accuracy: within each chain, pristine > level 1 > level 2 ... by
  construction (the label that needs no reference metric at all);
* the same on the pairs at least one just-noticeable difference apart (6 VMAF points);
* per stage kind, how often one step of a chain (one more stage) is scored worse than
  the level before: which damage a model misses or reads backwards;
* the NTIRE 2024 KVQ challenge score, 0.45 SROCC + 0.45 PLCC + 0.1 rank accuracy;
* SROCC within a source, and the share of each score's variance that lies between
  sources (content bias: VMAF rates every pristine clip about alike, so its own share is
  small; a no-reference score whose share is far above it misplaces whole sources), and
  the same bias in VMAF points: the spread of the pristine clips' scores after the
  logistic (VMAF's own is well under a point);
* on a second bench of encoding-ladder rungs of the same held-out sources (3 heights x
  ``--rungs`` CRFs each, `vq.synth.quality_data.build_rungs`), Kendall's tau against VMAF
  over each source's rungs: whether the score trades size against compression as VMAF
  does, which is what `vq ladder` needs of it (``--rungs 0`` leaves it out); with every
  rung also as the phone shows it after sharpening (``--rung-post``), the same tau over
  both and how often sharpening moves the score as VMAF moves, each again against VMAF
  NEG (no enhancement gain), which does not credit the sharpening itself.

VMAF itself is a row too: its SROCC is 1 by definition, and its in-chain rank accuracy is
how often the full-reference label agrees with the constructed order -- the ceiling a
model trained on that label can be expected to reach. VMAF NEG (no enhancement gain) is
a row beside it, the same figures for the label `vq train kvq --chain-label vmaf_neg`
trains on: it reads over-sharpening and colour shifts as damage where VMAF often does not.

Baselines run beside it on the same clips: NIQE (`vq.eval.metrics.niqe`, its pristine
model fitted on the train split's pristine clips), the variance of the Laplacian (the
classic no-reference sharpness measure) and any other quality models named with
``--compare`` (say the model trained without QPT, or an ablation).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import UsageError
from vq.eval.base import Evaluator, Report, Table, Ui, backend_option, model_option, precision_option
from vq.stages.quality import DEFAULT_VIEWS

JND = 6.0  # VMAF points to one just-noticeable difference (the usual rule of thumb)
VMAF_ROW = "VMAF (full reference: the label)"
# VMAF without enhancement gain, beside it: a second full-reference judge that does not
# credit over-sharpening, and the label of `vq train kvq --chain-label vmaf_neg`.
NEG_ROW = "VMAF NEG"
WORST_SOURCES = 8  # rows of the table of sources placed furthest off


@dataclass
class QualityOptions:
    sources: list[Path] = field(
        metadata={"help": "Source videos / image folders (the held-out side is used).", "required": True}
    )
    work: Path = field(
        metadata={"help": "Folder for the bench (clips and VMAF labels, cached).", "required": True}
    )
    model: str | None = model_option()
    backend: str = backend_option()
    precision: str = precision_option()
    compare: list[str] = field(
        default_factory=list, metadata={"help": "More quality models scored beside it (repeatable)."}
    )
    views: list[int] = field(
        default_factory=lambda: [DEFAULT_VIEWS],
        metadata={"help": "Fragment placements averaged per clip (repeatable: each model at each)."},
    )
    holdout: float = field(default=0.25, metadata={"help": "Held-out share (as in training)."})
    chains: int = field(default=3, metadata={"help": "Degradation chains per source."})
    seed: int = field(default=0, metadata={"help": "Seed of the chains (as in training)."})
    split: str = field(default="holdout", metadata={"help": "holdout (default) or all sources."})
    rungs: int = field(
        default=3, metadata={"help": "CRFs per height in the ladder-rung bench (0: no rung bench)."}
    )
    rung_post: list[str] = field(
        default_factory=lambda: ["sharpen"],
        metadata={"help": "Client post-processing also applied to every rung: sharpen, or none."},
    )
    niqe: bool = field(
        default=True,
        metadata={"help": "Run NIQE beside it (its pristine model is fitted on the train split's clips)."},
    )


def laplacian_variance(clip: np.ndarray) -> float:
    """Mean over frames of the variance of the 4-neighbour Laplacian of luma."""
    y = clip.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
    lap = 4 * y[:, 1:-1, 1:-1] - y[:, :-2, 1:-1] - y[:, 2:, 1:-1] - y[:, 1:-1, :-2] - y[:, 1:-1, 2:]
    return float(lap.reshape(len(y), -1).var(axis=1).mean())


def run(opts: QualityOptions, ui: Ui) -> Report:
    from vq.eval.metrics.correlation import (
        between_group_share,
        krocc,
        kvq_score,
        mapped_offsets,
        mapped_onto,
        mapped_spread,
        offset_free_srocc,
        plcc,
        srocc,
        within_group_srocc,
    )
    from vq.stages.quality import QualityScorer
    from vq.synth.degrade import RUNG_HEIGHTS
    from vq.synth.quality_data import (
        RUNG_CRFS,
        add_labels,
        build_quality_set,
        build_rungs,
        built_windows,
        chain_rank_accuracy,
        client_post_accuracy,
        labelled_by,
        load_quality_set,
        middle_window,
        post_processed,
        rung_order_tau,
        step_accuracy_by_stage,
        step_cost_by_stage,
    )

    if not 0 <= opts.rungs <= len(RUNG_CRFS):
        raise UsageError(f"--rungs must be 0 to {len(RUNG_CRFS)}")
    if opts.split not in ("holdout", "all"):
        raise UsageError(f"--split must be holdout or all, got {opts.split!r}")
    splits = ("holdout",) if opts.split == "holdout" else ("train", "holdout")
    # NIQE's pristine model needs the train split's pristine clips: build both then.
    every = build_quality_set(
        opts.sources,
        opts.work,
        holdout=opts.holdout,
        chains=opts.chains,
        seed=opts.seed,
        splits=("train", "holdout") if opts.niqe else splits,
        windows=built_windows(opts.work),
        ui=ui,
    )
    rows = [r for r in every if r.split in splits]
    if not rows:
        raise UsageError("no clips in the bench (no held-out sources among --sources?)")
    for split in splits:  # cached in the bench after the first run: one libvmaf pass a clip
        add_labels(opts.work, split, ["vmaf_neg"], ui)
    neg_of = {r.id: r.vmaf_neg for split in splits for r in load_quality_set(opts.work, split)}
    rung_post = [m for m in dict.fromkeys(opts.rung_post) if m != "none"]
    rungs = [
        r
        for split in (("holdout",) if opts.rungs else ())  # held out whatever --split says
        for r in build_rungs(opts.work, opts.rungs, opts.seed, split, ui=ui, client_post=rung_post)
    ]
    plain = [i for i, r in enumerate(rungs) if not post_processed(r)]
    # The phone's sharpening judged without enhancement gain (`labelled_by`): the order the
    # device-cloud decision has to get right, where plain VMAF credits the filter itself.
    neg_rungs = labelled_by(rungs, "vmaf_neg") if len(plain) < len(rungs) else []
    vmaf = np.asarray([r.vmaf for r in rows])
    methods: dict[str, np.ndarray] = {}
    rung_methods: dict[str, np.ndarray] = {}
    described: dict[str, Any] = {}

    def scored(scorer: Any, clips: list, what: str) -> np.ndarray:
        scores: list[float] = []
        batches = [clips[i : i + scorer.batch] for i in range(0, len(clips), scorer.batch)]
        for batch in ui.track(
            batches, len(batches), f"scoring {what} with {scorer.name} ({scorer.views} views)"
        ):
            windows = [middle_window(_load(opts.work, r), scorer.frames) for r in batch]
            scores.extend(scorer.score_windows(windows)[0])
        return np.asarray(scores)

    for name in [opts.model, *opts.compare]:
        for views in opts.views:
            with QualityScorer(name, backend=opts.backend, precision=opts.precision, views=views) as scorer:
                scores = scored(scorer, rows, "clips")
                # A model given by path is named by its card and its path: two versions of
                # one model (a new export beside the shipped one) must read apart.
                label = scorer.name if name in (None, scorer.name) else f"{scorer.name} ({name})"
                label = label if len(opts.views) == 1 else f"{label} ({views} views)"
                label = label if label not in methods else f"{label}#{len(methods)}"
                methods[label] = scores
                described[label] = {**scorer.describe(), "views": views}
                if rungs:
                    rung_methods[label] = scored(scorer, rungs, "ladder rungs")
    if opts.niqe:
        from vq.eval.metrics.niqe import fit_pristine, niqe

        pristine = [r for r in every if r.split == "train" and r.level == 0]
        try:
            model = fit_pristine([f for r in pristine for f in _every_fourth(_load(opts.work, r))])
        except UsageError as e:  # a tiny bench: say so, and report the rest
            ui.note(f"NIQE left out: {e}", warn=True)
        else:
            ui.note(f"NIQE pristine model: {model.patches} patches from {len(pristine)} train-split clips")
            niqe_scores = [
                np.mean([niqe(frame, model) for frame in _every_fourth(_load(opts.work, r))])
                for r in ui.track(rows, len(rows), "NIQE")
            ]
            methods["NIQE (negated)"] = -np.asarray(niqe_scores)  # lower NIQE is better
    methods["laplacian variance"] = np.asarray(
        [laplacian_variance(_load(opts.work, r)) for r in ui.track(rows, len(rows), "laplacian")]
    )
    methods[VMAF_ROW] = vmaf
    methods[NEG_ROW] = np.asarray([neg_of[r.id] for r in rows])
    if rungs:
        rung_methods["laplacian variance"] = np.asarray(
            [laplacian_variance(_load(opts.work, r)) for r in rungs]
        )
        rung_methods[VMAF_ROW] = np.asarray([r.vmaf for r in rungs])
        if neg_rungs:
            rung_methods[NEG_ROW] = np.asarray([r.vmaf for r in neg_rungs])
    rung_rows = [
        {
            "method": m,
            "rungs": len(plain),
            "rung_tau": rung_order_tau(pred[plain], [rungs[i] for i in plain]),
            "srocc": _or_none(_or_nan(srocc, pred[plain], [rungs[i].vmaf for i in plain])),
            **(
                {
                    "post_rungs": len(rungs) - len(plain),
                    "rung_tau_post": rung_order_tau(pred, rungs),
                    "post_acc": client_post_accuracy(pred, rungs),
                    "rung_tau_post_neg": rung_order_tau(pred, neg_rungs),
                    "post_acc_neg": client_post_accuracy(pred, neg_rungs),
                }
                if len(plain) < len(rungs)
                else {}
            ),
        }
        for m, pred in rung_methods.items()
    ]

    def summary(pred: np.ndarray, subset: list[int]) -> dict[str, float]:
        p, v = pred[subset], vmaf[subset]
        out: dict[str, float] = {"clips": len(subset)}
        for name, fn in (("srocc", srocc), ("krocc", krocc), ("plcc", plcc)):
            out[name] = _or_nan(fn, p, v)
        out["rank_acc"] = _or_nan(chain_rank_accuracy, p, [rows[i] for i in subset])
        out["rank_acc_jnd"] = _or_nan(chain_rank_accuracy, p, [rows[i] for i in subset], JND)
        out["kvq"] = kvq_score(out["srocc"], out["plcc"], out["rank_acc"])
        out["srocc_within"] = _or_nan(within_group_srocc, p, v, [rows[i].source for i in subset])
        # What curing that bias alone could reach: each source put at its own level.
        out["srocc_offset_free"] = _or_nan(offset_free_srocc, p, v, [rows[i].source for i in subset])
        # Content bias: a no-reference score varies between sources that VMAF rates alike
        # (every pristine clip is about 98); the label's own row gives the share to match.
        out["between_share"] = _or_nan(between_group_share, p, [rows[i].source for i in subset])
        # The same bias in VMAF points: how far apart the clean clips are put.
        clean = [k for k, i in enumerate(subset) if rows[i].level == 0]
        out["clean_spread"] = _or_nan(mapped_spread, p, v, clean)
        return out

    everything = list(range(len(rows)))
    overall = [{"method": m, **summary(pred, everything)} for m, pred in methods.items()]
    # Per kind: the chains that contain the kind (their pristine clips included).
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        kinds = {s["kind"] for s in r.stages}
        for k in kinds:
            by_kind[k].append(i)
    pristine = [i for i, r in enumerate(rows) if r.level == 0]
    per_kind = []
    for kind in sorted(by_kind):
        subset = sorted(set(by_kind[kind]) | set(pristine_of(rows, by_kind[kind], pristine)))
        for m, pred in methods.items():
            per_kind.append({"kind": kind, "method": m, **summary(pred, subset)})
    # Without each kind: the clips whose chain lacks it (every pristine clip stays). A kind
    # whose removal lifts a score most is damage it cannot read; for a no-reference score,
    # often damage that exists only against the reference (a tone grade, a sharpening).
    without_kind = []
    for kind in sorted(by_kind):
        holding = set(by_kind[kind])
        subset = [i for i in everything if i not in holding]
        for m, pred in methods.items():
            without_kind.append({"kind": kind, "method": m, **summary(pred, subset)})
    columns = [
        ("srocc", "SROCC"),
        ("krocc", "KROCC"),
        ("plcc", "PLCC"),
        ("rank_acc", "in-chain rank acc"),
        ("rank_acc_jnd", f"rank acc, pairs >= {JND:g} VMAF apart"),
        ("kvq", "KVQ score"),
        ("srocc_within", "SROCC within a source"),
        ("srocc_offset_free", "SROCC, each source at its own level"),
        ("between_share", "variance between sources"),
        ("clean_spread", "clean clips' spread (VMAF pts)"),
    ]
    # A narrow table for the kinds left out: the figures that say which damage a score misses.
    narrow = {"srocc", "rank_acc", "srocc_within", "srocc_offset_free"}
    left_out_columns = [c for c in columns if c[0] in narrow]
    # What each kind costs by VMAF, and what a score reads of it once mapped onto VMAF.
    vmaf_cost = step_cost_by_stage(vmaf, rows)
    read_cost = {
        m: step_cost_by_stage(mapped_onto(pred, vmaf), rows) if len(rows) >= 5 else {}
        for m, pred in methods.items()
    }
    by_stage = [
        {
            "kind": kind,
            "method": m,
            "steps": n,
            "step_acc": acc,
            "vmaf_cost": vmaf_cost[kind],
            "read_cost": read_cost[m].get(kind, float("nan")),
        }
        for m, pred in methods.items()
        for kind, (n, acc) in step_accuracy_by_stage(pred, rows).items()
    ]
    # Content bias by name: each source's mean offset from VMAF once mapped onto it, and the
    # sources the first model places furthest off (what the next training data should cover).
    sources = [r.source for r in rows]
    offsets = {
        m: mapped_offsets(pred, vmaf, sources)
        for m, pred in methods.items()
        if m != VMAF_ROW and len(rows) >= 5  # the mapping's four parameters need five clips
    }
    first = next(iter(offsets.values()), {})
    furthest = sorted(first, key=lambda s: -abs(first[s]))[:WORST_SOURCES]
    offset_keys = {m: f"m{k}" for k, m in enumerate(offsets)}
    offset_rows = [{"source": s, **{offset_keys[m]: offsets[m][s] for m in offsets}} for s in furthest]
    between = _or_nan(between_group_share, vmaf, sources)
    if np.isfinite(between):
        ui.note(
            f"{between:.0%} of VMAF's variance lies between sources; SROCC within a source is what a "
            "no-reference score reaches where each source's own level is given"
        )
    return Report(
        tables=[
            Table(
                f"quality vs VMAF on {len(rows)} held-out clips ({len({r.source for r in rows})} sources)",
                [("method", "method"), ("clips", "clips"), *columns],
                overall,
            ),
            Table(
                "per degradation kind (chains containing it)",
                [("kind", "kind"), ("method", "method"), ("clips", "clips"), *columns],
                per_kind,
            ),
            Table(
                "per degradation kind left out (chains without it; every column in the JSON)",
                [
                    ("kind", "kind"),
                    ("method", "method"),
                    ("clips", "clips"),
                    *left_out_columns,
                ],
                without_kind,
            ),
            Table(
                "in-chain steps by the stage they add (share scored worse than the level before; "
                "median fall in VMAF points, by VMAF and by the score mapped onto VMAF)",
                [
                    ("kind", "stage"),
                    ("method", "method"),
                    ("steps", "steps"),
                    ("step_acc", "step accuracy"),
                    ("vmaf_cost", "VMAF cost"),
                    ("read_cost", "cost read"),
                ],
                by_stage,
            ),
            Table(
                "sources placed furthest from VMAF: the mean offset of a source's clips once the "
                "score is mapped onto VMAF (VMAF points; negative: scored too low)",
                [("source", "source"), *((offset_keys[m], m) for m in offsets)],
                offset_rows,
            ),
            *(
                [
                    Table(
                        f"ladder rungs ({len(RUNG_HEIGHTS)} heights x {opts.rungs} CRFs of "
                        f"{len({r.source for r in rungs})} sources): Kendall tau vs VMAF per source"
                        + (
                            f"; with the client's {'/'.join(rung_post)} on each rung too, and "
                            "the share of rungs whose post-processing it scores up or down as VMAF does; "
                            "both again against VMAF NEG"
                            if len(plain) < len(rungs)
                            else ""
                        ),
                        [
                            ("method", "method"),
                            ("rungs", "rungs"),
                            ("rung_tau", "rung tau"),
                            ("srocc", "SROCC"),
                            *(
                                [
                                    ("rung_tau_post", "tau with post"),
                                    ("post_acc", "post direction"),
                                    ("rung_tau_post_neg", "tau with post (NEG)"),
                                    ("post_acc_neg", "post direction (NEG)"),
                                ]
                                if len(plain) < len(rungs)
                                else []
                            ),
                        ],
                        rung_rows,
                    )
                ]
                if rungs
                else []
            ),
        ],
        data={
            "overall": overall,
            "per_kind": per_kind,
            "without_kind": without_kind,
            "by_stage": by_stage,
            "rungs": rung_rows,
            "vmaf_between_source_share": between,
            "source_offsets": offsets,
            "models": described,
            "clips": [r.to_json() for r in rows],
            "scores": {m: p.tolist() for m, p in methods.items()},
            "rung_clips": [r.to_json() for r in rungs],
            "rung_scores": {m: p.tolist() for m, p in rung_methods.items()},
        },
    )


def _load(work: Path, row) -> np.ndarray:
    from vq.synth.clip_files import load_clip

    return load_clip(work / row.file, mmap=True)


def _every_fourth(clip: np.ndarray) -> list[np.ndarray]:
    """Four frames spread over a clip (NIQE is a picture measure)."""
    return [np.asarray(clip[i]) for i in np.linspace(0, len(clip) - 1, 4).round().astype(int)]


def _or_nan(fn, *args) -> float:
    """A statistic, or NaN where the subset is too small for it (two clips, one level)."""
    try:
        return float(fn(*args))
    except UsageError:
        return float("nan")


def _or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


def pristine_of(rows: list, subset: list[int], pristine: list[int]) -> list[int]:
    sources = {rows[i].source for i in subset}
    return [i for i in pristine if rows[i].source in sources]


EVALUATOR = Evaluator(
    summary="no-reference quality vs VMAF and chain order on held-out sources (SROCC, PLCC, KVQ score)",
    options=QualityOptions,
    run=run,
)
