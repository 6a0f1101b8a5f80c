"""The Backend/Session contract every runtime implements.

A backend turns a model artifact into a `Session`; a session maps named numpy inputs
to named numpy outputs. The base class owns the lifecycle and checks every feed against
the card (names, dtypes, ranks, fixed dims, and that a symbolic dim such as ``B`` has
one size across inputs), so `ort.py`, `trt.py` and `jax.py` only write `_run`/`_close`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vq.errors import BackendError
from vq.models import Artifact, TensorSpec


class Backend(Protocol):
    """What a registry entry of kind ``backend`` provides."""

    name: str

    def available(self) -> bool:
        """True when this backend can load models here. Never raises."""
        ...

    def unavailable_reason(self) -> str:
        """One line saying what is missing when `available()` is False."""
        ...

    def load(
        self, artifact: Artifact, device: str = "auto", precision: str = "fp32", **options: Any
    ) -> Session: ...


class Session:
    """A loaded model. Use as a context manager so device memory is freed."""

    backend_name = "base"

    def __init__(self, artifact: Artifact, device: str, precision: str):
        self.artifact = artifact
        self.device = device
        self.precision = precision
        self.inputs: dict[str, TensorSpec] = {t.name: t for t in artifact.card.inputs}
        self.output_names: list[str] = [t.name for t in artifact.card.outputs]
        self.last_run_s: float | None = None
        self._closed = False

    # -- public -------------------------------------------------------------------

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on `feeds` (name -> array) and return name -> array."""
        if self._closed:
            raise BackendError(f"{self.backend_name} session for '{self.artifact.name}' is closed")
        arrays = self.check_feeds(feeds)
        start = time.perf_counter()
        outputs = self._run(arrays)
        self.last_run_s = time.perf_counter() - start
        return outputs

    def describe(self) -> dict[str, Any]:
        """What actually runs: backend, device, precision and backend-specific detail."""
        return {
            "backend": self.backend_name,
            "device": self.device,
            "precision": self.precision,
            "model": self.artifact.name,
        }

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; explicit close() is preferred
        # No module globals here (contextlib): at interpreter exit they may be None already.
        try:  # noqa: SIM105 (see above)
            self.close()
        except Exception:
            pass

    # -- feed validation ----------------------------------------------------------

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.inputs if n not in feeds]
        unexpected = [n for n in feeds if n not in self.inputs]
        if missing or unexpected:
            raise BackendError(
                f"model '{self.artifact.name}' takes inputs {list(self.inputs)}; "
                f"missing {missing}, unexpected {unexpected}"
            )
        sizes: dict[str, int] = {}
        arrays: dict[str, np.ndarray] = {}
        for name, spec in self.inputs.items():
            arr = feeds[name]
            if not isinstance(arr, np.ndarray):
                raise BackendError(f"input '{name}' must be a numpy array, got {type(arr).__name__}")
            if arr.dtype != np.dtype(spec.dtype):
                raise BackendError(f"input '{name}' must be {spec.dtype}, got {arr.dtype}")
            if arr.ndim != len(spec.shape):
                raise BackendError(
                    f"input '{name}' must have shape {list(spec.shape)}, got {list(arr.shape)}"
                )
            for axis, (want, got) in enumerate(zip(spec.shape, arr.shape, strict=True)):
                if isinstance(want, int):
                    if want != got:
                        raise BackendError(
                            f"input '{name}' axis {axis} must be {want}, got {got} (shape {list(spec.shape)})"
                        )
                elif sizes.setdefault(want, got) != got:
                    raise BackendError(
                        f"symbolic dim '{want}' is {sizes[want]} elsewhere but {got} in '{name}'"
                    )
                if got == 0:
                    raise BackendError(f"input '{name}' has an empty axis {axis}")
            arrays[name] = np.ascontiguousarray(arr)
        return arrays

    # -- for subclasses -----------------------------------------------------------

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError  # abstract: every backend overrides it

    def _close(self) -> None:
        """Free backend resources; called once."""


def cache_dir() -> Path:
    """Where built engines and timing caches go when the artifact folder is read-only."""
    root = os.environ.get("VQ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "vq"
    )
    return Path(root)


def writable_dir_for(artifact: Artifact, sub: str) -> Path:
    """`artifact/sub` when the artifact folder is writable, else the user cache."""
    local = artifact.root / sub
    if os.access(artifact.root, os.W_OK):
        local.mkdir(exist_ok=True)
        return local
    shared = cache_dir() / sub / artifact.name
    shared.mkdir(parents=True, exist_ok=True)
    return shared
