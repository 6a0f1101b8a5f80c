"""Plugin registries: a name maps to a lazy ``"module:attr"`` string.

One `Registry` per kind of plugin (backend, decoder, stage, index, aligner, filter,
model). Listing names never imports the code behind them, so `vq backends` stays fast
and works without the optional extras. Loading an entry whose imports fail raises
`MissingExtraError` naming the extra to install.

Third parties add entries through the entry-point group ``vq.<kind>``, e.g. in their
``pyproject.toml``::

    [project.entry-points."vq.backend"]
    openvino = "vq_openvino:OpenVinoBackend"

Entry points are read on first use, not at ``import vq``. Re-registering a name is an
error (no silent overwrite); tests use `Registry.temporary` to add an entry for one
``with`` block.

Spec strings may carry literal arguments, ``"diagonal(min_length=3)"``; they are parsed
with `ast.literal_eval`, never `eval`.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vq.errors import MissingExtraError, RegistryError


@dataclass(frozen=True)
class Entry:
    """One registered plugin: where it lives and what to install if it cannot import."""

    name: str
    target: str | Any  # "package.module:attr.sub" or an already-imported object
    extra: str | None = None
    summary: str = ""
    origin: str = "builtin"


class Registry:
    """Name -> lazy plugin for one kind."""

    def __init__(self, kind: str, ordered: bool = False):
        """`ordered`: list names in registration order instead of sorted (where the order
        carries meaning, e.g. seeded draws that index into the list)."""
        self.kind = kind
        self.ordered = ordered
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, Any] = {}
        self._entry_points_read = False

    # -- registration -------------------------------------------------------------

    def register(
        self,
        name: str,
        target: str | Any,
        *,
        extra: str | None = None,
        summary: str = "",
        origin: str = "builtin",
    ) -> None:
        """Add `name`. A duplicate raises `RegistryError`: plugins never shadow each other."""
        if not name or not isinstance(name, str):
            raise RegistryError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if isinstance(target, str) and ":" not in target:
            raise RegistryError(
                f"{self.kind} '{name}': target must look like 'package.module:attr', got {target!r}"
            )
        if name in self._entries:
            old = self._entries[name]
            raise RegistryError(
                f"{self.kind} '{name}' is already registered (by {old.origin}); "
                f"refusing to overwrite it with {origin}"
            )
        self._entries[name] = Entry(name, target, extra, summary, origin)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    @contextmanager
    def temporary(self, name: str, target: str | Any, **kwargs: Any) -> Iterator[None]:
        """Register `name` for the duration of a ``with`` block (for tests)."""
        self.register(name, target, origin="temporary", **kwargs)
        try:
            yield
        finally:
            self.unregister(name)

    # -- lookup ---------------------------------------------------------------------

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching an fnmatch `pattern`, sorted (or in registration order
        for an `ordered` registry). Imports nothing."""
        self._read_entry_points()
        names = [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]
        return names if self.ordered else sorted(names)

    def entry(self, name: str) -> Entry:
        self._read_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"unknown {self.kind} '{name}' (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        self._read_entry_points()
        return name in self._entries

    def get(self, name: str) -> Any:
        """Import and return the object behind `name` (cached)."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        obj = entry.target if not isinstance(entry.target, str) else self._import(entry)
        self._loaded[name] = obj
        return obj

    def create(self, spec: str, **overrides: Any) -> Any:
        """Call the factory named by `spec` ("name" or "name(1, k=2)") with its arguments."""
        name, args, kwargs = parse_spec(spec)
        return self.get(name)(*args, **{**kwargs, **overrides})

    # -- internals ------------------------------------------------------------------

    def _import(self, entry: Entry) -> Any:
        module_name, _, attr_path = entry.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as e:
            if entry.extra:
                raise MissingExtraError(f"{self.kind} '{entry.name}'", entry.extra, e) from e
            raise RegistryError(f"{self.kind} '{entry.name}' failed to import {module_name}: {e}") from e
        for part in attr_path.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise RegistryError(
                    f"{self.kind} '{entry.name}': {module_name} has no attribute {attr_path!r}"
                ) from None
        return obj

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        for ep in importlib.metadata.entry_points(group=f"vq.{self.kind}"):
            dist = getattr(ep, "dist", None)
            origin = f"entry point of {dist.name}" if dist is not None else "entry point"
            self.register(ep.name, ep.value, origin=origin)


def parse_spec(spec: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """Split ``"name(1, k='a')"`` into ``("name", (1,), {"k": "a"})``; literals only."""
    spec = spec.strip()
    if "(" not in spec:
        return spec, (), {}
    try:
        call = ast.parse(spec, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError("not a call")
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError) as e:
        raise RegistryError(f"cannot parse plugin spec {spec!r}: {e}") from None
    return call.func.id, args, kwargs
