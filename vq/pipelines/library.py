"""Creating a copy-detection library bound to one embedding model, with companions under
others (`vq index create`, `vq run --create`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vq.errors import UsageError
from vq.index.library import COMPANIONS, Library, LibraryConfig
from vq.match import FILTERS
from vq.match.thresholds import Thresholds

# The seed stores one frame per 2 s ("2s1f") and queries at 1 fps. At those rates a 3-5 s
# copy hosted inside another video gives the aligner one or two library frames and is
# mostly lost (4 of 16 found on the held-out benchmark). Queries are matched at 2 fps, and
# the library stores 2 fps too: the look-alike test (`vq.match.motion`) correlates how the
# two sides change, and with twice the reference frames a true copy's agreement stands
# clear of another moment's (held-out seed 0: F1 0.802 -> 0.837, segment µAP 0.635 ->
# 0.702; BENCHMARKS.md), for four times the seed's library vectors. At billions of
# vectors an operator may store 1 or 0.5 fps (`--fps`) and keep 2 fps queries.
DEFAULT_FPS = 2.0
DEFAULT_QUERY_FPS = 2.0
# A library of the shipped embedder gets the luma embedder as a companion unless told
# otherwise: `vq-embed` misses strongly graded copies (9 of 16 found on held-out seed 0),
# `vq-embed-luma` misses test cards, and together, with the pixel test settling what the
# two embeddings cannot tell apart, they reach the held-out bar on both seeds (F1
# 0.957 / 0.953, segment µAP 0.907 / 0.925, look-alikes 0 and 1 of 21, where `vq-embed`
# alone gives 0.899 / 0.795 on seed 0), for a second embedding of every frame
# (BENCHMARKS.md, "Lines placed by their pixels, ends between samples, the companion by
# default"). A library of binary codes (made for scale) gets none unless asked.
DEFAULT_COMPANIONS = {"vq-embed": ("vq-embed-luma",)}
NO_COMPANION = "none"  # `--companion none`: a library of one model


def companions_asked(asked: Sequence[str]) -> tuple[str, ...] | None:
    """`--companion` as given -> `create_library`'s `companions`: None (the model's
    default) where none were named, no companion for `none`."""
    if NO_COMPANION in asked and len(asked) > 1:
        raise UsageError(f"--companion {NO_COMPANION} goes alone: it asks for a library of one model")
    if not asked:
        return None
    return () if list(asked) == [NO_COMPANION] else tuple(asked)


def create_library(
    library: Path,
    model: str | None,
    *,
    name: str = "main",
    fps: float = DEFAULT_FPS,
    query_fps: float | None = None,
    factory: str = "auto",
    flat_limit: int = 200_000,
    frame_threshold: float | None = None,
    min_seconds: float = 2.0,
    filters: dict[str, dict[str, Any]] | None = None,
    codes: str = "pq",
    hash_model: str | None = None,
    companions: Sequence[str] | None = None,
    companion_of: str | None = None,
) -> LibraryConfig:
    """An empty library at `library` for `model` (default: the shipped embedder), storing
    `fps` frames per second and matching queries at `query_fps` (default: 2 fps, or `fps`
    if that is denser), with the thresholds its card recommends (`frame_threshold`
    overrides the frame cosine). Each of `companions` (other embedding models; None: the
    model's `DEFAULT_COMPANIONS`) gets a companion library inside it
    (`vq.index.library.companions_of`), made alike: every video is embedded by each model,
    and a reference either model finds is one match."""
    from dataclasses import replace

    from vq.models import load_model

    if fps <= 0 or (query_fps is not None and query_fps <= 0):
        raise UsageError("--fps and --query-fps must be positive")
    if query_fps is None:  # never sparser than what is stored
        query_fps = max(DEFAULT_QUERY_FPS, fps)
    if codes not in ("pq", "binary"):
        raise UsageError(f"--codes must be pq or binary, got {codes!r}")
    hash_sha = None
    if codes == "binary":  # fail now, not at the first index build
        hash_art = load_model(hash_model or "vq-hash", task="hash")
        hash_model, hash_sha = _reference(hash_art), hash_art.card.files["fp32"]["sha256"]
    for rule in filters or {}:
        if rule not in FILTERS:
            raise UsageError(f"unknown filter {rule!r} (known: {', '.join(FILTERS.names())})")
    art = load_model(model, task="embed")
    if companions is None:  # a companion has none of its own; nor, unasked, a library of
        # binary codes (made for scale, where a second embedding of every frame doubles it)
        companions = () if companion_of is not None or codes != "pq" else default_companions(art)
    partners = [load_model(m, task="embed") for m in companions]  # every name checked first
    shas = [a.card.files["fp32"]["sha256"] for a in (art, *partners)]
    if len(set(shas)) < len(shas):
        raise UsageError("a companion must use another model than its library and the other companions")
    thresholds = Thresholds.from_card(art.card, fps)
    if frame_threshold is not None:
        thresholds = replace(thresholds, frame=frame_threshold)
    config = LibraryConfig(
        model=_reference(art),
        model_sha256=art.card.files["fp32"]["sha256"],
        dim=int(art.card.outputs[0].shape[-1]),
        fps=fps,
        query_fps=query_fps,
        factory=factory,
        flat_limit=flat_limit,
        name=name,
        thresholds=thresholds,
        filters={"min_seconds": {"seconds": min_seconds}, **(filters or {})},
        codes=codes,
        hash_model=hash_model if codes == "binary" else None,
        hash_model_sha256=hash_sha if codes == "binary" else None,
        companion_of=companion_of,
    )
    Library.create(library, config).close()
    for partner in partners:
        create_library(
            Path(library) / COMPANIONS / partner.name,
            str(partner.root),
            name=f"{name}+{partner.name}",
            fps=fps,
            query_fps=query_fps,
            factory=factory,
            flat_limit=flat_limit,
            min_seconds=min_seconds,
            filters=filters,
            companion_of=name,
        )
    return config


def default_companions(art) -> tuple[str, ...]:
    """The companions a library of the model `art` (an `Artifact`) gets by default."""
    return DEFAULT_COMPANIONS.get(_reference(art), ())


def _reference(art) -> str:
    """How a library names a model: zoo models by name, anything else by its absolute
    folder (checked by sha256 when opened)."""
    from vq.models import ZOO_DIR

    return art.name if art.root.resolve().parent == ZOO_DIR.resolve() else str(art.root.resolve())


def described(library: Path, config: LibraryConfig) -> str:
    """What a new library holds, in a few words (the CLI's "created library" line)."""
    from vq.index.library import companions_of

    partners = "".join(f"; companion {c.name}" for c in companions_of(library))
    return f"{config.model}, stores {config.fps:g} fps, queries at {config.query_fps:g} fps{partners}"
