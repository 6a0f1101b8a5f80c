"""The README's Quickstart is what CI runs, and the documented commands exist."""

from __future__ import annotations

import re

from vq.cli.app import main

from conftest import REPO


def quickstart_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.+?)\n```", section, flags=re.S)


def test_quickstart_has_two_commands_and_ci_runs_the_second():
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == commands[1]
    assert "vq run" in commands[0] and "pytest" in commands[1]


def test_every_command_in_the_readme_exists(capsys):
    readme = (REPO / "README.md").read_text()
    used = sorted(set(re.findall(r"^\s*(?:\$ )?vq ([a-z]+(?: [a-z][a-z0-9-]*)?)", readme, flags=re.M)))
    assert used
    for command in used:
        code = main([*command.split(), "--help"])
        capsys.readouterr()
        assert code == 0, f"README mentions `vq {command}`, which does not exist"


def test_every_package_directory_is_installed():
    """pyproject lists packages explicitly (the sibling folders map into vq.*): a new
    sub-package missing there would work in an editable install and vanish in a wheel."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    roots = {v: k for k, v in config["package-dir"].items()}
    on_disk = set()
    for folder, package in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            on_disk.add(".".join([package, *rel.parts]) if rel.parts else package)
    assert on_disk == listed, (sorted(on_disk - listed), sorted(listed - on_disk))
