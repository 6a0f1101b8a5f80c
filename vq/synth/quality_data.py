"""Label-free quality data: pristine clips, degradation chains, VMAF pseudo-MOS, cached.

The quality seed builds KVQ's training set without human ratings: clips go through
online-like degradation and encoding chains, and the labels are what the construction
knows. Here every source (a video, or a photo filmed by a camera move) gives one pristine
clip of `frames` consecutive frames; each of `chains` random chains (`vq.synth.degrade`)
degrades it stage by stage, and every level is one *version* with two labels:

* its place in the chain (``level``: 0 is pristine; higher is worse, by construction);
* VMAF against the pristine clip (full-reference, per frame, pooled by the mean), mapped
  to the 1-5 scale (`vq.eval.metrics.vmaf.vmaf_to_mos`): the pseudo-MOS; and from the
  same libvmaf pass, VMAF's elementary features (``features``: ADM and VIF at four
  scales), an optional auxiliary training target.

Whole sources are split into train and hold-out by a hash of their name
(`split_sources`), so no picture of a held-out source is ever trained on. Each version is a
uint8 ``(T, H, W, 3)`` clip file (`vq.synth.clip_files`: raw ``.npy`` for chain versions,
memory-mapped for training's random fragments; lossless FFV1 for ladder rungs, a quarter
of the disk) and each finished source adds one JSON record file; a build that stops
resumes where it was, and nothing is half-written (atomic files).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import MediaError, UsageError
from vq.fsutil import atomic_write_text
from vq.images import IMAGE_SUFFIXES, read_rgb
from vq.media.video import VIDEO_SUFFIXES
from vq.synth.clip_files import COMPRESSED, load_clip, save_clip
from vq.synth.degrade import ENHANCING, RUNG_HEIGHTS, Chain, Degradation, random_chain

CLIP_FRAMES = 32
MAX_SIDE = 512
IMAGE_FPS = 25.0


@dataclass(frozen=True)
class QualitySource:
    name: str  # "folder/file" (unique across the given roots)
    path: Path
    kind: str  # "video" | "image"


@dataclass
class Version:
    """One clip of the set and its labels (a row of the manifest)."""

    id: str  # "<source key>/c<chain>l<level>"
    source: str
    split: str  # "train" | "holdout"
    chain: int  # chain number within the source; -1 for the pristine clip
    level: int  # stages applied (0: pristine)
    stages: list[dict[str, Any]]  # the chain up to this level, exactly
    vmaf: float  # mean over frames
    mos: float  # pseudo-MOS on 1-5
    fps: float
    file: str  # relative to the set folder
    # VMAF NEG (no enhancement gain) against the pristine clip: recorded for ladder rungs,
    # where the client's sharpening is judged, and added to chain versions by `add_labels`
    # when training labels chains by it (`vq train kvq --chain-label vmaf_neg`).
    vmaf_neg: float | None = None
    # VMAF's elementary features (`vq.eval.metrics.vmaf.VMAF_FEATURES`, mean over frames)
    # from the same libvmaf pass: what kind of detail was lost, an auxiliary target for
    # training (`vq train kvq --set feature_weight=W`). None on rows built before they
    # were recorded (`add_labels` fills them in) and on ladder rungs.
    features: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        for optional in ("vmaf_neg", "features"):  # absent, not null, where not recorded
            if row[optional] is None:
                del row[optional]
        return row


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def split_sources(sources: list[QualitySource], fraction: float) -> dict[str, str]:
    """Source name -> "train" or "holdout": whole sources, by a stable hash of the name,
    stratified by kind, so videos (the only real motion) are held out in the same share
    as photos rather than by luck of a small draw."""
    split: dict[str, str] = {}
    for kind in ("video", "image"):
        ranked = sorted((s.name for s in sources if s.kind == kind), key=_hash)
        cut = round(fraction * len(ranked))
        split.update({name: "holdout" if i < cut else "train" for i, name in enumerate(ranked)})
    return split


def find_sources(paths: Iterable[str | Path]) -> list[QualitySource]:
    """Videos and images under `paths` (recursive), sorted. Low-resolution twins of the SR
    sets (``*_lr_x*`` folders) are left out: they are the same pictures, downscaled."""
    found: list[QualitySource] = []
    for root in map(Path, paths):
        if not root.exists():
            raise UsageError(f"{root}: no such file or folder")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            if "_lr_x" in f.parent.name:
                continue
            suffix = f.suffix.lower()
            kind = "video" if suffix in VIDEO_SUFFIXES else "image" if suffix in IMAGE_SUFFIXES else None
            if kind:
                found.append(QualitySource(f"{f.parent.name}/{f.name}", f, kind))
    if not found:
        raise UsageError(f"no videos or images under {', '.join(map(str, paths))}")
    return found


def _even(x: float) -> int:
    return max(16, int(x) // 2 * 2)


def pristine_clip(
    source: QualitySource, rng: np.random.Generator, frames: int = CLIP_FRAMES
) -> tuple[np.ndarray, float]:
    """`frames` consecutive frames of `source` at most `MAX_SIDE` px: a window from the
    middle part of a video (decoded with the loop filter on: no decoder shortcut may add
    artefacts to a pristine clip), or a camera move over an image at `IMAGE_FPS`."""
    if source.kind == "image":
        from vq.synth.motion import move_frames, random_move

        photo = read_rgb(source.path)
        h, w = photo.shape[:2]
        # Windows of about 60 % of the picture, so the move samples the photo at (or
        # below) its own resolution: no upscaling blur in the pristine clip.
        scale = min(1.0, MAX_SIDE / (0.6 * max(w, h)))
        size = (_even(0.6 * w * scale), _even(0.6 * h * scale))
        move = random_move((w, h), size, rng)
        return np.stack(list(move_frames(photo, move, frames))), IMAGE_FPS
    from vq.media import open_video

    with open_video(source.path) as video:
        info = video.info
        fps = float(info.fps or 25.0)
        duration = float(info.duration or frames / fps)
        span = frames / fps
        start = float(rng.uniform(0.2, 0.6)) * max(0.0, duration - span)
        times = start + np.arange(frames) / fps
        clip = video.sample(times=times, max_side=MAX_SIDE, fast=False).images
    if len(clip) < frames:
        raise MediaError(f"{source.path}: only {len(clip)} of {frames} frames from {start:.2f} s")
    h, w = clip.shape[1:3]
    return np.ascontiguousarray(clip[:, : h // 2 * 2, : w // 2 * 2]), fps


def middle_window(clip: np.ndarray, frames: int) -> np.ndarray:
    """The `frames` consecutive frames at the middle of a clip: what training evaluates and
    `vq eval quality` scores (the runtime's centred segment window)."""
    start = max(0, (len(clip) - frames) // 2)
    return np.asarray(clip[start : start + frames])


def _key(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.replace("/", "__"))
    return f"{stem}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def window_name(source: str, window: int) -> str:
    """The name of a source's `window`-th clip: window 0 is the source itself (so a set
    built with one window per source is unchanged), others add ``#w<k>``."""
    return source if window == 0 else f"{source}#w{window}"


def source_of(name: str) -> str:
    """The source a clip's name belongs to (`window_name` undone)."""
    return name.split("#w", 1)[0]


def build_source(
    source: QualitySource,
    out: Path,
    split: str,
    chains: int,
    seed: int,
    frames: int = CLIP_FRAMES,
    depth: tuple[int, int] = (1, 4),
    window: int = 0,
) -> list[Version]:
    """Every version of one source's `window`-th clip (pristine + each chain's levels),
    written under `out`. Each window draws its own moment (video) or camera move (photo)
    and its own chains; its records name it as a source of its own (`window_name`), so
    chains never mix two windows."""
    from vq.eval.metrics.vmaf import vmaf_to_mos

    name = window_name(source.name, window)
    key = _key(name)
    rng = np.random.default_rng([seed, _hash(name)])
    clip, fps = pristine_clip(source, rng, frames)
    (out / "clips" / key).mkdir(parents=True, exist_ok=True)

    def version(chain_no: int, level: int, stages: list[dict[str, Any]], frames_: np.ndarray) -> Version:
        vid = f"{key}/c{chain_no}l{level}" if chain_no >= 0 else f"{key}/pristine"
        rel = f"clips/{vid}.npy"
        save_clip(out / rel, frames_)
        score, features = vmaf_labels(frames_, clip, fps)
        return Version(
            vid,
            name,
            split,
            chain_no,
            level,
            stages,
            score,
            float(vmaf_to_mos(score)),
            fps,
            rel,
            features=features,
        )

    versions = [version(-1, 0, [], clip)]
    for c in range(chains):
        chain = random_chain(rng, depth=depth)
        for level, degraded in enumerate(chain.levels(clip, fps), start=1):
            versions.append(version(c, level, Chain(chain.stages[:level]).to_json(), degraded))
    return versions


def vmaf_labels(clip: np.ndarray, pristine: np.ndarray, fps: float) -> tuple[float, dict[str, float]]:
    """A version's VMAF and its elementary features against the pristine clip (one libvmaf
    pass), each the mean over frames."""
    from vq.eval.metrics.vmaf import VMAF_FEATURES, vmaf_scores

    scores = vmaf_scores(clip, pristine, fps, features=True)
    return float(np.mean(scores["vmaf"])), {k: float(np.mean(scores[k])) for k in VMAF_FEATURES}


# What `add_labels` can fill in on a set built before it was recorded.
ADDABLE_LABELS = ("features", "vmaf_neg")


def add_labels(folder: str | Path, split: str, labels: Iterable[str], ui: Any = None) -> int:
    """Record each of `labels` (of `ADDABLE_LABELS`) on every `split` version of the set in
    `folder` that lacks it (sets built before it was recorded); returns how many versions
    changed. One libvmaf pass per version computes all that is missing; one label file
    at a time is rewritten atomically, so a stopped run resumes. A recomputed VMAF that
    disagrees with the stored label means the set's clips changed under it: that is an
    error, not a silent relabel."""
    from vq.eval.base import QuietUi
    from vq.eval.metrics.vmaf import VMAF_FEATURES, vmaf_scores

    ui = ui or QuietUi()
    folder, labels = Path(folder), tuple(labels)
    unknown = [name for name in labels if name not in ADDABLE_LABELS]
    if unknown:
        raise UsageError(f"cannot add {unknown} to a set (choose from {', '.join(ADDABLE_LABELS)})")

    def missing(row: Version) -> list[str]:
        return [name for name in labels if getattr(row, name) is None] if row.split == split else []

    todo = []
    for label_file in sorted((folder / "labels").glob("*.json")):
        rows = [Version(**r) for r in json.loads(label_file.read_text())]
        if any(missing(r) for r in rows):
            todo.append((label_file, rows))
    added = 0
    for label_file, rows in ui.track(todo, len(todo), f"adding {', '.join(labels)} ({split})"):
        pristine = next(r for r in rows if r.level == 0)
        reference = load_clip(folder / pristine.file)
        for i, row in enumerate(rows):
            wanted = missing(row)
            if not wanted:
                continue
            models = ("vmaf", "vmaf_neg") if "vmaf_neg" in wanted else ("vmaf",)
            per_frame = vmaf_scores(
                load_clip(folder / row.file), reference, row.fps, models=models, features=True
            )
            score = float(np.mean(per_frame["vmaf"]))
            if abs(score - row.vmaf) > 0.5:
                raise UsageError(
                    f"{row.id}: VMAF now {score:.2f}, labelled {row.vmaf:.2f}: the clip changed "
                    "since the set was built; rebuild the set"
                )
            found: dict[str, Any] = {"features": {k: float(np.mean(per_frame[k])) for k in VMAF_FEATURES}}
            if "vmaf_neg" in per_frame:
                found["vmaf_neg"] = float(np.mean(per_frame["vmaf_neg"]))
            rows[i] = replace(row, **{name: found[name] for name in wanted})
            added += 1
        atomic_write_text(label_file, json.dumps([r.to_json() for r in rows], indent=1))
    return added


def build_quality_set(
    paths: Iterable[str | Path],
    out: str | Path,
    *,
    holdout: float = 0.25,
    chains: int = 2,
    seed: int = 0,
    frames: int = CLIP_FRAMES,
    splits: tuple[str, ...] = ("train", "holdout"),
    windows: int = 1,
    train_only: Iterable[str | Path] = (),
    ui: Any = None,
) -> list[Version]:
    """Build (or finish building) the set under `out`; returns every version's record.
    Training sources give `windows` clips each (more content per source: other moments,
    other camera moves), held-out sources one, so the bench is the same at any `windows`.
    Sources under `train_only` always train and take no part in the hash split: adding
    them leaves every other source's split, and so the held-out bench, as it was.
    Sources that cannot be read are skipped with a note (a batch goes on)."""
    from vq.eval.base import QuietUi

    ui = ui or QuietUi()
    out = Path(out)
    found = find_sources(paths)
    extra = find_sources(train_only) if train_only else []
    twice = sorted({s.name for s in found} & {s.name for s in extra})
    if twice:
        raise UsageError(f"{twice[0]} is both a split source and a train-only source")
    split_of = split_sources(found, holdout) | {s.name: "train" for s in extra}
    sources = [s for s in found + extra if split_of[s.name] in splits]
    settings = {"holdout": holdout, "chains": chains, "seed": seed, "frames": frames}
    if windows > 1:  # sets built before windows existed keep their settings file valid
        settings["windows"] = windows
    settings_file = out / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != settings:
        raise UsageError(
            f"{out} was built with other settings ({settings_file.read_text().strip()}); use a new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(settings_file, json.dumps(settings))
    units = [(s, 0) for s in sources] + [
        (s, w) for s in sources if split_of[s.name] == "train" for w in range(1, windows)
    ]
    records: list[Version] = []
    for source, window in ui.track(units, len(units), "building quality set"):
        name = window_name(source.name, window)
        label_file = out / "labels" / f"{_key(name)}.json"
        if label_file.exists():
            records.extend(Version(**r) for r in json.loads(label_file.read_text()))
            continue
        try:
            versions = build_source(source, out, split_of[source.name], chains, seed, frames, window=window)
        except MediaError as e:
            ui.note(f"skipped {name}: {e}", warn=True)
            continue
        atomic_write_text(label_file, json.dumps([v.to_json() for v in versions], indent=1))
        records.extend(versions)
    return records


RUNG_CRFS = tuple(range(16, 44, 2))  # the grid a source's rungs draw their CRFs from
RUNG_LABELS = ("vmaf", "vmaf_neg")  # what each rung is labelled by (`labelled_by`)


def build_rungs(
    folder: str | Path,
    per_height: int = 3,
    seed: int = 0,
    split: str = "train",
    ui: Any = None,
    client_post: Iterable[str] = (),
) -> list[Version]:
    """Encoding-ladder rungs of each `split` source's first clip in a built set: at every
    share of the height in `RUNG_HEIGHTS`, `per_height` CRFs drawn from `RUNG_CRFS`, each
    a ``rung`` degradation of the pristine clip (scaled, encoded, decoded, scaled back),
    labelled by VMAF against it like any version (and by VMAF NEG: `labelled_by`).

    Random chains hardly ever show one source at two sizes and two CRFs, yet that is the
    trade a ladder asks a quality score to make (240p encoded finely against 360p encoded
    coarsely); these grids show it on purpose. Rows have ``chain`` = the height's index,
    ``level`` = the CRF's rank in it (1 is the finest), and live beside the set
    (``rungs/``, ``rung-labels/``), so the set's own chains and figures are unchanged.
    The grid (`per_height`, `seed`, heights, CRFs) is recorded in ``rungs/settings.json``;
    another grid in the same folder is an error, not a silent rebuild under a job that
    reads the first. Resumable per source; atomic files.

    `client_post` adds every rung as the viewer's phone shows it after that post-processing
    (`client_rungs`); the returned records are the rungs, then those."""
    from vq.eval.base import QuietUi

    ui = ui or QuietUi()
    folder = Path(folder)
    if not 1 <= per_height <= len(RUNG_CRFS):
        raise UsageError(f"rungs per height must be 1 to {len(RUNG_CRFS)}, got {per_height}")
    settings = {
        "per_height": per_height,
        "seed": seed,
        "heights": list(RUNG_HEIGHTS),
        "crfs": list(RUNG_CRFS),
        "labels": list(RUNG_LABELS),
    }
    settings_file = folder / "rungs" / "settings.json"
    recorded = json.loads(settings_file.read_text()) if settings_file.exists() else settings
    if recorded != settings and {**recorded, "labels": settings["labels"]} == settings:
        raise UsageError(
            f"{folder} has ladder rungs built before VMAF NEG was recorded; delete its rungs/ and "
            "rung-labels/ to rebuild them"
        )
    if recorded != settings:
        raise UsageError(
            f"{folder} has ladder rungs built with other settings ({settings_file.read_text().strip()})"
        )
    (folder / "rungs").mkdir(parents=True, exist_ok=True)
    atomic_write_text(settings_file, json.dumps(settings))
    pristine = [
        r for r in load_quality_set(folder, split) if r.level == 0 and r.source == source_of(r.source)
    ]
    records: list[Version] = []
    for row in ui.track(pristine, len(pristine), f"building ladder rungs ({split})"):
        key = row.id.split("/")[0]
        label_file = folder / "rung-labels" / f"{key}.json"
        if label_file.exists():
            records.extend(_compressed(folder, label_file))
            continue
        clip = load_clip(folder / row.file)
        rng = np.random.default_rng([seed, _hash(row.source), 1])
        (folder / "rungs" / key).mkdir(parents=True, exist_ok=True)
        versions = []
        for h, height in enumerate(RUNG_HEIGHTS):
            crfs = sorted(int(c) for c in rng.choice(RUNG_CRFS, per_height, replace=False))
            for level, crf in enumerate(crfs, start=1):
                stage = Degradation("rung", {"height": height, "crf": crf})
                frames_ = stage.apply(clip, row.fps)
                rel = f"rungs/{key}/r{h}l{level}{COMPRESSED}"
                save_clip(folder / rel, frames_)
                vid = f"{key}/r{h}l{level}"
                versions.append(_labelled(vid, row, h, level, [stage.to_json()], frames_, clip, rel, split))
        atomic_write_text(label_file, json.dumps([v.to_json() for v in versions], indent=1))
        records.extend(versions)
    plain = list(records)
    for mode in client_post:
        records.extend(client_rungs(folder, mode, plain, pristine, ui))
    return records


def _labelled(
    vid: str,
    like: Version,
    chain: int,
    level: int,
    stages: list[dict[str, Any]],
    frames_: np.ndarray,
    reference: np.ndarray,
    rel: str,
    split: str,
) -> Version:
    """A rung's record: `frames_` labelled by every one of `RUNG_LABELS` against
    `reference` (one libvmaf pass), source and frame rate as `like`'s."""
    from vq.eval.metrics.vmaf import vmaf_scores, vmaf_to_mos

    scores = {
        m: float(np.mean(v)) for m, v in vmaf_scores(frames_, reference, like.fps, models=RUNG_LABELS).items()
    }
    mos = float(vmaf_to_mos(scores["vmaf"]))
    return Version(
        vid, like.source, split, chain, level, stages, scores["vmaf"], mos, like.fps, rel, scores["vmaf_neg"]
    )


def labelled_by(rows: list[Version], metric: str) -> list[Version]:
    """`rows` (rungs or chain versions) with ``vmaf`` and ``mos`` taken from `metric` (one
    of `RUNG_LABELS`), so that every loss and figure that orders by VMAF orders by it
    instead.

    VMAF NEG is the judge for the phone's sharpening: plain VMAF rates an unsharp-masked
    rung above the rung itself nearly always, and a score trained on that order learns to
    credit the sharpening the device-cloud decision must not over-credit."""
    from vq.eval.metrics.vmaf import vmaf_to_mos

    if metric not in RUNG_LABELS:
        raise UsageError(f"a label is one of {' or '.join(RUNG_LABELS)}, not {metric!r}")
    if metric == "vmaf":
        return rows
    _require_neg(rows)
    return [replace(r, vmaf=r.vmaf_neg, mos=float(vmaf_to_mos(r.vmaf_neg))) for r in rows]


def _require_neg(rows: list[Version]) -> None:
    """Fail with one line, saying how to add it, if a row has no VMAF NEG recorded."""
    unlabelled = [r.id for r in rows if r.vmaf_neg is None]
    if unlabelled:
        raise UsageError(
            f"{len(unlabelled)} clips (first {unlabelled[0]}) have no vmaf_neg label: they were built "
            "before it was recorded (add_labels fills in chain versions; for ladder rungs delete "
            "the set's rungs/ and rung-labels/ to rebuild them)"
        )


# What labels the chains (`chain_labelled_by`), each with the recorded labels it reads
# beyond VMAF (`add_labels` fills them in on a set built without them).
CHAIN_LABELS: dict[str, tuple[str, ...]] = {
    "vmaf": (),
    "vmaf_neg": ("vmaf_neg",),
    "vmaf_no_gain": (),
    "vmaf_neg_sharpen": ("vmaf_neg",),
}


def chain_labelled_by(rows: list[Version], label: str) -> list[Version]:
    """`rows` (the set's chain versions) with ``vmaf`` and ``mos`` taken from `label`: one
    of `RUNG_LABELS` (`labelled_by`), or VMAF with some steps of each chain judged apart
    (`steps_relabelled`):

    * ``vmaf_no_gain``: the rise an enhancing stage (`ENHANCING`) gave VMAF taken back;
    * ``vmaf_neg_sharpen``: each sharpening step moves the label by VMAF NEG's change.
    """
    if label not in CHAIN_LABELS:
        *first, last = CHAIN_LABELS
        raise UsageError(f"a chain label is one of {', '.join(first)} or {last}, not {label!r}")
    if label == "vmaf_no_gain":
        return steps_relabelled(rows, ENHANCING, lambda before, after: min(0.0, after.vmaf - before.vmaf))
    if label == "vmaf_neg_sharpen":
        _require_neg(rows)
        return steps_relabelled(rows, ("sharpen",), lambda before, after: after.vmaf_neg - before.vmaf_neg)
    return labelled_by(rows, label)


def steps_relabelled(
    rows: list[Version], kinds: Iterable[str], step: Callable[[Version, Version], float]
) -> list[Version]:
    """`rows` with each chain's VMAF changed only at the steps that add a stage of `kinds`:
    such a step moves the label by ``step(before, after)`` instead of VMAF's own change,
    and every later level of the chain carries the difference, since that stage is still
    in what follows. Other steps move by VMAF's change; pristine clips keep their VMAF. A
    label carried below VMAF 0 stays there, but its pseudo-MOS (what training fits) is
    clipped to 1 like any other.

    Why: VMAF scores a sharpened or contrast-boosted clip above its input about half the
    time (a third for colour), so a score regressed on it learns that sharpening restores
    detail, while the chain's order says it is damage. VMAF NEG judges those steps as
    damage but re-weighs every other stage too (encodes, rescales) and agrees with VMAF
    only at SROCC 0.91 on the set; here the other steps stay exact VMAF."""
    from vq.eval.metrics.vmaf import vmaf_to_mos

    kinds = set(kinds)
    offsets: dict[int, float] = {}
    for members in chains_of(rows).values():
        offset = 0.0
        for before, after in pairwise(members):
            if after.stages[-1]["kind"] in kinds:
                offset += (after.vmaf - before.vmaf) - step(before, after)
            offsets[id(after)] = offset
    out = []
    for r in rows:
        offset = offsets.get(id(r), 0.0)
        out.append(replace(r, vmaf=r.vmaf - offset, mos=float(vmaf_to_mos(r.vmaf - offset))) if offset else r)
    return out


def client_stage(mode: str) -> Degradation:
    """The phone's post-processing `mode` (`vq.ladder.client`) as a degradation stage."""
    from vq.ladder.client import sharpen_stage

    # The SR client needs a model run per rung; only the unsharp mask is a pure stage.
    if mode != "sharpen":
        raise UsageError(f"rungs can be post-processed by the client's sharpening only, not {mode!r}")
    return sharpen_stage()


def client_rungs(
    folder: Path, mode: str, rungs: list[Version], pristine: list[Version], ui: Any
) -> list[Version]:
    """`rungs` as the viewer's phone shows them after its post-processing `mode`, labelled
    by VMAF and VMAF NEG against their `pristine` clips like the rungs themselves.

    The device-cloud decision ships a cheaper rung when, post-processed, it scores above
    the next rung up; a score that reads the phone's sharpening as restored detail makes
    that decision cost the viewer VMAF (`vq eval ladder`). These versions, ordered by VMAF
    among the rungs, are the cases it decides. Rows keep the rung's ``chain`` and
    ``level``; ids and files end in ``+<mode>``; labels live in ``rung-labels/<mode>/``,
    one file per source (resumable, atomic)."""
    stage = client_stage(mode)
    originals = {r.id.split("/")[0]: r for r in pristine}
    by_source: dict[str, list[Version]] = defaultdict(list)
    for r in rungs:
        by_source[r.id.split("/")[0]].append(r)
    (folder / "rung-labels" / mode).mkdir(parents=True, exist_ok=True)
    # The stage is recorded like the grid: labels of another filter are never served.
    settings_file = folder / "rung-labels" / mode / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != stage.to_json():
        raise UsageError(
            f"{folder} has {mode} rungs built with another filter ({settings_file.read_text().strip()})"
        )
    atomic_write_text(settings_file, json.dumps(stage.to_json()))
    records: list[Version] = []
    for key, plain in ui.track(list(by_source.items()), len(by_source), f"ladder rungs + client {mode}"):
        label_file = folder / "rung-labels" / mode / f"{key}.json"
        if label_file.exists():
            records.extend(_compressed(folder, label_file))
            continue
        reference = load_clip(folder / originals[key].file)
        versions = []
        for r in plain:
            shown = stage.apply(load_clip(folder / r.file), r.fps)
            rel = f"{Path(r.file).with_suffix('')}+{mode}{COMPRESSED}"
            save_clip(folder / rel, shown)
            stages = [*r.stages, stage.to_json()]
            versions.append(
                _labelled(f"{r.id}+{mode}", r, r.chain, r.level, stages, shown, reference, rel, r.split)
            )
        atomic_write_text(label_file, json.dumps([v.to_json() for v in versions], indent=1))
        records.extend(versions)
    return records


def _compressed(folder: Path, label_file: Path) -> list[Version]:
    """The rungs recorded in `label_file`, each stored compressed (`COMPRESSED`): rungs a
    build before that kept raw are rewritten (the same pixels, about a quarter of the
    disk) and the raw files removed once the label file names the new ones."""
    rows = [Version(**r) for r in json.loads(label_file.read_text())]
    raw = [r for r in rows if Path(r.file).suffix != COMPRESSED]
    if not raw:
        return rows
    moved = {r.file: str(Path(r.file).with_suffix(COMPRESSED)) for r in raw}
    for old, new in moved.items():
        save_clip(folder / new, load_clip(folder / old))
    rows = [replace(r, file=moved.get(r.file, r.file)) for r in rows]
    atomic_write_text(label_file, json.dumps([r.to_json() for r in rows], indent=1))
    for old in moved:
        (folder / old).unlink(missing_ok=True)
    return rows


def load_rungs(
    folder: str | Path, split: str | None = None, client_post: Iterable[str] = ()
) -> list[Version]:
    """The ladder rungs built beside a set (`build_rungs`), and those post-processed by
    each of `client_post` (`client_rungs`); none if there are none."""
    labels = Path(folder) / "rung-labels"
    files = sorted(labels.glob("*.json")) + [
        f for m in client_post for f in sorted((labels / m).glob("*.json")) if f.name != "settings.json"
    ]
    rows = [Version(**r) for f in files for r in json.loads(f.read_text())]
    return [r for r in rows if split is None or r.split == split]


def rung_order_tau(pred: np.ndarray, rows: list[Version]) -> float | None:
    """Mean over sources of Kendall's tau between `pred` and VMAF on each source's rungs
    (`build_rungs`): the figure `vq eval ladder` reports on whole ladders, here on every
    held-out source of a set. None when no source has 3 rungs with an order to compare."""
    from vq.eval.metrics.correlation import within_group_krocc

    return within_group_krocc(pred, [r.vmaf for r in rows], [r.source for r in rows])


def post_processed(row: Version) -> bool:
    """Whether a rung row is a client post-processed twin (``<rung id>+<mode>``, `client_rungs`)."""
    return "+" in row.id


def client_post_accuracy(pred: np.ndarray, rows: list[Version]) -> float | None:
    """Share of rungs whose client post-processing (``<id>+<mode>`` beside ``<id>``,
    `client_rungs`) `pred` scores up or down as VMAF does (a tie on one side only counts
    half): whether a score tells restored detail from sharpened damage, the call the
    device-cloud decision makes. None without such pairs."""
    index = {r.id: i for i, r in enumerate(rows)}
    agree = []
    for i, r in enumerate(rows):
        base = index.get(r.id.rsplit("+", 1)[0]) if post_processed(r) else None
        if base is None:
            continue
        ours, theirs = np.sign(pred[i] - pred[base]), np.sign(r.vmaf - rows[base].vmaf)
        agree.append(1.0 if ours == theirs else 0.5 if 0 in (ours, theirs) else 0.0)
    return float(np.mean(agree)) if agree else None


def built_windows(folder: str | Path) -> int:
    """Windows per training source of the set built in `folder` (1 if none is built yet):
    an evaluation reads a training run's set as it was built."""
    settings = Path(folder) / "settings.json"
    return int(json.loads(settings.read_text()).get("windows", 1)) if settings.exists() else 1


def load_quality_set(folder: str | Path, split: str | None = None) -> list[Version]:
    """The records of a built set (one split, or all)."""
    folder = Path(folder)
    files = sorted((folder / "labels").glob("*.json"))
    if not files:
        raise UsageError(f"{folder}: no quality set here (vq train kvq and vq eval quality build one)")
    rows = [Version(**r) for f in files for r in json.loads(f.read_text())]
    return [r for r in rows if split is None or r.split == split]


def chains_of(rows: list[Version]) -> dict[tuple[str, int], list[Version]]:
    """(source, chain) -> [pristine, level 1, level 2, ...]."""
    pristine = {r.source: r for r in rows if r.level == 0}
    chains: dict[tuple[str, int], list[Version]] = defaultdict(list)
    for r in rows:
        if r.level > 0 and r.source in pristine:
            chains[(r.source, r.chain)].append(r)
    return {k: [pristine[k[0]], *sorted(v, key=lambda r: r.level)] for k, v in sorted(chains.items())}


def chain_steps(rows: list[Version]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stage kind -> (indices of the levels before, indices of the levels after) over every
    chain step that adds a stage of that kind."""
    index = {id(r): i for i, r in enumerate(rows)}
    steps: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for members in chains_of(rows).values():
        for before, after in pairwise(members):
            steps[after.stages[-1]["kind"]].append((index[id(before)], index[id(after)]))
    return {kind: tuple(np.asarray(pairs).T) for kind, pairs in sorted(steps.items())}


def step_accuracy_by_stage(pred: np.ndarray, rows: list[Version]) -> dict[str, tuple[int, float]]:
    """Stage kind -> (steps, share scored worse than the level before; a tie counts half,
    as in `chain_rank_accuracy`): each step of a chain adds one stage, so this says which
    damage a score misses or reads backwards (a chance-level share, or below it), where
    per-chain figures mix every stage."""
    pred = np.asarray(pred)
    out = {}
    for kind, (before, after) in chain_steps(rows).items():
        then, now = pred[before], pred[after]
        out[kind] = (len(before), float(np.mean(np.where(now == then, 0.5, now < then))))
    return out


def step_cost_by_stage(values: np.ndarray, rows: list[Version]) -> dict[str, float]:
    """Stage kind -> the median fall of `values` over the chain steps that add it. On a
    score mapped onto VMAF (`mapped_onto`) beside VMAF's own, it says how much of the
    damage of each kind a score reads: a kind read at a fraction of its VMAF cost is
    misplaced against every other kind, however well it is ordered inside its chain."""
    values = np.asarray(values)
    return {
        kind: float(np.median(values[before] - values[after]))
        for kind, (before, after) in chain_steps(rows).items()
    }


def chain_rank_accuracy(pred: np.ndarray, rows: list[Version], min_gap: float = 0.0) -> float:
    """Share of in-chain pairs (pristine included) scored in the constructed order.

    `min_gap` > 0 counts only the pairs whose VMAF differs by at least that much: one
    just-noticeable difference is about 6 VMAF points, and a stage that VMAF barely sees
    (a mild grade, light noise) makes a pair whose order no viewer could confirm."""
    from vq.eval.metrics.correlation import rank_accuracy

    scores, truth, groups, vmaf = [], [], [], []
    index = {id(r): i for i, r in enumerate(rows)}
    for (source, chain), members in chains_of(rows).items():
        for r in members:
            scores.append(pred[index[id(r)]])
            truth.append(-r.level)
            groups.append(f"{source}#{chain}")
            vmaf.append(r.vmaf)
    return rank_accuracy(scores, truth, groups, vmaf, min_gap)
