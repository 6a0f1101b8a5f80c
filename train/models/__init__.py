"""Flax NNX model families behind a registry (the timm pattern).

Each entry names a `ModelDef`: a factory, the I/O it exports with (names, dtypes,
symbolic dims), the preprocessing its card records, which parameters the optimiser
trains and which sub-model is exported. `create_model("resnet18", embed_dim=512)` builds
one; listing never imports a family module. A task may also keep its own family beside
it and name it as ``"package.module:ATTR"`` instead of a registry name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vq.errors import UsageError
from vq.models import TensorSpec
from vq.registry import Registry


@dataclass(frozen=True)
class ModelIO:
    """What an exported model takes and returns, and how its input is prepared."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    # (rng, batch) -> feeds the export's parity check runs on, for a model whose output
    # is ill-conditioned on iid noise (None: uniform noise, `vq.export.parity.random_feeds`).
    parity_feeds: Callable[[Any, int], dict[str, Any]] | None = None


@dataclass(frozen=True)
class ModelDef:
    """A registered model: `build(rngs=..., **kwargs)` and `io(**kwargs)` share `defaults`.

    `trainable` is the NNX filter of what the optimiser updates (None: every `nnx.Param`);
    it also decides how checkpoints split the state, so export restores with it.
    `exports(**kwargs)` names what the artifact holds when that is not the whole model:
    ``(attribute, family, family_kwargs)``, e.g. the query encoder of a MoCo wrapper.
    `fp8_op_types` are the weighted ONNX ops its FP8 graph quantises (None: all of them);
    `int8_op_types` the ONNX ops its int8 graphs quantise (None: every op).
    """

    build: Callable[..., Any]
    io: Callable[..., ModelIO]
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    trainable: Any = None
    exports: Callable[..., tuple[str, str, dict[str, Any]]] | None = None
    fp8_op_types: frozenset[str] | None = None
    int8_op_types: frozenset[str] | None = None

    def exported(self, name: str, **kwargs: Any) -> tuple[str | None, str, dict[str, Any]]:
        """(attribute or None, family, kwargs) of the part of model `name` that is exported."""
        if self.exports is None:
            return None, name, kwargs
        return self.exports(**kwargs)

    def kwargs(self, **overrides: Any) -> dict[str, Any]:
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise UsageError(f"unknown model arguments {sorted(unknown)}; known: {sorted(self.defaults)}")
        return {**self.defaults, **overrides}


MODELS = Registry("model")
for _depth in (18, 34, 50):
    MODELS.register(
        f"resnet{_depth}",
        f"vq.train.models.resnet:RESNET{_depth}",
        extra="train",
        summary=f"ResNet-{_depth} frame embedding, GeM + projection + L2",
    )
MODELS.register(
    "kvq",
    "vq.train.models.kvq:KVQ_MODEL",
    extra="train",
    summary="KVQ quality transformer: fragment tokens, KL key frames, short + long branches",
)
MODELS.register(
    "kvq_probe",
    "vq.train.models.kvq:KVQ_PROBE",
    extra="train",
    summary="KVQ with only the score head trained (linear probe of a pretrained backbone)",
)
MODELS.register(
    "qpt",
    "vq.train.models.kvq:QPT_MODEL",
    extra="train",
    summary="QPT: contrastive quality-aware pretraining of the KVQ backbone",
)
for _stage in ("base", "control", "distill", "student"):
    MODELS.register(
        f"lpm_{_stage}",
        f"vq.train.models.lpm:LPM_{_stage.upper()}",
        extra="train",
        summary=f"LPM {_stage}: DiT + ControlNet rectified-flow restorer (train/models/lpm.py)",
    )
MODELS.register(
    "hash_head",
    "vq.train.models.hash:HASH_HEAD",
    extra="train",
    summary="binary-code head on embedding vectors: linear + tanh, SimHash init",
)
MODELS.register(
    "audio_fp",
    "vq.train.models.audiofp:AUDIO_FP",
    extra="train",
    summary="learned audio fingerprint: strided convs over a 1 s log-mel window, unit vector",
)
MODELS.register(
    "sr_residual",
    "vq.train.models.sr:SR_RESIDUAL",
    extra="train",
    summary="small residual super-resolution net (pixel shuffle + bilinear skip)",
)


def model_def(name: str) -> ModelDef:
    """The registered family `name`, or the `ModelDef` at ``"package.module:ATTR"``."""
    if ":" in name and name not in MODELS:
        import importlib

        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            from vq.errors import RegistryError

            raise RegistryError(f"model family {name!r} cannot be loaded: {e}") from e
    return MODELS.get(name)


def create_model(name: str, seed: int = 0, **kwargs: Any):
    """Build registered model `name` with `kwargs` over its defaults, in eval-ready form."""
    from flax import nnx

    definition = model_def(name)
    kwargs = definition.kwargs(**kwargs)
    try:
        return definition.build(rngs=nnx.Rngs(seed), **kwargs)
    except ValueError as e:  # a model refuses its options with a ValueError: a user's mistake
        raise UsageError(f"model {name}: {e}") from e


def model_io(name: str, **kwargs: Any) -> ModelIO:
    definition = model_def(name)
    return definition.io(**definition.kwargs(**kwargs))


MODELS.register(
    "moco",
    "vq.train.models.moco:MOCO",
    extra="train",
    summary="MoCo training wrapper around an embedding model (the query encoder is exported)",
)
# Test-only variant (leading underscore: hidden from listings meant for users).
MODELS.register(
    "_resnet_tiny",
    "vq.train.models.resnet:_RESNET_TINY",
    extra="train",
    summary="two-stage toy ResNet for tests",
)
