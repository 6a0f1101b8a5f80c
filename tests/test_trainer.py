"""vq.train.trainer: same losses on 1 and 8 devices, exact resume, metrics and config files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TESTS, needs_train

pytestmark = needs_train

PROBE = """
import json, sys
import jax
from helpers import RegressionTask
from vq.train.trainer import TrainConfig, train_and_evaluate
cfg = TrainConfig(steps=6, batch_size=8, learning_rate=3e-3, warmup_steps=2, log_every=1,
                  checkpoint_every=3, seed=0)
out = train_and_evaluate(RegressionTask(), cfg, sys.argv[1])
print(json.dumps({"devices": jax.device_count(), "losses": [h["loss"] for h in out["history"]],
                  "final": out["final"]}))
"""


def run_probe(workdir: Path, devices: int) -> dict:
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(TESTS),
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(workdir)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_and_eight_devices_follow_the_same_loss_trajectory(tmp_path):
    one = run_probe(tmp_path / "one", 1)
    eight = run_probe(tmp_path / "eight", 8)
    assert one["devices"] == 1 and eight["devices"] == 8
    assert len(one["losses"]) == 6
    # Step 1 is computed before any update: with per-device BatchNorm statistics (one
    # sample per device) it would already be far off, so hold it to float precision.
    np.testing.assert_allclose(one["losses"][0], eight["losses"][0], rtol=1e-5)
    # Later steps drift by float32 summation order (XLA sums 8 partial batches instead of
    # one, and its CPU kernels differ by instruction set), amplified by Adam: its first
    # updates are ~lr * sign(gradient), so a gradient component near zero can flip. Seen:
    # 8.6e-5 on a Zen 5 (AVX-512), 2.4e-4 on an AVX2 EPYC. A sharding bug is far larger:
    # per-device BatchNorm statistics are off at step 1 (held to 1e-5 above), and one
    # wrong row of eight moves the loss by ~1e-2.
    np.testing.assert_allclose(one["losses"], eight["losses"], rtol=1e-3)
    assert one["losses"][-1] < one["losses"][0]  # it learns


def test_resume_continues_exactly(tmp_path):
    from vq.train.trainer import TrainConfig, train_and_evaluate

    from helpers import RegressionTask

    def cfg(steps):
        return TrainConfig(
            steps=steps,
            batch_size=4,
            learning_rate=3e-3,
            warmup_steps=2,
            log_every=1,
            checkpoint_every=2,
            seed=0,
        )

    straight = train_and_evaluate(RegressionTask(), cfg(6), tmp_path / "a")
    first = train_and_evaluate(RegressionTask(), cfg(6), tmp_path / "b", stop_at=4)
    assert first["final"]["step"] == 4 and "eval/mse" not in first["final"]
    # a stop before the checkpoint already reached trains nothing and reports where it stands
    again = train_and_evaluate(RegressionTask(), cfg(6), tmp_path / "b", stop_at=3)
    assert again["final"]["step"] == 4 and again["resumed_from"] == 4 and again["history"] == []
    # a crash after step 4's log line but before any later checkpoint: the resumed run
    # re-logs from the checkpoint instead of duplicating lines
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 5, "loss": 123.0}) + "\n")
    resumed = train_and_evaluate(RegressionTask(), cfg(6), tmp_path / "b")
    assert resumed["resumed_from"] == 4
    a = [h["loss"] for h in straight["history"]]
    b = [h["loss"] for h in resumed["history"]]
    np.testing.assert_allclose(a[4:], b, rtol=1e-6)
    np.testing.assert_allclose(straight["final"]["eval/mse"], resumed["final"]["eval/mse"], rtol=1e-6)

    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    train_steps = [x["step"] for x in lines if "loss" in x]
    assert train_steps == [1, 2, 3, 4, 5, 6] and 123.0 not in [x["loss"] for x in lines if "loss" in x]
    assert any("eval/mse" in x for x in lines)
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["task"] == "regression" and config["train"]["steps"] == 6
    kept = sorted(int(p.name) for p in (tmp_path / "b" / "checkpoints").iterdir() if p.name.isdigit())
    assert kept[-1] == 6 and len(kept) <= 3


def test_batch_must_divide_over_devices(tmp_path):
    import pytest

    from vq.errors import UsageError
    from vq.train.trainer import TrainConfig, train_and_evaluate

    from helpers import RegressionTask

    probe = PROBE.replace("batch_size=8", "batch_size=12")
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(TESTS),
    }
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "x")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "must be a multiple of the 8 devices" in proc.stderr
    with pytest.raises(UsageError):
        train_and_evaluate(RegressionTask(), TrainConfig(steps=1, batch_size=0), tmp_path / "y")
    assert not (tmp_path / "y").exists()  # a refused run leaves no empty workdir


def test_a_model_refusing_its_options_is_one_clear_error(tmp_path):
    from vq.errors import UsageError
    from vq.train.trainer import TrainConfig, train_and_evaluate

    from helpers import RegressionTask

    task = RegressionTask()
    task.model_kwargs = {**task.model_kwargs, "bogus": 1}
    with pytest.raises(UsageError, match=r"unknown model arguments \['bogus'\]"):
        train_and_evaluate(task, TrainConfig(steps=1, batch_size=8), tmp_path / "w")
    assert not (tmp_path / "w").exists()
    from vq.train.models import create_model

    with pytest.raises(UsageError, match="model kvq: oriented must be 0-3 scales"):
        create_model("kvq", oriented=5)
