"""Model artifacts: one directory, one `card.json`, one ONNX file per precision.

An artifact is what every backend loads (the Triton model-repository idea: one folder,
many backends)::

    vq-enhance-x2/
      card.json           name, task, I/O with symbolic dims, preprocessing, files + sha256,
                          export facts (opset, versions, parity), training facts (command, metrics)
      model.onnx          fp32 graph (ONNX Runtime, TensorRT)
      model.int8-cpu.onnx optional static Q/DQ graph, uint8 activations (fuses on ORT CPU)
      model.int8-gpu.onnx optional static Q/DQ graph, symmetric int8 (TensorRT, ORT CUDA)
      model.fp16.onnx     optional fp16 graph (inputs/outputs stay fp32)
      params.msgpack      optional Flax params, so the `jax` backend can rebuild the model

Files are verified against the card's sha256 before a backend sees them. Shipped
defaults live in `vq/zoo/`; `VQ_MODEL_PATH` (colon-separated) adds directories to search.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vq.errors import ModelError, UsageError
from vq.fsutil import atomic_write_text, sha256_file
from vq.preprocess.normalize import COLOR_MODES

CARD_FILE = "card.json"
CARD_SCHEMA_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8", "fp8")  # fp8: E4M3 Q/DQ, for TensorRT on Hopper/Ada
# Graph variants in `files`. int8 has one per target: ONNX Runtime's CPU kernels only fuse
# Q/DQ into QLinearConv with uint8 activations (U8S8), while TensorRT's explicit
# quantisation takes only symmetric signed int8 (zero point 0).
GRAPHS = ("fp32", "fp16", "int8-cpu", "int8-gpu", "fp8")


def graph_for(precision: str, device: str) -> str:
    """Which graph variant serves `precision` on `device` ("cpu" or "cuda")."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision == "int8":
        return "int8-gpu" if device == "cuda" else "int8-cpu"
    return precision


ZOO_DIR = Path(__file__).parent / "zoo"

Dim = int | str  # a fixed size or a symbolic name such as "B"


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of one model input or output; str dims are symbolic."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TensorSpec:
        shape = tuple(d if isinstance(d, str) else int(d) for d in obj["shape"])
        return cls(str(obj["name"]), str(obj["dtype"]), shape)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass
