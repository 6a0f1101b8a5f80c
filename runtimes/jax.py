"""JAX backend: rebuild the Flax model from the artifact and run it under `jax.jit`.

This is the numerical reference the ONNX graphs are checked against; it needs the
`train` extra and the artifact's `params.msgpack`. Only fp32: reduced precision belongs
to the serving backends, where the graph carries it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from vq.errors import BackendError, MissingExtraError
from vq.models import Artifact
from vq.runtimes.base import Session


class JaxBackend:
    name = "jax"

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in ("jax", "flax"))

    def unavailable_reason(self) -> str:
        return "jax and flax are not installed: pip install 'vq[train]'"

    def devices(self) -> list[str]:
        # Decided without importing jax: a CUDA plugin package means jax can see GPUs.
        has_cuda = any(
            importlib.util.find_spec(m) is not None for m in ("jax_cuda12_plugin", "jax_cuda13_plugin")
        )
        return ["cpu", *(["cuda"] if has_cuda else [])]

    def load(
        self, artifact: Artifact, device: str = "auto", precision: str = "fp32", **options: Any
    ) -> JaxSession:
        if options:
            raise BackendError(f"jax backend: unknown options {sorted(options)}")
        if precision != "fp32":
            raise BackendError("the jax backend is the fp32 reference; run fp16/int8 on ort or trt")
        if "params" not in (artifact.card.flax or {}):
            raise BackendError(
                f"model '{artifact.name}' ships no Flax params (exported with --no-params); "
                "the jax backend needs them"
            )
        return JaxSession(artifact, device)


class JaxSession(Session):
    backend_name = "jax"

    def __init__(self, artifact: Artifact, device: str):
        try:
            import jax
            from flax import nnx

            from vq.train.checkpoints import load_params
            from vq.train.models import create_model
        except ImportError as e:
            raise MissingExtraError("the jax backend", "train", e) from e
        platform = {"auto": None, "cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}.get(device, "?")
        if platform == "?":
            raise BackendError(f"jax backend: unknown device {device!r} (cpu or cuda)")
        try:
            self._device = jax.devices(platform)[0] if platform else jax.devices()[0]
        except RuntimeError as e:
            raise BackendError(f"jax backend: no {device} device ({e})") from None
        super().__init__(artifact, self._device.platform, "fp32")

        spec = artifact.card.flax
        model = create_model(spec["model"], **spec.get("kwargs", {}))
        load_params(model, artifact.params_path())
        model.eval()
        graphdef, state = nnx.split(model)
        self._state = jax.device_put(state, self._device)
        self._jax = jax

        def apply(state: Any, *inputs: Any) -> Any:
            return nnx.merge(graphdef, state)(*inputs)

        self._apply = jax.jit(apply)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [self._jax.device_put(feeds[name], self._device) for name in self.inputs]
        result = self._apply(self._state, *args)
        outputs = result if isinstance(result, tuple | list) else (result,)
        return {name: np.asarray(value) for name, value in zip(self.output_names, outputs, strict=True)}

    def _close(self) -> None:
        self._state = None
