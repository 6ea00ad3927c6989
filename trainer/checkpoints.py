"""Checkpoints that let a killed run resume exactly where its last checkpoint left it.

A checkpoint holds everything a training step reads: both networks, both
optimizers' state (Adam moments and iteration counts), the EMA generator, the
step counter, and (as a JSON file beside it) the per-step metric history, so
the loss curve of a resumed run covers the whole run. The data stream is not
saved: it is a pure function of the seed and the step (trainer/data.py
``skip_batches``), and so are the noise and dropout masks, so a resumed run
trains on the same batches with the same randomness as an uninterrupted one.

Under MultiWorkerMirroredStrategy every worker saves (the strategy's rule:
saving may take part in collectives), but only the chief writes to the
durable directory; the others write to a private temporary directory that is
deleted. Every worker restores from the chief's directory, which is why
``checkpoint_dir`` must be storage all workers see (the same disk for the
local launcher; a shared volume or bucket for a TFJob).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import Any

import tensorflow as tf

from ganpipe.trainer.config import TrainerConfig

LOGGER = logging.getLogger(__name__)

CHECKPOINTS_SUBDIR = "checkpoints"  # under the run dir when train.checkpoint_dir is empty
CONFIG_FILE = "trainer_config.json"
HISTORY_FILE = "history.json"
KEEP = 2  # the newest two: a run killed while writing one still has the other


class CheckpointMismatchError(ValueError):
    """The checkpoint directory holds a run of a different network; resuming would be wrong."""


def checkpoint_directory(cfg: TrainerConfig, run_dir: str) -> str:
    return cfg.checkpoint_dir or os.path.join(run_dir, CHECKPOINTS_SUBDIR)


class CheckpointKeeper:
    """Saves every ``cfg.checkpoint_every`` steps (and at the end) and restores the newest one."""

    def __init__(self, cfg: TrainerConfig, directory: str, chief: bool, task: str = "worker-0",
                 **trackables: Any):
        self.cfg = cfg
        self.directory = directory
        self.chief = chief
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self._scratch = None if chief else _scratch_directory(directory, task)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self._scratch or directory, max_to_keep=KEEP,
                                                  checkpoint_name="ckpt")

    def restore(self) -> tuple[int, dict[str, Any]]:
        """(step, history) of the newest checkpoint in the chief's directory; (0, {}) when there is none."""
        latest = tf.train.latest_checkpoint(self.directory)
        if latest is None:
            return 0, {}
        self._check_config()
        self.checkpoint.restore(latest).assert_consumed()
        step = int(self.checkpoint.step.numpy())
        LOGGER.info("resumed from checkpoint %s at step %d", latest, step)
        history = _read_json(os.path.join(self.directory, HISTORY_FILE)) or {}
        steps = history.get("steps", [])
        keep = sum(1 for value in steps if value <= step)  # steps after the checkpoint are retrained
        history = {name: values[:keep] for name, values in history.items()}
        return step, history

    def due(self, step: int) -> bool:
        every = self.cfg.checkpoint_every
        return bool(every) and (step % every == 0 or step == self.cfg.steps)

    def save(self, step: int, history: dict[str, Any]) -> None:
        self.checkpoint.step.assign(step)
        if self.chief:
            tf.io.gfile.makedirs(self.directory)
            _write_json(os.path.join(self.directory, CONFIG_FILE), self.cfg.to_dict())
            # Written before the checkpoint: a kill in between leaves extra steps, which restore trims.
            _write_json(os.path.join(self.directory, HISTORY_FILE), history)
        path = self.manager.save(checkpoint_number=step)
        if self.chief:
            LOGGER.info("checkpoint saved at step %d: %s", step, path)

    def close(self) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _check_config(self) -> None:
        saved = _read_json(os.path.join(self.directory, CONFIG_FILE))
        if saved is None:
            return
        try:
            saved_arch = TrainerConfig.from_dict(saved).network_fields()
        except ValueError as error:
            raise CheckpointMismatchError(f"{self.directory}: unreadable {CONFIG_FILE}: {error}") from None
        wanted = self.cfg.network_fields()
        changed = [f"train.{key}: {saved_arch[key]!r} -> {wanted[key]!r}"
                   for key in wanted if saved_arch.get(key) != wanted[key]]
        if changed:
            raise CheckpointMismatchError(
                f"the checkpoints in {self.directory} are of another network ({'; '.join(changed)}); "
                "use a new train.checkpoint_dir (or run dir) or the old settings")


def _scratch_directory(directory: str, task: str) -> str:
    """A non-chief worker's throw-away save location: local, fixed per (checkpoint dir, task), and
    emptied first, so a worker killed and restarted leaves no pile of stale copies behind."""
    digest = hashlib.sha256(f"{directory}|{task}".encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"ganpipe-worker-checkpoints-{digest}")
    shutil.rmtree(path, ignore_errors=True)
    return path


def _write_json(path: str, value: Any) -> None:
    temporary = path + ".tmp"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(json.dumps(value, sort_keys=True))
    tf.io.gfile.rename(temporary, path, overwrite=True)


def _read_json(path: str) -> Any:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.loads(handle.read())
