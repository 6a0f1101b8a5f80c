"""The runtime path never imports JAX; missing extras are named, not tracebacks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_import_vq_and_runtimes_leaves_jax_out():
    proc = run_python(
        "import sys, vq, vq.runtimes, vq.models, vq.registry, vq.stages.enhance, "
        "vq.pipelines.enhance, vq.bench, vq.cli.app; print('jax' in sys.modules)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_every_runtime_module_imports_without_jax():
    """Every module of the runtime packages (jobs and evaluations included), imported
    one after another: none of them pulls in JAX or Flax."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import vq\n"
        "packages = ['vq.pipelines', 'vq.eval', 'vq.stages', 'vq.synth', 'vq.media', 'vq.match', "
        "'vq.index', 'vq.preprocess', 'vq.audio', 'vq.cli']\n"
        "names = []\n"
        "for package in packages:\n"
        "    module = importlib.import_module(package)\n"
        "    names.append(package)\n"
        "    for info in pkgutil.walk_packages(module.__path__, package + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "        names.append(info.name)\n"
        "import vq.tasks, vq.runtimes, vq.models\n"
        "heavy = [m for m in ('jax', 'flax', 'optax', 'orbax') if m in sys.modules]\n"
        "print(len(names), heavy)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    count, heavy = proc.stdout.strip().split(" ", 1)
    assert int(count) > 60 and heavy == "[]"


def test_enhance_job_end_to_end_without_jax(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "a.png")
    code = (
        "import sys\n"
        "from vq.cli.app import main\n"
        f"code = main(['enhance', {str(tmp_path / 'a.png')!r}, '--out', {str(tmp_path / 'out')!r}, "
        "'--backend', 'ort-cpu', '--json'])\n"
        "assert code == 0, code\n"
        "assert 'jax' not in sys.modules and 'flax' not in sys.modules, 'runtime imported JAX'\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "a_x2.png").is_file()


def test_missing_train_extra_is_one_clear_line(tmp_path):
    """Simulate a runtime-only install: importing jax fails; `vq train` names the extra."""
    code = (
        "import sys\n"
        "sys.modules['jax'] = None  # as if the train extra were not installed\n"
        "from vq.cli.app import main\n"
        f"code = main(['train', 'enhance', '--data', {str(tmp_path)!r}, '--out', {str(tmp_path / 'w')!r}])\n"
        "sys.exit(code)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 3
    assert (
        proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[0]]
        and "pip install 'vq[train]'" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
