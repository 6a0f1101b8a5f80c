"""Training: Flax NNX models, tasks and one data-parallel optax loop (needs `vq[train]`).

Layout (after the Flax examples): `trainer.py` is the generic loop, `config.py` the typed
settings every task extends, `checkpoints.py` saves and restores, `models/` holds the
registered model families, and each task has a folder with `config.py` (its dataclass and
`get_config(smoke=False)`), `input_pipeline.py` (data) and `task.py` (model + loss +
in-training evaluation). The task table that ties a folder to its stage and evaluators is
`vq.tasks`.
"""
