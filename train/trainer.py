"""One data-parallel training loop for every vq model.

The loop is task-agnostic: a `Task` supplies the model, a pure loss, deterministic
batches and an optional evaluation; the trainer supplies everything else:

* a 1-D mesh over all devices (all hosts), the batch sharded on its ``data`` axis and
  the model/optimiser state replicated, so XLA inserts the gradient all-reduce and a
  step computes exactly what one device would compute on the whole global batch;
* an optax optimiser (AdamW, warmup + cosine schedule, global-norm clipping);
* orbax checkpoints every N steps (last K kept), restored on start: every run resumes;
* metrics as JSONL in the workdir, a progress bar on a terminal.

Batches are a pure function of (seed, step, row), so a resumed run or a run on another
device count sees the same data, and losses match step for step.

Multi-host (TPU pods, GPU clusters): start one process per host with the same command
and either the cluster's own environment (TPU, SLURM, Open MPI are auto-detected) or
``--coordinator host:port --num-processes N --process-id I``; `initialize_distributed`
calls `jax.distributed.initialize`, the mesh then spans every host's devices, and each
host builds only its own rows of the global batch.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from vq.errors import UsageError
from vq.fsutil import atomic_write_text
from vq.train import checkpoints
from vq.train.config import TrainConfig
from vq.train.models import model_def

log = logging.getLogger("vq.train")


__all__ = ["Task", "TrainConfig", "load_trained_model", "train_and_evaluate"]


class Task(Protocol):
    """What a training task provides. See `vq.train.enhance.task` for a complete one.

    `model_name` is a registered model family (or a ``"module:ATTR"`` `ModelDef`); its
    `trainable` filter decides what the optimiser updates, and its `exports` what the
    artifact holds. `data_facts` are recorded in the workdir (and the card).
    """

    name: str
    model_name: str
    model_kwargs: dict[str, Any]
    data_facts: dict[str, Any]

    def create_model(self, seed: int) -> nnx.Module: ...

    def loss(
        self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Pure: scalar loss and a dict of scalar metrics for one global batch."""
        ...

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        """Rows `rows` of global batch `step`: deterministic in (seed, step, row)."""
        ...

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        """Held-out metrics on the host (may return {})."""
        ...


# -- distribution ------------------------------------------------------------------------


def initialize_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Join a multi-host run. No-op for a single process with no cluster environment."""
    if coordinator or num_processes:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    elif any(
        k in os.environ
        for k in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")
    ):
        jax.distributed.initialize()


def make_mesh() -> Mesh:
    """A 1-D ``data`` mesh over every device of every process.

    Auto axis type: XLA propagates the batch sharding through the model (reshapes in
    pixel shuffle included) instead of asking every op for an explicit output sharding.
    """
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def local_rows(global_batch: int) -> range:
    """The rows of the global batch this process feeds (contiguous, by process index)."""
    per_process = global_batch // jax.process_count()
    start = jax.process_index() * per_process
    return range(start, start + per_process)


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble the global, ``data``-sharded batch from this process's rows."""
    sharding = NamedSharding(mesh, P("data"))
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


# -- optimisation -----------------------------------------------------------------------


def make_optimizer(config: TrainConfig) -> tuple[optax.GradientTransformation, Callable]:
    warmup = max(1, min(config.warmup_steps, config.steps - 1))
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(config.steps, warmup + 1),
        end_value=config.learning_rate * 0.01,
    )
    tx = optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(schedule, weight_decay=config.weight_decay),
    )
    return tx, schedule


def make_train_step(
    graphdef: nnx.GraphDef, task: Task, tx: optax.GradientTransformation, wrt: Any = nnx.Param
) -> Callable:
    """The pure step: (params, rest, opt_state, batch, rng) -> (params, rest, opt_state, metrics)."""

    def train_step(params, rest, opt_state, batch, rng):
        def loss_fn(params, rest):
            # copy=True: fresh Variables at this (grad) trace level. Without it Flax 0.12
            # refuses BatchNorm's statistics update ("different trace level"), because
            # `rest` arrives from the enclosing jit trace.
            model = nnx.merge(graphdef, params, rest, copy=True)
            loss, metrics = task.loss(model, batch, rng)
            new_rest = nnx.split(model, wrt, ...)[2]  # updated batch stats, queues, ...
            return loss, (metrics, new_rest)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (metrics, new_rest)), grads = grad_fn(params, rest)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}
        return params, new_rest, opt_state, metrics

    return train_step


