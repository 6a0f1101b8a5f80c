"""The quality task: KVQ trained on label-free degradation chains.

Data: `vq.synth.quality_data` builds (once, cached) pristine clips, their degraded levels
and VMAF pseudo-MOS; training reads the train split only. A batch is whole chains: four
chains of four clips (the pristine clip and its levels; short chains are filled with
levels of another chain of the same source), every clip of a chain cut at the same time
and the same fragment positions, so the only difference inside a group is the
degradation. Each group is also shown in one of the 8 flips and quarter turns
(`dihedral`, ``--flips``): quality does not depend on which way a picture faces. With
``--windows K`` every training source gives K clips (other moments of a video, other
camera moves over a photo), each with its own chains; the held-out bench stays one clip
per source. Models trained with ``model_kwargs.align=16`` cut fragments on the codec's
block grid (`vq.preprocess.fragments`), and their card tells the runtime to do the same.

Loss: L1 to the pseudo-MOS (the 1-5 scale), 1 - PLCC over the batch, a margin rank
loss over pairs whose order is known, both the in-chain order (level k+1 is worse than
level k: exact, by construction) and the VMAF order across groups (pairs more than 0.2
MOS apart), the same hinge over the in-chain pairs alone, and over a group's clips from
different chains of its source by VMAF (`rank_losses`). With ``cost_weight``, an L1 on
the score differences inside a group against the label's (`cost_l1`). With ``feature_weight`` an
auxiliary head also predicts VMAF's elementary features of each clip (ADM and VIF at four
scales: which detail was lost, where the label says only how much), L1 (`masked_l1`).
In-training evaluation scores the held-out sources (SROCC / PLCC vs VMAF, in-chain rank
accuracy) with centred fragments, as the runtime does; the figures are logged, never used
to pick a checkpoint or a setting (the last step is what is exported).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vq.errors import UsageError
from vq.eval.metrics.vmaf import VMAF_FEATURES
from vq.preprocess.fragments import cut_settings, dihedral, fragments
from vq.preprocess.normalize import to_model_input
from vq.synth.clip_files import COMPRESSED, load_clip
from vq.synth.quality_data import (
    CHAIN_LABELS,
    Version,
    add_labels,
    build_quality_set,
    build_rungs,
    chain_labelled_by,
    chain_rank_accuracy,
    chains_of,
    client_stage,
    labelled_by,
    load_quality_set,
    load_rungs,
    middle_window,
    rung_order_tau,
    source_of,
    step_accuracy_by_stage,
)
from vq.train import starting_points
from vq.train.kvq.config import KvqConfig
from vq.train.models import create_model, model_def, model_io
from vq.train.models.kvq import SHOWN_ONLY, ZERO_STARTED

GROUP = 4  # clips per chain in a batch
TRAIN_FIT_SOURCES = 30  # training windows scored beside the held-out set


class KvqTask:
    name = "kvq"

    def __init__(self, config: KvqConfig):
        self.model_name = "kvq_probe" if config.probe else "kvq"
        self.pretrained, self.init = config.pretrained, config.init
        if self.pretrained and self.init:
            raise UsageError(
                "--set pretrained (a QPT backbone) and --set init (a KVQ run) exclude each other"
            )
        if config.train_data and not config.data:
            raise UsageError("--train-data adds to a set built from --data; give the --data sources too")
        if not config.data and not (Path(config.set_dir) / "labels").is_dir():
            raise UsageError("vq train kvq needs --data (videos, image folders) or a built --set-dir")
        if config.batch_size % GROUP:
            raise UsageError(f"batch_size must be a multiple of {GROUP} (whole chains per batch)")
        # Cheap checks before the set and its rungs are built (minutes of encoding and VMAF).
        if config.ladder_post and not config.ladder_groups:
            raise UsageError("--ladder-post needs --ladder-groups (it only changes the ladder groups)")
        for mode in config.ladder_post:
            client_stage(mode)
        labelled_by([], config.ladder_label)  # a bad name fails now, not after the build
        chain_labelled_by([], config.chain_label)
        if config.ladder_label != "vmaf" and not config.ladder_groups:
            raise UsageError("--ladder-label needs --ladder-groups (it only relabels the ladder groups)")
        self.started_from = started_from = starting_point(self.init) if self.init else {}
        self.seed, self.rank_weight, self.margin = config.seed, config.rank_weight, config.margin
        self.plcc_weight, self.chain_rank_weight = config.plcc_weight, config.chain_rank_weight
        self.source_rank_weight, self.cost_weight = config.source_rank_weight, config.cost_weight
        self.feature_weight = config.feature_weight
        if self.feature_weight and config.probe:
            raise UsageError(
                "--set feature_weight and --set probe exclude each other "
                "(a linear probe trains the score head only)"
            )
        self.model_kwargs: dict[str, Any] = dict(config.model_kwargs)
        if self.feature_weight:  # the auxiliary head the feature loss trains
            self.model_kwargs["feature_outputs"] = len(VMAF_FEATURES)
        kwargs = model_def(self.model_name).kwargs(**self.model_kwargs)
        io = model_io(self.model_name, **self.model_kwargs)
        prep = io.preprocessing
        self.frames, self.cut = kwargs["frames"], cut_settings(prep)
        self.flips = config.flips
        self.preprocessing = prep
        if config.data:
            from vq.progress import TerminalUi

            build_quality_set(
                config.data,
                config.set_dir,
                holdout=config.holdout,
                chains=config.chains,
                seed=config.seed,
                windows=config.windows,
                train_only=config.train_data,
                ui=TerminalUi(),
            )
        self.set_dir = Path(config.set_dir)
        # Labels a set built before they were recorded lacks: filled in first (one libvmaf
        # pass per clip), so the build command stays the one in the card.
        missing = [*(["features"] if self.feature_weight else []), *CHAIN_LABELS[config.chain_label]]
        if missing:
            from vq.progress import TerminalUi

            add_labels(self.set_dir, "train", missing, TerminalUi())
        # Held-out figures in training stay against VMAF (the bench's label) whatever orders training.
        self.train_rows = chain_labelled_by(load_quality_set(self.set_dir, "train"), config.chain_label)
        self.chains = chains_of(self.train_rows)
        if not self.chains:
            raise UsageError(f"{self.set_dir}: no degradation chains in the train split")
        try:
            self.eval_rows = load_quality_set(self.set_dir, "holdout")
        except UsageError:
            self.eval_rows = []
        train_names = {source_of(r.source) for r in self.train_rows}
        holdout_names = {r.source for r in self.eval_rows}
        # Held-out figures mean nothing for a source the starting weights trained on.
        start_trained = trained_by(started_from) if self.init else set()
        seen = sorted(holdout_names & (start_trained or set()))
        if seen:
            raise UsageError(
                f"--init {self.init} trained on {len(seen)} of this set's held-out sources "
                f"({', '.join(seen[:3])})"
            )
        if self.init and start_trained is None:
            print(
                f"warning: --init {self.init}: its training sources are not on disk from here, "
                "so they could not be checked against this set's held-out sources",
                file=sys.stderr,
            )
        self.fit_rows = train_fit_rows(self.train_rows)
        self.ladder_groups = config.ladder_groups
        # At least one group stays a chain: in-chain pairs are the exact labels.
        if not 0 <= self.ladder_groups < config.batch_size // GROUP:
            raise UsageError(
                f"ladder_groups must be 0 to {config.batch_size // GROUP - 1} (groups per batch - 1)"
            )
        self.rungs: dict[str, list[Version]] = {}
        if self.ladder_groups:
            from vq.progress import TerminalUi

            for split in ("train", "holdout"):  # held-out rungs for in-training evaluation
                build_rungs(
                    self.set_dir,
                    seed=config.seed,
                    split=split,
                    ui=TerminalUi(),
                    client_post=config.ladder_post if split == "train" else (),
                )
            train_rungs = load_rungs(self.set_dir, "train", client_post=config.ladder_post)
            for row in labelled_by(train_rungs, config.ladder_label):
                self.rungs.setdefault(row.source, []).append(row)
            if not self.rungs:
                raise UsageError(f"{self.set_dir}: no ladder rungs of training sources for --ladder-groups")
        # Held-out rungs are scored whenever the set has them (any run, ladder groups or not).
        self.eval_rungs = load_rungs(self.set_dir, "holdout")
        self._clips: dict[str, np.ndarray] = {}
        self._decoded = functools.lru_cache(maxsize=2 * GROUP)(load_clip)
        same_sources = bool(self.init) and self._same_split(
            started_from, train_names, holdout_names, start_trained
        )
        self.data_facts = {
            # A fine-tune on the set its starting run built (or one built from the same
            # sources, split the same way) trained on that run's inputs.
            "train": list(config.data) or (started_from["data"].get("train", []) if same_sources else []),
            **({"train_only": list(config.train_data)} if config.train_data else {}),
            "set_dir": str(self.set_dir),
            "train_sources": len(train_names),
            "train_windows": len({r.source for r in self.train_rows}),
            "train_clips": len(self.train_rows),
            "holdout_sources": len({r.source for r in self.eval_rows}),
            "holdout_clips": len(self.eval_rows),
            "train_rungs": sum(map(len, self.rungs.values())),
            "chain_label": config.chain_label,
            **({"ladder_label": config.ladder_label} if self.ladder_groups else {}),
            # A fine-tuned model is reproduced by the commands it started from, in order, then its own.
            **({"init_commands": init_commands(started_from)} if self.init else {}),
            **({"init_model": started_from["model_files"]} if "model_files" in started_from else {}),
            # Everything else under --data trained; these sources never did.
            "holdout_source_names": sorted(holdout_names),
            # Every source the weights have seen, over the whole fine-tune chain: what the
            # next fine-tune's held-out check reads.
            "trained_source_names": sorted(train_names | (start_trained or set())),
        }

    def _same_split(
        self,
        recorded: dict[str, Any],
        train_names: set[str],
        holdout_names: set[str],
        trained: set[str] | None,
    ) -> bool:
        """Whether this set is the starting run's, or one built from the same sources and
        split the same way (the split is a hash of each source's name): the same held-out
        sources, and training sources the start trained on."""
        data = recorded.get("data", {})
        theirs = data.get("set_dir")
        if theirs is not None and Path(theirs).resolve() == self.set_dir.resolve():
            return True
        held_out = data.get("holdout_source_names")
        return (
            bool(held_out)
            and set(held_out) == holdout_names
            and trained is not None
            and train_names <= trained
        )

    # -- data ---------------------------------------------------------------------------------

    def clip(self, row: Version) -> np.ndarray:
        path = self.set_dir / row.file
        if path.suffix == COMPRESSED:  # a rung: decoded whole; a group's few are kept
            return self._decoded(path)
        if row.file not in self._clips:  # memory-mapped: fragments touch a few pixels
            self._clips[row.file] = load_clip(path, mmap=True)
        return self._clips[row.file]

    def fragment_clip(self, row: Version, start: int, rng: np.random.Generator | None) -> np.ndarray:
        window = self.clip(row)[start : start + self.frames]
        return fragments(np.asarray(window), rng=rng, **self.cut)

    def normalise(self, x: np.ndarray) -> np.ndarray:
        return to_model_input(x, self.preprocessing)

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        clips, mos, level, group, features = [], [], [], [], []
        for g in sorted({r // GROUP for r in rows}):
            rng = np.random.default_rng([self.seed, step, g])
            members = pick_rungs(self.rungs, rng) if g < self.ladder_groups else pick_group(self.chains, rng)
            position_seed = int(rng.integers(2**31))
            length = len(self.clip(members[0][0]))
            start = int(rng.integers(0, max(1, length - self.frames + 1)))
            turn = int(rng.integers(8)) if self.flips else 0
            for i, (row, in_chain) in enumerate(members):
                if g * GROUP + i not in rows:
                    continue
                # One position draw per group: the same pixels of every version.
                frag = self.fragment_clip(row, start, np.random.default_rng(position_seed))
                clips.append(dihedral(frag, turn))
                mos.append(row.mos)
                level.append(row.level if in_chain else -1)
                group.append(g)
                features.append(feature_target(row))
        return {
            "clip": self.normalise(np.stack(clips)),
            "mos": np.asarray(mos, np.float32),
            "level": np.asarray(level, np.int32),
            "group": np.asarray(group, np.int32),
            "features": np.stack(features),
        }

    # -- model and loss -----------------------------------------------------------------------

    def create_model(self, seed: int) -> nnx.Module:
        model = create_model(self.model_name, seed=seed, **self.model_kwargs)
        if self.pretrained:
            backbone = pretrained_backbone(self.pretrained, self.model_kwargs)
            nnx.update(model, nnx.state(backbone, nnx.Not(nnx.PathContains("feature_head"))))
        if self.init:
            start = trained_kvq(self.init, self.model_kwargs, self.started_from)
            # The feature head too where both have one of a size; else it starts afresh.
            heads = (start.feature_head, model.feature_head)
            same_head = None not in heads and heads[0].kernel.shape == heads[1].kernel.shape
            keep = nnx.Everything() if same_head else nnx.Not(nnx.PathContains("feature_head"))
            nnx.update(model, nnx.state(start, keep))
        return model

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        del rng
        score, _, predicted = model.score_and_features(batch["clip"])
        mos = batch["mos"]
        l1 = jnp.mean(jnp.abs(score - mos))
        rank, chain_rank, source_rank, right = rank_losses(
            score, mos, batch["level"], batch["group"], self.margin
        )
        # 1 - PLCC: scale-free, so predictions cannot sit near the batch mean and pay
        # only the L1 (FAST-VQA and DOVER train with it for the same reason).
        sc, mc = score - score.mean(), mos - mos.mean()
        plcc = jnp.sum(sc * mc) / (jnp.sqrt(jnp.sum(sc**2) * jnp.sum(mc**2)) + 1e-6)
        total = l1 + self.plcc_weight * (1.0 - plcc) + self.rank_weight * rank
        total = total + self.chain_rank_weight * chain_rank + self.source_rank_weight * source_rank
        metrics = {"l1": l1, "rank": rank, "chain_rank": chain_rank, "source_rank": source_rank}
        if self.cost_weight:
            metrics["cost_l1"] = cost = cost_l1(score, mos, batch["group"])
            total = total + self.cost_weight * cost
        if predicted is not None:
            metrics["feature_l1"] = feature_l1 = masked_l1(predicted, batch["features"])
            total = total + self.feature_weight * feature_l1
        return total, {**metrics, "plcc": plcc, "chain_acc": right}

    # -- evaluation ---------------------------------------------------------------------------

    def predict(self, model: nnx.Module, rows: list[Version], batch: int = 16) -> np.ndarray:
        graphdef, state = nnx.split(model)
        apply = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)[0])
        out = []
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            x = np.stack([fragments(middle_window(self.clip(r), self.frames), **self.cut) for r in chunk])
            out.append(np.asarray(apply(state, self.normalise(x))))
        return np.concatenate(out) if out else np.zeros(0)

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        """Held-out figures, and the same on a fixed share of the training sources: a
        model that ranks its own training clips no better than new ones is short of
        capacity or steps, not of data (the held-out gap alone cannot say which)."""
        from vq.eval.metrics.correlation import plcc, srocc

        out: dict[str, float] = {}
        for split, rows in (("holdout", self.eval_rows), ("train", self.fit_rows)):
            if not rows:
                continue
            pred = self.predict(model, rows)
            vmaf = np.asarray([r.vmaf for r in rows])
            out[f"{split}/srocc"] = srocc(pred, vmaf)
            out[f"{split}/plcc"] = plcc(pred, vmaf)
            out[f"{split}/chain_rank_acc"] = chain_rank_accuracy(pred, rows)
            out[f"{split}/mae_mos"] = float(np.mean(np.abs(pred - np.asarray([r.mos for r in rows]))))
            for kind, (_, acc) in step_accuracy_by_stage(pred, rows).items():
                out[f"{split}/step_acc/{kind}"] = acc
        if self.eval_rungs:  # how the model orders a held-out source's ladder rungs
            tau = rung_order_tau(self.predict(model, self.eval_rungs), self.eval_rungs)
            if tau is not None:
                out["holdout/rung_tau"] = tau
        return out


def rank_losses(
    score: jax.Array, mos: jax.Array, level: jax.Array, group: jax.Array, margin: float
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Margin rank losses of a batch: (pooled, in-chain only, across chains of one
    source, in-chain share right).

    Pooled: the hinge over the in-chain order (level k+1 is worse than level k: exact, by
    construction; `level` -1 marks a filler) and the VMAF order across groups (pairs more
    than 0.2 MOS apart). In-chain only: the
    same hinge over the in-chain pairs alone. In a batch of 4 chains of 4 there are 24
    in-chain pairs and about 150 cross-source ones, so pooled, the exact order is a
    seventh of the signal; with it weighted on its own (`chain_rank_weight`), the model
    learns that noise and banding are damage (held-out step accuracy on noise 0.30 ->
    0.81, banding 0.12 -> 0.58 at 600 steps; BENCHMARKS.md).

    Across chains of one source: a group's fillers (levels of the source's other chains)
    against its chain and each other, by VMAF (more than 0.2 MOS apart). These are the
    only pairs that show the same pixels under different damage - 240p encoded finely
    against 360p encoded coarsely - which is the trade an encoding ladder asks the score
    to make; neither term above has them. Two fillers from the same other chain are
    ordered by VMAF too, not by level: the two disagree on 2.9 % of in-chain pairs in
    the training set (most of them sharpening, which VMAF rewards)."""
    diff = score[:, None] - score[None, :]  # diff[i, j] > 0: i judged better than j
    chain_member = level >= 0
    known = chain_member[:, None] & chain_member[None, :]
    same_group = group[:, None] == group[None, :]
    vmaf_order = mos[:, None] - mos[None, :] > 0.2
    in_chain = same_group & known & (level[:, None] < level[None, :])
    by_vmaf = ~same_group & vmaf_order
    across_chains = same_group & ~known & vmaf_order
    pairs = (in_chain | by_vmaf).astype(jnp.float32)
    hinge = jnp.maximum(0.0, margin - diff)

    def mean_over(mask: jax.Array) -> jax.Array:
        return jnp.sum(hinge * mask) / jnp.maximum(1.0, jnp.sum(mask))

    right = jnp.sum((diff > 0) * in_chain) / jnp.maximum(1.0, jnp.sum(in_chain))
    return mean_over(pairs), mean_over(in_chain), mean_over(across_chains), right


def cost_l1(score: jax.Array, mos: jax.Array, group: jax.Array) -> jax.Array:
    """Mean over the pairs of clips in one group of |score difference - label difference|.

    A group is one source at the same pixels (a chain and its fillers, or ladder rungs),
    so a label difference is what the damage between two clips costs, with the source's
    own level taken out. The L1 to the label mixes the two: where a no-reference score
    misjudges how good the source was, every clip of the group errs the same way and
    the L1's pull is the same on all of them, whatever each damage costs. The rank losses
    ask only for the order, met at any fall past their margin. Neither asks a 10 px motion
    blur to cost what VMAF says it costs (the shipped model reads it at half; BENCHMARKS.md).
    """
    pair = (group[:, None] == group[None, :]) & ~jnp.eye(len(group), dtype=bool)
    error = jnp.abs((score[:, None] - score[None, :]) - (mos[:, None] - mos[None, :]))
    return jnp.sum(error * pair) / jnp.maximum(1.0, jnp.sum(pair))


def feature_target(row: Version) -> np.ndarray:
    """VMAF's elementary features of `row` in `VMAF_FEATURES` order; NaN where the row has
    none recorded (ladder rungs), which `masked_l1` leaves out."""
    if row.features is None:
        return np.full(len(VMAF_FEATURES), np.nan, np.float32)
    return np.asarray([row.features[k] for k in VMAF_FEATURES], np.float32)


def masked_l1(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """Mean |predicted - target| over the entries whose target is known (not NaN)."""
    known = ~jnp.isnan(target)
    error = jnp.where(known, jnp.abs(predicted - jnp.nan_to_num(target)), 0.0)
    return jnp.sum(error) / jnp.maximum(1.0, jnp.sum(known))


def train_fit_rows(train_rows: list[Version], sources: int = TRAIN_FIT_SOURCES) -> list[Version]:
    """Every clip of the first window of `sources` training sources spread evenly over
    the sorted names (the same clips in every run on one set; every kind of source)."""
    first = sorted({r.source for r in train_rows if r.source == source_of(r.source)})
    names = set(spread(first, sources))
    return [r for r in train_rows if r.source in names]


def spread(names: list[str], n: int) -> list[str]:
    """`n` of `names` (all, if fewer) at even steps from the first to near the last."""
    n = min(n, len(names))
    return [names[i * len(names) // n] for i in range(n)]


def pick_group(
    chains: dict[tuple[str, int], list[Version]], rng: np.random.Generator
) -> list[tuple[Version, bool]]:
    """`GROUP` (version, in chain) pairs of one source: a chain from pristine on, filled
    with levels of the source's other chains (fillers take no part in in-chain pairs; the
    across-chain rank loss orders them by VMAF). A source with one chain fills with its
    own levels again, in the chain: their order is exact, and no VMAF pair may contradict
    it."""
    keys = list(chains)
    source, chain = keys[int(rng.integers(len(keys)))]
    members = [(r, True) for r in chains[(source, chain)][:GROUP]]
    others = [r for (s, c), rs in chains.items() if s == source and c != chain for r in rs[1:]]
    pool = others or chains[(source, chain)][1:]
    while len(members) < GROUP:
        members.append((pool[int(rng.integers(len(pool)))], not others))
    return members


def pick_rungs(rungs: dict[str, list[Version]], rng: np.random.Generator) -> list[tuple[Version, bool]]:
    """`GROUP` ladder rungs of one source (heights and CRFs mixed), none in a chain: the
    across-chain rank loss orders them by VMAF, the trade of size against compression."""
    sources = sorted(rungs)
    pool = rungs[sources[int(rng.integers(len(sources)))]]
    picked = rng.choice(len(pool), size=min(GROUP, len(pool)), replace=False)
    members = [(pool[int(i)], False) for i in picked]
    while len(members) < GROUP:  # a source with fewer rungs than a group repeats some
        members.append((pool[int(rng.integers(len(pool)))], False))
    return members


def init_commands(recorded: dict[str, Any]) -> list[str]:
    """The commands that made a starting point, earliest first (its own fine-tune chain, then it)."""
    data = recorded.get("data", {})
    earlier = data.get("init_commands") or ([data["init_command"]] if data.get("init_command") else [])
    return [*earlier, *([recorded["command"]] if recorded.get("command") else [])]


def starting_point(init: str) -> dict[str, Any]:
    """What a fine-tune starts from (`--init`): a `vq train kvq` workdir, or a kvq model (a
    zoo name or an artifact folder) whose card carries its Flax params and training record
    (`vq.train.starting_points`)."""
    return starting_points.starting_point(init, task="kvq", model="kvq", option="--init")


def trained_kvq(
    init: str, model_kwargs: dict[str, Any], recorded: dict[str, Any] | None = None
) -> nnx.Module:
    """The model a fine-tune starts from (`starting_point`, read again unless `recorded`
    is given), checked to be this architecture."""
    recorded = recorded or starting_point(init)
    start, wanted = scored_part(recorded["model_kwargs"]), scored_part(model_kwargs)
    # Parts that start at zero, and inputs a model can learn to read: a start without them
    # may take them on.
    for option in (*ZERO_STARTED, *SHOWN_ONLY):
        if start[option] == 0:
            start[option] = wanted[option]
    if start != wanted:
        raise UsageError(f"{init}: its model options {recorded['model_kwargs']} differ from {model_kwargs}")
    model, _step = starting_points.starting_model(init, recorded)
    return model


def scored_part(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A kvq model's options but the auxiliary feature head's (a training target, not part
    of the score: a fine-tune may add or drop it)."""
    kwargs = model_def("kvq").kwargs(**model_kwargs)
    kwargs.pop("feature_outputs")
    return kwargs


def trained_by(recorded: dict[str, Any]) -> set[str] | None:
    """Source names a starting point's weights trained on: as recorded over its fine-tune
    chain (``data.trained_source_names``), or for runs recorded before that, every source
    under its ``data.train`` paths but its held-out ones. None when that cannot be known
    (no record, or the paths are not on disk from here)."""
    from vq.synth.quality_data import find_sources

    data = recorded.get("data", {})
    if "trained_source_names" in data:
        return set(data["trained_source_names"])
    paths = data.get("train", [])
    if not paths or not all(Path(p).exists() for p in paths):
        return None
    return {s.name for s in find_sources(paths)} - set(data.get("holdout_source_names", []))


def pretrained_backbone(workdir: str, model_kwargs: dict[str, Any]) -> nnx.Module:
    """The KVQ backbone of a QPT run (its latest checkpoint); the architecture must match."""
    from vq.train.trainer import load_trained_model

    recorded = starting_points.recorded_run(workdir, "qpt")
    backbone_kwargs = recorded["model_kwargs"]["backbone_kwargs"]
    if scored_part(backbone_kwargs) != scored_part(model_kwargs):
        raise UsageError(
            f"{workdir}: its backbone options {backbone_kwargs} differ from this run's {model_kwargs}"
        )
    backbone, _step = load_trained_model("qpt", recorded["model_kwargs"], workdir)
    return backbone
