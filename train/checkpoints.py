"""Saving and restoring model state.

Two formats, two purposes:

* training checkpoints (orbax `CheckpointManager`): params, the rest of the model state
  (batch statistics) and the optimiser state, saved every N steps, last K kept, restored
  on start so every run is resumable;
* `params.msgpack` in a model artifact: the full model state as a flat
  ``{"path/to/leaf": array}`` map, which the `jax` backend loads into a freshly built
  model. Flat string keys keep it readable by plain msgpack and independent of how
  NNX nests lists (integer keys).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from vq.errors import ModelError
from vq.fsutil import atomic_write_bytes


def _key(path: tuple[Any, ...]) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def flatten_state(tree: Any) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {_key(path): np.asarray(leaf) for path, leaf in leaves}


def save_params(model: nnx.Module, path: str | os.PathLike[str]) -> Path:
    """Write the model's whole state (params and batch stats) as flat msgpack, atomically."""
    flat = flatten_state(nnx.to_pure_dict(nnx.state(model)))
    atomic_write_bytes(path, serialization.msgpack_serialize(flat))
    return Path(path)


def load_params(model: nnx.Module, path: str | os.PathLike[str]) -> nnx.Module:
    """Load a `save_params` file into `model` (built with the same config); checks every leaf."""
    try:
        flat = serialization.msgpack_restore(Path(path).read_bytes())
    except Exception as e:
        raise ModelError(f"{path}: unreadable params file ({e})") from None
    state = nnx.state(model)
    template = nnx.to_pure_dict(state)
    expected = flatten_state(template)
    missing = sorted(set(expected) - set(flat))
    unexpected = sorted(set(flat) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{path}: params do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )

    def pick(p: tuple[Any, ...], leaf: Any) -> np.ndarray:
        value = np.asarray(flat[_key(p)])
        if value.shape != np.shape(leaf):
            raise ModelError(f"{path}: {_key(p)} has shape {value.shape}, model wants {np.shape(leaf)}")
        return value

    restored = jax.tree_util.tree_map_with_path(pick, template)
    nnx.replace_by_pure_dict(state, restored)
    nnx.update(model, state)
    return model


def checkpoint_manager(workdir: str | os.PathLike[str], keep: int = 3):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)


def save_checkpoint(manager: Any, step: int, tree: Any) -> None:
    import orbax.checkpoint as ocp

    manager.save(step, args=ocp.args.StandardSave(tree))


def restore_checkpoint(manager: Any, tree: Any, step: int | None = None) -> tuple[int | None, Any]:
    """Restore the latest (or given) step into the structure of `tree`; (None, tree) if none."""
    import orbax.checkpoint as ocp

    step = manager.latest_step() if step is None else step
    if step is None:
        return None, tree
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
    return step, manager.restore(step, args=ocp.args.StandardRestore(abstract))
