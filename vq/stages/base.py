"""The runtime stage: a model artifact, a backend session opened on first use, and the
pre/post-processing around it.

A stage serves one task (its ``task`` class attribute, the card's ``task``); `open_stage`
finds the right class for any artifact from `vq.tasks.STAGES`. The session is loaded
lazily (Polygraphy's loaders: nothing heavy happens until the first run, and `open()`
forces it where a command wants backend errors before any work). Feeds are named arrays
of any rank, checked by the session against the card (a frame batch ``B,H,W,3``, a clip
batch ``N,T,H,W,3``, a diffusion model's ``(x, lq, t)``); `run_batched` splits every
input that carries the symbolic batch dim ``B`` into chunks and joins the outputs.
Subclasses add only what their task needs around `run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vq.models import Artifact, TensorSpec, load_model
from vq.runtimes import Session, open_session


class Stage:
    """Base class: subclasses set `task` and add task-shaped methods (`embed_frames`, ...)."""

    task: ClassVar[str] = ""

    def __init__(
        self,
        model: str | Path | Artifact | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        **session_options: Any,
    ):
        self.artifact = model if isinstance(model, Artifact) else load_model(model, task=self.task or None)
        self.backend, self.precision = backend, precision
        self._session_options = session_options
        self._session: Session | None = None

    # -- the model -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def card(self):
        return self.artifact.card

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        return {t.name: t for t in self.artifact.card.inputs}

    @property
    def outputs(self) -> dict[str, TensorSpec]:
        return {t.name: t for t in self.artifact.card.outputs}

    @property
    def session(self) -> Session:
        """The backend session, loaded on first use."""
        if self._session is None:
            self._session = open_session(
                self.artifact, backend=self.backend, precision=self.precision, **self._session_options
            )
        return self._session

    def open(self):
        """Load the session now (so a bad backend fails before any work); returns self."""
        _ = self.session
        return self

    # -- running --------------------------------------------------------------------------

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One backend call: named inputs -> named outputs, checked against the card."""
        return self.session.run(feeds)

    def run_batched(self, feeds: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        """`run` in chunks of `batch` along axis 0 of every input whose first dim is ``B``;
        other inputs go whole to every chunk. Outputs are joined along axis 0."""
        batched = [n for n, spec in self.inputs.items() if spec.shape and spec.shape[0] == "B"]
        if not batched:
            return self.run(feeds)
        total = len(feeds[batched[0]])
        if total <= batch:
            return self.run(feeds)
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, total, batch):
            chunk = {n: (a[start : start + batch] if n in batched else a) for n, a in feeds.items()}
            for name, out in self.run(chunk).items():
                parts.setdefault(name, []).append(out)
        return {name: np.concatenate(chunks) for name, chunks in parts.items()}

    # -- lifecycle --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What runs: backend, device, precision, model (loads the session)."""
        return self.session.describe()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stage(
    model: str | Path | Artifact, backend: str = "auto", precision: str = "fp32", **kwargs: Any
) -> Stage:
    """The stage for any artifact, chosen by its card's task (`vq.tasks.STAGES`)."""
    from vq.tasks import STAGES

    artifact = model if isinstance(model, Artifact) else load_model(model)
    return STAGES.get(artifact.card.task)(artifact, backend=backend, precision=precision, **kwargs)
