"""Training: Flax NNX models, tasks and one data-parallel optax loop (needs `vq[train]`).

Layout (after the Flax examples): `trainer.py` is the generic loop, `checkpoints.py`
saves and restores, `models/` holds the registered model families, and each task has a
folder with `input_pipeline.py` (data), `task.py` (model + loss + eval) and `config.py`.
"""

from vq.registry import Registry

# Task name -> "module:factory" building a Task from CLI-level options.
TASKS = Registry("task")
TASKS.register(
    "enhance",
    "vq.train.enhance.task:EnhanceTask",
    extra="train",
    summary="x2 super-resolution on image folders (HR + MATLAB-bicubic LR pairs)",
)
TASKS.register(
    "embed",
    "vq.train.embed.task:EmbedTask",
    extra="train",
    summary="copy-detection frame embedding: MoCo on copy-disguise edits",
)
