"""Where a run's starting weights come from (`vq.train.starting_points`): the checks every
task's --init / --anchor / --base shares. Loading real weights is covered by the kvq and
lpm training tests."""

import json

import pytest

from vq.errors import UsageError
from vq.train.starting_points import recorded_run, starting_point


def _workdir(tmp_path, **config):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


def test_a_workdir_must_be_of_the_task_named(tmp_path):
    work = _workdir(tmp_path / "qpt", task="qpt", model="qpt", model_kwargs={}, command="vq train qpt")
    assert recorded_run(work, "qpt")["command"] == "vq train qpt"
    with pytest.raises(UsageError, match="not a vq train kvq workdir"):
        recorded_run(work, "kvq")
    with pytest.raises(UsageError, match="not a vq train kvq workdir"):
        recorded_run(str(tmp_path / "missing"), "kvq")


def test_a_workdir_must_have_trained_the_model_named(tmp_path):
    work = _workdir(tmp_path / "w", task="kvq", model="kvq", model_kwargs={"dim": 16}, data={"train": []})
    assert starting_point(work, task="kvq", model="kvq", option="--init")["model_kwargs"] == {"dim": 16}
    with pytest.raises(UsageError, match=r"--anchor .*: a kvq run, not sr_residual"):
        starting_point(work, task="kvq", model="sr_residual", option="--anchor")


def test_a_model_must_exist_and_carry_the_params_named():
    with pytest.raises(UsageError, match="--init no-such-model: not a vq train kvq workdir, nor a kvq model"):
        starting_point("no-such-model", task="kvq", model="kvq", option="--init")
    # The shipped quality model carries kvq params, not an enhancer's.
    with pytest.raises(UsageError, match="carries no sr_residual Flax params"):
        starting_point("vq-kvq", task="kvq", model="sr_residual", option="--anchor")
    begun = starting_point("vq-kvq", task="kvq", model="kvq", option="--init")
    assert begun["model_files"]["name"] == "vq-kvq" and len(begun["model_files"]["params_sha256"]) == 64
    assert begun["command"].startswith("vq train kvq")
