"""Checkpoints: a run stopped and restarted from its checkpoint ends exactly where an uninterrupted run ends.

The multi-process version (a worker SIGKILLed under the launcher) is in
tests/test_distributed.py; this one runs in-process and asserts bitwise
equality, which a single process on one machine can promise.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.test_trainer import TINY, _blobs, _write_split  # noqa: E402
from tests.conftest import identity_checkpoints  # noqa: E402
from ganpipe.trainer.config import TrainerConfig  # noqa: E402
from ganpipe.trainer.train import train_run  # noqa: E402


@pytest.fixture(scope="module")
def pattern(tmp_path_factory) -> str:
    uri = tmp_path_factory.mktemp("examples")
    _write_split(uri / "Split-train", _blobs(40, 16, 1, seed=1))
    return str(uri / "Split-train" / "*")


def _checkpoint_tensors(directory: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(directory)))
    tensors = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
    return {key: np.asarray(value) for key, value in tensors.items() if not isinstance(value, bytes)}


def test_resumed_run_equals_the_uninterrupted_run(tmp_path: Path, pattern: str):
    """Weights, both optimizers' state, the EMA, the step counter, the data position and the metric
    history all carry over: the resumed run is bit for bit the run that never stopped.

    The resumed halves use different run dirs and one durable checkpoint_dir, as two executions of
    TFX's Trainer (each with a fresh ModelRun directory) would.
    """
    cfg = TrainerConfig(**{**TINY, "steps": 6, "checkpoint_every": 2, "ema_decay": 0.9, "log_every": 1,
                           "sample_every": 6})
    whole = train_run(cfg, [pattern], str(tmp_path / "whole"))

    durable = tmp_path / "durable"
    split = dataclasses.replace(cfg, checkpoint_dir=str(durable))
    first = train_run(dataclasses.replace(split, steps=4), [pattern], str(tmp_path / "first"))
    resumed = train_run(split, [pattern], str(tmp_path / "second"))

    assert (whole.start_step, first.start_step, resumed.start_step) == (0, 0, 4)
    assert not (tmp_path / "first" / "checkpoints").exists()  # they went to checkpoint_dir
    assert Path(resumed.checkpoint_dir) == identity_checkpoints(durable) == Path(first.checkpoint_dir)
    durable = Path(resumed.checkpoint_dir)
    assert sorted(path.name for path in durable.glob("ckpt-*.index")) == ["ckpt-4.index", "ckpt-6.index"]

    for exported, expected in zip(resumed.generator.weights, whole.generator.weights):  # the EMA generator
        np.testing.assert_array_equal(np.array(exported), np.array(expected))
    resumed_state = _checkpoint_tensors(durable)
    whole_state = _checkpoint_tensors(Path(whole.checkpoint_dir))
    assert resumed_state.keys() == whole_state.keys()
    for key, value in whole_state.items():
        np.testing.assert_array_equal(resumed_state[key], value, err_msg=key)
    assert int(resumed_state["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 6
    # Adam's iteration count: 6 updates, so the optimizer state was restored, not rebuilt at step 4.
    assert int(resumed_state["generator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 6

    history = json.loads((durable / "history.json").read_text())
    assert history["steps"] == [1, 2, 3, 4, 5, 6]
    assert history == json.loads((Path(whole.checkpoint_dir) / "history.json").read_text())
    assert (tmp_path / "second" / "loss_curve.png").exists()


def test_a_durable_checkpoint_dir_resumes_only_the_same_data_and_settings(tmp_path: Path, pattern: str, capfd):
    """A scheduled pipeline shares one train.checkpoint_dir across runs: run 2 on other data, or with
    another batch size or network, must train from step 0 (beside run 1's checkpoints, naming what
    differs), never restore run 1's finished generator and train 0 steps; the same data and settings
    resume and say so."""
    durable = tmp_path / "durable"
    cfg = TrainerConfig(**{**TINY, "steps": 2, "checkpoint_every": 2, "log_every": 2, "sample_every": 2,
                           "checkpoint_dir": str(durable)})
    first = train_run(cfg, [pattern], str(tmp_path / "run1"))
    assert first.start_step == 0
    capfd.readouterr()

    other_data = tmp_path / "other" / "Split-train"
    _write_split(other_data, _blobs(40, 16, 1, seed=2))
    on_new_data = train_run(cfg, [str(other_data / "*")], str(tmp_path / "run2"))
    assert on_new_data.start_step == 0
    assert on_new_data.checkpoint_dir != first.checkpoint_dir
    assert "holds checkpoints of another run (the training data)" in capfd.readouterr().out

    for changed, named in ((dict(batch_size=4), "train.batch_size: 8 -> 4"),
                           (dict(spectral_norm=True), "train.spectral_norm: False -> True")):
        fresh = train_run(dataclasses.replace(cfg, **changed), [pattern], str(tmp_path / "run3"))
        assert fresh.start_step == 0, changed
        assert named in capfd.readouterr().out

    longer = train_run(dataclasses.replace(cfg, steps=4, log_every=1), [pattern], str(tmp_path / "run4"))
    assert longer.start_step == 2 and longer.checkpoint_dir == first.checkpoint_dir
    assert f"trainer: resumed at step 2 from {first.checkpoint_dir}" in capfd.readouterr().out