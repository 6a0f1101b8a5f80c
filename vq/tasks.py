"""The task table: one registered `TaskDef` per model task, and what hangs off it.

A model task (embed, enhance; kvq, qpt and lpm next) is one unit. Its `TaskDef` names,
as lazy ``"module:attr"`` strings so listing imports nothing heavy:

* ``config``     ``train/<task>/config.py:get_config``: one typed dataclass (a
                 `vq.train.config.TrainConfig` plus the task's fields), with a smoke variant;
* ``task``       ``train/<task>/task.py:<Task>``, built from that config: model family,
                 input pipeline, loss, in-training evaluation (needs the ``train`` extra);
* ``stage``      the runtime stage (`vq.stages.base.Stage`) that runs the exported model;
* ``evaluators`` the `vq eval` harnesses that measure it (`vq.eval`);
* ``default_model`` the zoo artifact used when a job names none;
* ``serves``     the runtime task of its exported models if not its own (``lpm-distill``
                 models are ``enhance`` models: the same stage runs them).

`register_task` files a `TaskDef` into `TASKS` and its stage and evaluators into `STAGES`
and `EVALUATORS`, so adding a task is one call here, its folder under ``train/``, and its
stage module. (A third-party package registers through the entry-point groups
``vq.task``, ``vq.stage`` and ``vq.evaluator``, one entry in each.) `vq train TASK`,
`vq export onnx WORKDIR` and `vq eval NAME` are built from these tables; no task name
appears in the CLI.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from vq.errors import MissingExtraError, RegistryError
from vq.registry import Registry


@dataclass(frozen=True)
class TaskDef:
    """What vq knows about one model task (see the module docstring)."""

    name: str
    summary: str
    config: str  # "module:get_config"
    task: str  # "module:TaskClass" (train extra)
    stage: str | None = None  # "module:StageClass"
    evaluators: dict[str, str] = field(default_factory=dict)  # eval name -> "module:EVALUATOR"
    default_model: str | None = None
    # The runtime task its exported models do, when that is another task's (the LPM
    # stages train models that the `enhance` stage runs); the card records this one.
    serves: str | None = None

    def get_config(self, smoke: bool = False) -> Any:
        """The task's typed config: the shipped settings, or a seconds-long smoke run."""
        return _resolve(self.config, f"task '{self.name}' config")(smoke=smoke)

    def build_task(self, config: Any) -> Any:
        """The training task for `config` (imports JAX: needs the train extra)."""
        try:
            cls = _resolve(self.task, f"task '{self.name}'")
        except ImportError as e:
            raise MissingExtraError(f"vq train {self.name}", "train", e) from e
        return cls(config)


def _resolve(ref: str, what: str) -> Any:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RegistryError(f"{what}: {module} has no attribute {attr!r}") from None
    return obj


TASKS = Registry("task")
STAGES = Registry("stage")
EVALUATORS = Registry("evaluator")


def register_task(defn: TaskDef, origin: str = "builtin") -> None:
    """File `defn` and its stage and evaluators (each name once across all tasks)."""
    TASKS.register(defn.name, defn, summary=defn.summary, origin=origin)
    if defn.stage:
        STAGES.register(defn.name, defn.stage, summary=f"runs {defn.name} models", origin=origin)
    for name, ref in defn.evaluators.items():
        EVALUATORS.register(name, ref, summary=f"task: {defn.name}", origin=origin)


@contextmanager
def temporary_task(defn: TaskDef) -> Iterator[TaskDef]:
    """Register `defn` (with its stage and evaluators) for one ``with`` block (tests)."""
    with ExitStack() as stack:
        stack.enter_context(TASKS.temporary(defn.name, defn, summary=defn.summary))
        if defn.stage:
            stack.enter_context(STAGES.temporary(defn.name, defn.stage))
        for name, ref in defn.evaluators.items():
            stack.enter_context(EVALUATORS.temporary(name, ref))
        yield defn


def default_models() -> dict[str, str]:
    """Task -> the zoo model a job uses when none is named."""
    return {n: d.default_model for n in TASKS.names() if (d := TASKS.get(n)).default_model}


def task_def(name: str) -> TaskDef:
    defn = TASKS.get(name)
    if not isinstance(defn, TaskDef):
        raise RegistryError(f"task '{name}' is registered as {type(defn).__name__}, not a TaskDef")
    return defn


# -- the tasks ------------------------------------------------------------------------------------

register_task(
    TaskDef(
        name="embed",
        summary="copy-detection frame embedding: MoCo on copy-disguise edits of images and video frames",
        config="vq.train.embed.config:get_config",
        task="vq.train.embed.task:EmbedTask",
        stage="vq.stages.embed:Embedder",
        evaluators={"pairs": "vq.eval.pairs:EVALUATOR", "dedup": "vq.eval.dedup:EVALUATOR"},
        default_model="vq-embed",
    )
)
register_task(
    TaskDef(
        name="enhance",
        summary="x2 super-resolution on image folders (HR + MATLAB-bicubic LR pairs), L1-trained",
        config="vq.train.enhance.config:get_config",
        task="vq.train.enhance.task:EnhanceTask",
        stage="vq.stages.enhance:Enhancer",
        evaluators={"sr": "vq.eval.sr:EVALUATOR"},
        default_model="vq-enhance-x2",
    )
)
register_task(
    TaskDef(
        name="kvq",
        summary="no-reference video quality (1-5): fragment transformer, KL key frames, label-free chains",
        config="vq.train.kvq.config:get_config",
        task="vq.train.kvq.task:KvqTask",
        stage="vq.stages.quality:QualityScorer",
        evaluators={"quality": "vq.eval.quality:EVALUATOR", "ladder": "vq.eval.ladder:EVALUATOR"},
        default_model="vq-kvq",
    )
)
register_task(
    TaskDef(
        name="qpt",
        summary="quality-aware pretraining of the KVQ backbone: contrastive, same degradation = positive",
        config="vq.train.qpt.config:get_config",
        task="vq.train.qpt.task:QptTask",
    )
)
register_task(
    TaskDef(
        name="hash",
        summary="binary library codes: hashing head on embedding vectors, ranking loss on edited pairs",
        config="vq.train.hash.config:get_config",
        task="vq.train.hash.task:HashTask",
        stage="vq.stages.hash:Hasher",
        default_model="vq-hash",
    )
)
register_task(
    TaskDef(
        name="audiofp",
        summary="learned audio fingerprint: a vector per second of log-mel, InfoNCE on edited recordings",
        config="vq.train.audiofp.config:get_config",
        task="vq.train.audiofp.task:AudioFpTask",
        stage="vq.stages.audio_fingerprint:AudioFingerprinter",
        default_model="vq-audiofp",
    )
)
# Harnesses that measure a pipeline step rather than a model task.
EVALUATORS.register("content-box", "vq.eval.content_box:EVALUATOR")
EVALUATORS.register("audio", "vq.eval.audio:EVALUATOR")
for _stage, _summary in (
    ("base", "LPM base: DiT rectified-flow generator of high-quality residual detail"),
    ("control", "LPM ControlNet on the low-quality frame over a frozen lpm-base (25-step teacher)"),
    ("distill", "LPM consistency distillation of the lpm-control teacher to one step"),
):
    register_task(
        TaskDef(
            name=f"lpm-{_stage}",
            summary=_summary,
            config=f"vq.train.lpm.config:get_{_stage}_config",
            task=f"vq.train.lpm.task:Lpm{_stage.title()}Task",
            serves=None if _stage == "base" else "enhance",
        )
    )