class ModelCard:
    """The contents of `card.json`. Unknown keys are kept in `extra` and written back."""

    name: str
    task: str
    version: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    files: dict[str, dict[str, Any]]  # graph variant (GRAPHS) -> {"path", "sha256", "bytes"}
    description: str = ""
    layout: str = "NHWC"
    preprocessing: dict[str, Any] = field(default_factory=dict)
    flax: dict[str, Any] | None = None  # {"model", "kwargs", "params", "sha256"}
    export: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str = "card.json") -> ModelCard:
        required = ("name", "task", "version", "inputs", "outputs", "files")
        missing = [k for k in required if k not in obj]
        if missing:
            raise ModelError(f"{where}: missing field(s) {', '.join(missing)}")
        try:
            known = {f for f in cls.__dataclass_fields__ if f != "extra"}
            files = {str(p): dict(v) for p, v in obj["files"].items()}
            for graph, entry in files.items():
                if graph not in GRAPHS:
                    raise ValueError(f"unknown graph variant {graph!r} in files")
                if "path" not in entry or "sha256" not in entry:
                    raise ValueError(f"files.{graph} needs 'path' and 'sha256'")
            if "fp32" not in files:
                raise ValueError("files must include an fp32 model")
            color = obj.get("preprocessing", {}).get("color", "RGB")
            if color not in COLOR_MODES:  # read at load, not at the first frame
                raise ValueError(f"unknown preprocessing.color {color!r} (known: {', '.join(COLOR_MODES)})")
            return cls(
                name=str(obj["name"]),
                task=str(obj["task"]),
                version=str(obj["version"]),
                inputs=[TensorSpec.from_json(t) for t in obj["inputs"]],
                outputs=[TensorSpec.from_json(t) for t in obj["outputs"]],
                files=files,
                description=str(obj.get("description", "")),
                layout=str(obj.get("layout", "NHWC")),
                preprocessing=dict(obj.get("preprocessing", {})),
                flax=dict(obj["flax"]) if obj.get("flax") else None,
                export=dict(obj.get("export", {})),
                training=dict(obj.get("training", {})),
                metrics=dict(obj.get("metrics", {})),
                extra={k: v for k, v in obj.items() if k not in known and k != "schema"},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"{where}: malformed card ({e})") from None

    def to_json(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["inputs"] = [t.to_json() for t in self.inputs]
        obj["outputs"] = [t.to_json() for t in self.outputs]
        extra = obj.pop("extra")
        return {"schema": CARD_SCHEMA_VERSION, **obj, **extra}


class Artifact:
    """A model directory with its parsed card; hands out checksum-verified file paths."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        card_path = self.root / CARD_FILE
        if not card_path.is_file():
            raise ModelError(f"{self.root}: not a model artifact (no {CARD_FILE})")
        try:
            obj = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelError(f"{card_path}: unreadable card ({e})") from None
        if not isinstance(obj, dict):
            raise ModelError(f"{card_path}: card must be a JSON object")
        self.card = ModelCard.from_json(obj, where=str(card_path))
        self._verified: set[str] = set()

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def precisions(self) -> list[str]:
        """User-facing precisions with at least one graph (int8 on either target counts)."""
        have = set(self.card.files)
        return [p for p in PRECISIONS if p in have or (p == "int8" and have & {"int8-cpu", "int8-gpu"})]

    def graph_entry(self, precision: str, device: str = "cpu") -> tuple[str, dict[str, Any]]:
        """(variant, files entry) of the graph that serves `precision` on `device`."""
        graph = graph_for(precision, device)
        if graph not in self.card.files:
            have = ", ".join(self.card.files)
            raise ModelError(
                f"model '{self.name}' has no {graph} graph (has: {have}); "
                f"export it with --precision {precision}"
            )
        return graph, self.card.files[graph]

    def onnx_path(self, precision: str = "fp32", device: str = "cpu") -> Path:
        """Path to the ONNX graph for `precision` on `device`, verified against its sha256."""
        return self._checked(self.graph_entry(precision, device)[1])

    def params_path(self) -> Path:
        """Path to the Flax params (for the `jax` backend), verified against its sha256."""
        if not self.card.flax or "params" not in self.card.flax:
            raise ModelError(f"model '{self.name}' carries no Flax params for the jax backend")
        return self._checked({"path": self.card.flax["params"], "sha256": self.card.flax["sha256"]})

    def verify(self) -> dict[str, bool]:
        """Check every file named in the card; raises on the first mismatch."""
        result = {g: bool(self._checked(e)) for g, e in self.card.files.items()}
        if self.card.flax and "params" in self.card.flax:
            result["params"] = bool(self.params_path())
        return result

    def _checked(self, entry: dict[str, Any]) -> Path:
        path = (self.root / entry["path"]).resolve()
        if self.root.resolve() not in path.parents:
            raise ModelError(f"model '{self.name}': file {entry['path']!r} escapes the artifact")
        key = str(path)
        if key in self._verified:
            return path
        if not path.is_file():
            raise ModelError(f"model '{self.name}': missing file {entry['path']}")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise ModelError(
                f"model '{self.name}': {entry['path']} fails its checksum "
                f"(card {entry['sha256'][:12]}…, file {digest[:12]}…); re-export or reinstall it"
            )
        self._verified.add(key)
        return path

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, {str(self.root)!r})"


def write_card(root: str | os.PathLike[str], card: ModelCard) -> Path:
    path = Path(root) / CARD_FILE
    atomic_write_text(path, json.dumps(card.to_json(), indent=2, sort_keys=False) + "\n")
    return path


def file_entry(root: str | os.PathLike[str], relpath: str) -> dict[str, Any]:
    """The card's `files` entry for a file already written inside the artifact."""
    path = Path(root) / relpath
    return {"path": relpath, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def search_path() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("VQ_MODEL_PATH", "").split(os.pathsep) if p]
    return [*extra, ZOO_DIR]


def list_models() -> list[Artifact]:
    """Every artifact on the search path (first one wins for a repeated name)."""
    seen: dict[str, Artifact] = {}
    for base in search_path():
        if not base.is_dir():
            continue
        for card in sorted(base.glob(f"*/{CARD_FILE}")):
            try:
                artifact = Artifact(card.parent)
            except ModelError:
                continue  # a broken card is reported by `vq models show`, not by listing
            seen.setdefault(artifact.name, artifact)
    return list(seen.values())


def load_model(name_or_path: str | os.PathLike[str] | None = None, task: str | None = None) -> Artifact:
    """Resolve a model by directory path or zoo name; `None` means the task's default."""
    if name_or_path is None:
        from vq.tasks import default_models

        name_or_path = default_models().get(task or "")
        if name_or_path is None:
            raise ModelError(f"no default model for task {task!r}; pass --model")
    candidate = Path(name_or_path)
    if (candidate / CARD_FILE).is_file():
        artifact = Artifact(candidate)
    else:
        name = str(name_or_path)
        for base in search_path():
            if (base / name / CARD_FILE).is_file():
                artifact = Artifact(base / name)
                break
        else:
            known = ", ".join(a.name for a in list_models()) or "none"
            raise ModelError(f"no model named {name!r} (a directory with {CARD_FILE} or one of: {known})")
    if task is not None and artifact.card.task != task:
        raise ModelError(f"model '{artifact.name}' is a {artifact.card.task} model, not {task}")
    return artifact
