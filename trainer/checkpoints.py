"""Checkpoints that let a killed run resume exactly where its last checkpoint left it.

A checkpoint holds everything a training step reads: both networks, both
optimizers' state (Adam moments and iteration counts), the EMA generator, the
step counter, and (as a JSON file beside it) the per-step metric history, so
the loss curve of a resumed run covers the whole run. The data stream is not
saved: it is a pure function of the seed and the step (trainer/data.py
``skip_batches``), and so are the noise and dropout masks, so a resumed run
trains on the same batches with the same randomness as an uninterrupted one.

A checkpoint belongs to one run identity: the training data (by content) and
every setting that changes what a step computes (:func:`run_identity`). Each
identity has its own subdirectory of the checkpoint directory, so a durable
``train.checkpoint_dir`` shared by scheduled runs resumes only a run of the
same data and settings (a killed pod, or a longer ``train.steps``); a run on
new data, or with another batch size or network, starts fresh beside it and
says so, instead of restoring yesterday's generator and training 0 steps.

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

from ganpipe.atomic import write_atomically
from ganpipe.trainer.config import TrainerConfig

LOGGER = logging.getLogger(__name__)

CHECKPOINTS_SUBDIR = "checkpoints"  # under the run dir when train.checkpoint_dir is empty
CONFIG_FILE = "trainer_config.json"
IDENTITY_FILE = "run_identity.json"
HISTORY_FILE = "history.json"
KEEP = 2  # the newest two: a run killed while writing one still has the other
# Settings that do not change what a step computes, so a run may resume under other values:
# train longer, log or checkpoint more often, or use more workers (the 1-vs-N equivalence,
# tests/test_distributed.py).
RESUMABLE_ACROSS = ("steps", "log_every", "sample_every", "checkpoint_every", "checkpoint_dir", "workers")
_READ_CHUNK = 1 << 20


def data_fingerprint(files: list[str]) -> str:
    """sha256 (hex) of the training files' base names and bytes, in name order.

    Names without their directories: the same Examples re-ingested under another
    artifact URI is the same data. Reads every byte once (about 2 s per GB).
    """
    digest = hashlib.sha256()
    for path in sorted(files, key=os.path.basename):
        digest.update(os.path.basename(path).encode("utf-8", "surrogateescape") + b"\0")
        with tf.io.gfile.GFile(path, "rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def run_identity(cfg: TrainerConfig, files: list[str]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: {"data": fingerprint, "config": {field: value}}.

    ``cfg`` should be resolved (no auto values left), so that ``auto`` and the
    value it picks are the same run.
    """
    config = {key: value for key, value in cfg.to_dict().items() if key not in RESUMABLE_ACROSS}
    return {"data": data_fingerprint(files), "config": config}


def checkpoint_directory(cfg: TrainerConfig, run_dir: str, identity: dict[str, Any]) -> str:
    """<train.checkpoint_dir or run_dir/checkpoints>/<16 hex digits of the run identity>."""
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(cfg.checkpoint_dir or os.path.join(run_dir, CHECKPOINTS_SUBDIR), key)


class CheckpointKeeper:
    """Saves every ``cfg.checkpoint_every`` steps (and at the end) and restores the newest one."""

    def __init__(self, cfg: TrainerConfig, directory: str, chief: bool, task: str = "worker-0",
                 identity: dict[str, Any] | None = None, **trackables: Any):
        """``directory``: this run identity's (:func:`checkpoint_directory`); ``identity`` is recorded there."""
        self.cfg = cfg
        self.directory = directory
        self.identity = identity
        self.chief = chief
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self._scratch = None if chief else _scratch_directory(directory, task)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self._scratch or directory, max_to_keep=KEEP,
                                                  checkpoint_name="ckpt")

    def restore(self) -> tuple[int, dict[str, Any]]:
        """(step, history) of the newest checkpoint in the chief's directory; (0, {}) when there is none."""
        latest = tf.train.latest_checkpoint(self.directory)
        if latest is None:
            if self.chief:
                self._say_why_fresh()
            return 0, {}
        self.checkpoint.restore(latest).assert_consumed()
        step = int(self.checkpoint.step.numpy())
        LOGGER.info("resumed from checkpoint %s at step %d", latest, step)  # every worker: logs show they agree
        if self.chief:
            print(f"trainer: resumed at step {step} from {latest}", flush=True)
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
            if self.identity is not None:
                _write_json(os.path.join(self.directory, IDENTITY_FILE), self.identity)
            # Written before the checkpoint: a kill in between leaves extra steps, which restore trims.
            _write_json(os.path.join(self.directory, HISTORY_FILE), history)
        path = self.manager.save(checkpoint_number=step)
        if self.chief:
            LOGGER.info("checkpoint saved at step %d: %s", step, path)

    def close(self) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _say_why_fresh(self) -> None:
        """Names what differs from the newest other run in the same checkpoint directory, if any."""
        base = os.path.dirname(self.directory)
        others = []
        for name in tf.io.gfile.listdir(base) if tf.io.gfile.isdir(base) else []:
            path = os.path.join(base, name.rstrip("/"), IDENTITY_FILE)
            if path != os.path.join(self.directory, IDENTITY_FILE) and tf.io.gfile.exists(path):
                others.append((tf.io.gfile.stat(path).mtime_nsec, path))
        if not others or self.identity is None:
            return
        newest = _read_json(max(others)[1])
        differences = ["the training data" if newest.get("data") != self.identity["data"] else ""]
        saved, wanted = newest.get("config", {}), self.identity["config"]
        differences += [f"train.{key}: {saved.get(key)!r} -> {wanted[key]!r}"
                        for key in sorted(wanted) if saved.get(key) != wanted[key]]
        print(f"trainer: {base} holds checkpoints of another run ({'; '.join(filter(None, differences))}): "
              f"starting fresh in {self.directory}", flush=True)


def _scratch_directory(directory: str, task: str) -> str:
    """A non-chief worker's throw-away save location: local, fixed per (checkpoint dir, task), and
    emptied first, so a worker killed and restarted leaves no pile of stale copies behind."""
    digest = hashlib.sha256(f"{directory}|{task}".encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"ganpipe-worker-checkpoints-{digest}")
    shutil.rmtree(path, ignore_errors=True)
    return path


def _write_json(path: str, value: Any) -> None:
    write_atomically(path, json.dumps(value, sort_keys=True))


def _read_json(path: str) -> Any:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.loads(handle.read())
