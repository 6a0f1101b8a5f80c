"""Configuration of the quality task (KVQ).

The shipped `vq-kvq` is two runs (its card has the exact commands, data and held-out
figures): these defaults at full schedule, then 1000 steps of fine-tuning with ladder
groups::

    vq train kvq --data ../shared/data/videos/chaplin.mp4 ... --data ../shared/data/images/photos \\
        --chains 8 --windows 3 --set-dir runs/quality-set8w3 --out runs/kvq-x/chainrank3k \\
        --steps 3000 --set model_kwargs.align=16
    vq train kvq --set-dir runs/quality-set8w3 --out runs/kvq-x/ladder-ft1k --steps 1000 \\
        --set model_kwargs.align=16 --init runs/kvq-x/chainrank3k --ladder-groups 1 \\
        --source-rank-weight 4 --learning-rate 3e-4 --warmup-steps 50 --eval-every 500

``--init`` also takes a model (``--init vq-kvq``: its card carries the Flax params), so
the shipped model can be tuned further without the runs that made it; the workdir then
records every command of the chain (``data.init_commands``). ``--ladder-post sharpen``
(the phone's sharpening on every rung in the ladder groups) measured no better than
plain ladder groups (BENCHMARKS.md) and is off; so did ordering those groups by VMAF
NEG instead of VMAF (``--ladder-label vmaf_neg``, which does not credit the
sharpening itself). Labelling the chains by NEG (``--chain-label vmaf_neg``), or by
VMAF with NEG's change on the sharpening steps (``vmaf_neg_sharpen``), sees sharpening as
damage but costs SROCC against VMAF; VMAF less the rise an enhancing stage gave it
(``vmaf_no_gain``) changes nothing measurable; all three are off. So is
``--set cost_weight=W`` (the score differences inside a batch group against the label's):
within the noise at weights 2 and 8.

``--set chain_rank_weight=0`` gives the recipe of the model before those (in-chain pairs
only inside the pooled rank loss). ``source_rank_weight`` alone (no ladder groups: only
the fillers of other chains) moved held-out SROCC by +0.005 at weight 2 and did not
change how the model orders an encoding ladder's rungs; with ladder groups it does
(BENCHMARKS.md).

The first run builds the label-free set under ``--set-dir`` (`vq.synth.quality_data`:
pristine clips, degradation chains, VMAF pseudo-MOS; about 3 s per source on 2 cores,
cached, resumable); held-out sources are never read by training. ``--train-data`` adds
sources that only ever train (`scripts/gather_sources.py` gathers ``runs/sources/train/extra``)
without moving the split of the ``--data`` sources. ``--smoke`` is the
seconds-long variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vq.train.config import TrainConfig

# A seconds-long KVQ (smoke runs of kvq and qpt: a QPT backbone must fit the fine-tuning run).
SMOKE_MODEL = {"frames": 4, "short_frames": 2, "size": 64, "dim": 16, "depth": 1, "heads": 2, "keyframes": 2}


@dataclass
class KvqConfig(TrainConfig):
    data: list[str] = field(
        default_factory=list,
        metadata={"help": "Source videos / image folders for the label-free set (repeatable)."},
    )
    train_data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "More sources that only ever train (repeatable): the --data split, and "
            "so the held-out sources, stay as they are."
        },
    )
    set_dir: str = field(
        default="runs/quality-set", metadata={"help": "Where the degraded clips and labels are cached."}
    )
    holdout: float = field(default=0.25, metadata={"help": "Share of whole sources held out (per kind)."})
    chains: int = field(default=8, metadata={"help": "Degradation chains per source."})
    windows: int = field(
        default=1,
        metadata={
            "help": "Clips per training source (other moments of a video, other camera moves "
            "over a photo); held-out sources keep one."
        },
    )
    flips: bool = field(
        default=True, metadata={"help": "Train on random flips and quarter turns of the fragments."}
    )
    pretrained: str | None = field(
        default=None, metadata={"help": "A QPT workdir (vq train qpt) whose backbone initialises the model."}
    )
    probe: bool = field(
        default=False, metadata={"help": "Train the score head only (a linear probe of the backbone)."}
    )
    plcc_weight: float = field(default=1.0, metadata={"help": "Weight of the 1 - PLCC batch loss."})
    rank_weight: float = field(default=1.0, metadata={"help": "Weight of the pairwise rank loss."})
    chain_rank_weight: float = field(
        default=4.0,
        metadata={
            "help": "Weight of a rank loss over in-chain pairs alone (their order is exact by "
            "construction; in the pooled rank loss they are outnumbered by cross-source VMAF pairs)."
        },
    )
    source_rank_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of a rank loss by VMAF over clips of one source from different chains "
            "(same pixels, different damage: the trade between rescaling and compression)."
        },
    )
    cost_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of an L1 loss on the score differences between clips of one batch group "
            "(one source, the same pixels) against their label differences: what each damage costs, "
            "free of the source's own level, which a no-reference score can only guess."
        },
    )
    feature_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of an auxiliary L1 loss predicting VMAF's elementary features (ADM, "
            "VIF at 4 scales) of each training clip from the pooled features (recorded in the set; "
            "a set built before they were is filled in first, one libvmaf pass per clip)."
        },
    )
    ladder_groups: int = field(
        default=0,
        metadata={
            "help": "Batch groups (of batch_size/4) drawn from encoding-ladder rungs of one source "
            "(3 heights x 3 CRFs, built beside the set), ordered by VMAF with source_rank_weight."
        },
    )
    ladder_post: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Client post-processing (sharpen) also applied to every rung for the ladder "
            "groups: the phone's sharpened rung against the next rung up, ordered by VMAF."
        },
    )
    chain_label: str = field(
        default="vmaf",
        metadata={
            "help": "What labels the degradation chains' clips for the regression and across-chain "
            "losses: vmaf; vmaf_neg (VMAF without enhancement gain, which does not credit "
            "over-sharpening; filled in on a set built without it); vmaf_no_gain (VMAF with "
            "the rise a sharpening or colour stage gave it taken back along its chain); or "
            "vmaf_neg_sharpen (VMAF, but each sharpening step moves the label by NEG's change, "
            "carried down the chain). In-chain order stays the chain's own. In-training "
            "held-out figures stay against VMAF."
        },
    )
    ladder_label: str = field(
        default="vmaf",
        metadata={
            "help": "What orders and labels the ladder groups' rungs: vmaf, or vmaf_neg (VMAF "
            "without enhancement gain, which does not credit the phone's sharpening). In-training "
            "held-out rung tau stays against VMAF."
        },
    )
    init: str | None = field(
        default=None,
        metadata={
            "help": "Starting weights (fine-tuning): a vq train kvq workdir (its latest "
            "checkpoint) or a kvq model (a zoo name such as vq-kvq, or an artifact folder)."
        },
    )
    margin: float = field(default=0.05, metadata={"help": "Rank-loss margin on the 1-5 scale."})
    model_kwargs: dict = field(
        default_factory=dict,
        metadata={"help": "kvq options (--set model_kwargs.branches=long, model_kwargs.keyframes=16)."},
    )


def get_config(smoke: bool = False) -> KvqConfig:
    config = KvqConfig(
        steps=3000,  # ~50 min on 2 CPU cores
        batch_size=16,  # 4 chains x (pristine + 3 levels): every batch has in-chain pairs
        learning_rate=1e-3,
        warmup_steps=100,
        weight_decay=0.05,
        log_every=25,
        eval_every=1000,
        checkpoint_every=250,
    )
    if smoke:
        config.steps, config.batch_size, config.log_every, config.checkpoint_every = 3, 4, 1, 2
        config.warmup_steps, config.eval_every, config.chains = 1, 0, 1
        config.model_kwargs = dict(SMOKE_MODEL)
    return config