# -- the loop ------------------------------------------------------------------------------


def _truncate_metrics(path: Path, after_step: int) -> None:
    """Drop metric lines logged after the restored checkpoint (they will be re-logged)."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= after_step
    ]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def train_and_evaluate(
    task: Task,
    config: TrainConfig,
    workdir: str | os.PathLike[str],
    run_facts: dict[str, Any] | None = None,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Train `task` into `workdir`, resuming from its latest checkpoint; returns final metrics.

    `stop_at` ends this run after that step (with a checkpoint) without finishing the
    schedule: time-sliced or preemptible jobs call again later and resume exactly.
    """
    workdir = Path(workdir)
    n_dev = jax.device_count()
    if config.batch_size < 1 or config.steps < 1:
        raise UsageError(f"batch size and steps must be positive (got {config.batch_size}, {config.steps})")
    if config.batch_size % n_dev:
        raise UsageError(f"batch size {config.batch_size} must be a multiple of the {n_dev} devices")
    mesh = make_mesh()
    replicated = NamedSharding(mesh, P())
    is_main = jax.process_index() == 0

    # -- model, optimiser ----------------------------------------------------------------
    model = task.create_model(config.seed)
    wrt = trainable_filter(task.model_name)
    graphdef, params, rest = nnx.split(model, wrt, ...)
    tx, schedule = make_optimizer(config)
    opt_state = tx.init(params)
    state = {"params": params, "rest": rest, "opt_state": opt_state}

    # -- resume ------------------------------------------------------------------------------
    # Made only now: options the model refuses leave no empty workdir behind.
    workdir.mkdir(parents=True, exist_ok=True)
    manager = checkpoints.checkpoint_manager(workdir, keep=config.keep_checkpoints)
    restored_step, state = checkpoints.restore_checkpoint(manager, state)
    start = 0 if restored_step is None else int(restored_step)
    metrics_path = workdir / "metrics.jsonl"
    if is_main:
        _truncate_metrics(metrics_path, start)
        facts = {
            "task": task.name,
            "model": task.model_name,
            "model_kwargs": task.model_kwargs,
            "export": _export_facts(task),
            "train": asdict(config),
            "data": getattr(task, "data_facts", {}),
            "devices": n_dev,
            "processes": jax.process_count(),
            **(run_facts or {}),
        }
        atomic_write_text(workdir / "config.json", json.dumps(facts, indent=2, default=str) + "\n")
    if start:
        log.info("resuming %s from step %d", workdir, start)
    state = jax.device_put(state, replicated)

    # -- sharded step ------------------------------------------------------------------------
    step_fn = make_train_step(graphdef, task, tx, wrt)
    data_sharding = NamedSharding(mesh, P("data"))
    jit_step = jax.jit(
        step_fn,
        in_shardings=(replicated, replicated, replicated, data_sharding, replicated),
        out_shardings=(replicated, replicated, replicated, replicated),
        donate_argnums=(0, 1, 2),
    )
    base_rng = jax.random.key(config.seed)
    rows = local_rows(config.batch_size)

    def current_model() -> nnx.Module:
        return nnx.merge(graphdef, state["params"], state["rest"])

    def log_line(record: dict[str, Any]) -> None:
        if not is_main:
            return
        with open(metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # -- loop ----------------------------------------------------------------------------------
    history: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    t_last, steps_since = time.perf_counter(), 0
    bar = _progress(start, config.steps, task.name) if is_main else None
    end = config.steps if stop_at is None else max(start, min(stop_at, config.steps))
    for step in range(start, end):
        batch = shard_batch(task.batch(step, rows), mesh)
        rng = jax.random.fold_in(base_rng, step)
        params, rest, opt_state, metrics = jit_step(
            state["params"], state["rest"], state["opt_state"], batch, rng
        )
        state = {"params": params, "rest": rest, "opt_state": opt_state}
        done = step + 1
        steps_since += 1
        if done % config.log_every == 0 or done in (config.steps, end):
            now = time.perf_counter()
            last = {k: float(v) for k, v in jax.device_get(metrics).items()}
            record = {
                "step": done,
                **last,
                "lr": float(schedule(step)),
                "steps_per_s": steps_since / (now - t_last),
            }
            t_last, steps_since = now, 0
            history.append(record)
            log_line(record)
            if bar is not None:
                bar.update(done, record)
        if config.eval_every and done % config.eval_every == 0 and done != config.steps:
            log_line({"step": done, **_prefixed(task.evaluate(_eval_copy(current_model())))})
        if done % config.checkpoint_every == 0 or done in (config.steps, end):
            checkpoints.save_checkpoint(manager, done, state)
    if bar is not None:
        bar.close()
    manager.wait_until_finished()
    if end < config.steps:
        manager.close()
        return {"final": {"step": end, **last}, "history": history, "resumed_from": start}

    final = {"step": config.steps, **last}
    eval_metrics = _prefixed(task.evaluate(_eval_copy(current_model())))
    final.update(eval_metrics)
    if eval_metrics:
        log_line({"step": config.steps, **eval_metrics})
    manager.close()
    return {"final": final, "history": history, "resumed_from": start}


def trainable_filter(model_name: str) -> Any:
    """What the optimiser updates for model family `model_name` (its `ModelDef.trainable`)."""
    return model_def(model_name).trainable or nnx.Param


def load_trained_model(
    model_name: str, model_kwargs: dict[str, Any], workdir: str | os.PathLike[str]
) -> tuple[nnx.Module, int]:
    """The exported part of the model at the latest checkpoint of `workdir` (eval mode)
    and its step.

    Only the model is needed, not the task (which would load its data): the workdir's
    config names the model family, and the checkpoint holds its params and state. The
    family says which parameters were trained (that decides the saved split) and which
    sub-module is exported (the query encoder of a MoCo wrapper).
    """
    from vq.train.models import create_model

    definition = model_def(model_name)
    model = create_model(model_name, **model_kwargs)
    graphdef, params, rest = nnx.split(model, trainable_filter(model_name), ...)
    # orbax restores the saved tree's structure, optimiser state included; its layout
    # depends only on the optimiser chain, not on the hyperparameters.
    tx, _ = make_optimizer(TrainConfig())
    state = {"params": params, "rest": rest, "opt_state": tx.init(params)}
    manager = checkpoints.checkpoint_manager(workdir)
    step, state = checkpoints.restore_checkpoint(manager, state)
    manager.close()
    if step is None:
        raise UsageError(f"{workdir}: no checkpoint to export (train first)")
    model = nnx.merge(graphdef, state["params"], state["rest"])
    attribute, _, _ = definition.exported(model_name, **definition.kwargs(**model_kwargs))
    if attribute:
        model = getattr(model, attribute)
    model.eval()
    return model, int(step)


def _export_facts(task: Task) -> dict[str, Any]:
    """What `vq export onnx` will take from this run (the family decides; recorded here
    so a reader of the workdir sees it)."""
    definition = model_def(task.model_name)
    attribute, family, kwargs = definition.exported(task.model_name, **definition.kwargs(**task.model_kwargs))
    return {"attribute": attribute, "model": family, "kwargs": kwargs}


def _eval_copy(model: nnx.Module) -> nnx.Module:
    model.eval()
    return model


def _prefixed(metrics: dict[str, float]) -> dict[str, float]:
    return {f"eval/{k}": float(v) for k, v in metrics.items()}


class _progress:
    """A rich bar on a terminal; one log line per update otherwise."""

    def __init__(self, start: int, total: int, name: str):
        self.tty = sys.stderr.isatty()
        self.total = total
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn(f"train {name}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=start, info="")

    def update(self, step: int, record: dict[str, Any]) -> None:
        info = f"loss {record['loss']:.4g}  {record['steps_per_s']:.2f} step/s"
        if self.tty:
            self.bar.update(self.task, completed=step, info=info)
        else:
            print(f"step {step}/{self.total}  {info}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            self.bar.stop()
