"""vq.registry: lazy entries, no silent overwrite, extras named, entry points, spec parsing."""

from __future__ import annotations

import sys

import pytest

from vq.errors import MissingExtraError, RegistryError
from vq.registry import Registry, parse_spec


def test_lazy_entries_are_not_imported_by_listing():
    reg = Registry("widget")
    reg.register("ghost", "vq_no_such_module_xyz:Thing", extra="gpu")
    reg.register("real", "json:dumps")
    assert reg.names() == ["ghost", "real"]  # listing works without importing
    assert "vq_no_such_module_xyz" not in sys.modules
    assert reg.get("real")({"a": 1}) == '{"a": 1}'


def test_missing_extra_names_the_install_command():
    reg = Registry("widget")
    reg.register("ghost", "vq_no_such_module_xyz:Thing", extra="gpu")
    with pytest.raises(MissingExtraError, match=r"pip install 'vq\[gpu\]'"):
        reg.get("ghost")


def test_import_error_without_extra_and_bad_attribute():
    reg = Registry("widget")
    reg.register("ghost", "vq_no_such_module_xyz:Thing")
    reg.register("noattr", "json:not_there")
    with pytest.raises(RegistryError, match="failed to import"):
        reg.get("ghost")
    with pytest.raises(RegistryError, match="no attribute"):
        reg.get("noattr")


def test_duplicates_are_refused():
    reg = Registry("widget")
    reg.register("a", "json:dumps")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", "json:loads")
    assert reg.get("a").__name__ == "dumps"


def test_bad_targets_and_unknown_names():
    reg = Registry("widget")
    with pytest.raises(RegistryError, match=r"package\.module:attr"):
        reg.register("a", "json.dumps")
    with pytest.raises(RegistryError, match="unknown widget 'zzz'"):
        reg.get("zzz")


def test_temporary_registration_is_removed_afterwards():
    reg = Registry("widget")
    with reg.temporary("tmp", lambda: 42):
        assert reg.get("tmp")() == 42
    assert "tmp" not in reg
    with reg.temporary("tmp", "json:dumps"):  # can be registered again after removal
        assert "tmp" in reg


def test_fnmatch_listing():
    reg = Registry("widget")
    for name in ("ort", "ort-cuda", "trt"):
        reg.register(name, "json:dumps")
    assert reg.names("ort*") == ["ort", "ort-cuda"]


def test_create_parses_literal_arguments():
    reg = Registry("widget")
    reg.register("pair", "builtins:dict")
    assert reg.create("pair(a=1, b='x')") == {"a": 1, "b": "x"}
    assert parse_spec("diag(3, min_len=2.5)") == ("diag", (3,), {"min_len": 2.5})
    assert parse_spec("plain") == ("plain", (), {})
    with pytest.raises(RegistryError, match="cannot parse"):
        parse_spec("diag(__import__('os').system('true'))")


def install_fake_plugin(site, monkeypatch, name: str, group: str, line: str) -> None:
    """A real installed-distribution layout (dist-info with entry_points.txt) on sys.path."""
    dist = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{line}\n")
    monkeypatch.syspath_prepend(str(site))


def test_entry_points_are_read_on_first_lookup(tmp_path, monkeypatch):
    """A third-party package declares a `vq.widget` entry point; the registry finds it."""
    install_fake_plugin(tmp_path, monkeypatch, "vq-plugin-demo", "vq.widget", "fancy = json:dumps")
    reg = Registry("widget")
    assert reg.names() == ["fancy"]
    assert reg.entry("fancy").origin == "entry point of vq-plugin-demo"
    assert reg.get("fancy")([1]) == "[1]"


def test_entry_point_cannot_shadow_a_builtin(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "vq-plugin-bad", "vq.gadget", "ort = json:loads")
    reg = Registry("gadget")
    reg.register("ort", "json:dumps")
    with pytest.raises(RegistryError, match="refusing to overwrite"):
        reg.names()


def test_builtin_backends_are_registered_lazily():
    from vq.runtimes import BACKENDS

    assert BACKENDS.names() == ["jax", "ort", "trt"]
    assert BACKENDS.entry("trt").extra == "gpu"
