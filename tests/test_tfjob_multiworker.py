"""The TFJob's worker commands, run here as processes over loopback, train one model together.

This is the cluster's code path minus Kubernetes: the command is taken from
the TFJob manifest the Trainer would submit (only `python` is resolved to
this venv's interpreter), and each process gets the TF_CONFIG that
ganpipe.trainer.cluster.tf_config builds, which is the shape the training operator
injects (same task type, indices and cluster size; loopback ports instead of
`<job>-worker-<i>.<ns>.svc:2222`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from ganpipe.components.tfjob_trainer import spec  # noqa: E402
from ganpipe.components.tfjob_trainer.settings import TFJobSettings  # noqa: E402
from ganpipe import contract  # noqa: E402
from ganpipe.trainer import cluster  # noqa: E402
from ganpipe.trainer.config import TrainerConfig  # noqa: E402

WORKERS = 2
TIMEOUT_S = 300


def write_examples(split_dir: Path, count: int = 64, size: int = 16) -> str:
    """GZIP TFRecords of tf.Examples as ImageExampleGen writes them; returns the glob the Trainer passes."""
    rng = np.random.default_rng(0)
    split_dir.mkdir(parents=True)
    yy, xx = np.mgrid[0:size, 0:size]
    with tf.io.TFRecordWriter(str(split_dir / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
        for index in range(count):
            cy, cx = rng.uniform(3, size - 3, size=2)
            pixels = np.clip(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0) * 230
                             + rng.integers(0, 20, (size, size)), 0, 255).astype(np.uint8)[..., None]
            encoded = tf.io.encode_png(pixels).numpy()
            ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))  # noqa: E731
            raw = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))  # noqa: E731
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                contract.IMAGE_KEY: raw(encoded), contract.HEIGHT_KEY: ints(size), contract.WIDTH_KEY: ints(size),
                contract.CHANNELS_KEY: ints(1), contract.LABEL_KEY: ints(contract.UNKNOWN_LABEL),
                contract.SOURCE_KEY: raw(f"blob#{index}".encode()),
                contract.SHA256_KEY: raw(hashlib.sha256(encoded).hexdigest().encode()),
            })).SerializeToString())
    return str(split_dir / "*")


def test_tfjob_workers_train_together_and_the_chief_exports(tmp_path: Path):
    from ganpipe.trainer.local_workers import free_ports

    train_files = write_examples(tmp_path / "examples" / "Split-train")
    model_dir, run_dir = tmp_path / "model" / "Format-Serving", tmp_path / "model_run"
    cfg = TrainerConfig(image_size=16, batch_size=16, steps=4, log_every=2, sample_every=4, workers=WORKERS)
    job = spec.build_tfjob(spec.job_name("ganpipe", str(model_dir)), TFJobSettings(image="ganpipe:test"),
                           cfg, WORKERS, [train_files], str(model_dir), str(run_dir))
    command = spec.worker_container(job)["command"]
    assert command[:3] == ["python", "-m", "ganpipe.trainer.task"]
    local_command = [sys.executable, *command[1:]]

    addresses = [f"127.0.0.1:{port}" for port in free_ports(WORKERS)]
    name, namespace, port = job["metadata"]["name"], job["metadata"]["namespace"], spec.worker_port(job)
    processes, logs = [], []
    for index in range(WORKERS):
        tf_config = cluster.tf_config(addresses, index)
        on_cluster = spec.expected_tf_config(name, namespace, spec.worker_replicas(job), index, port)
        assert tf_config["task"] == on_cluster["task"]
        assert {k: len(v) for k, v in tf_config["cluster"].items()} == \
            {k: len(v) for k, v in on_cluster["cluster"].items()}
        log = (tmp_path / f"worker-{index}.log").open("w")
        logs.append(log)
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        processes.append(subprocess.Popen(local_command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in processes):
                break  # a dead worker would leave the other blocked in a collective
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for log in logs:
            log.close()
    outputs = [(tmp_path / f"worker-{i}.log").read_text() for i in range(WORKERS)]
    for index, (process, output) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"worker-{index} exited {process.returncode}:\n{output[-3000:]}"
        # Each process trained as one replica of one 2-replica model.
        assert f"{WORKERS} replica(s)" in output, output[-2000:]

    # The chief's export is the Model artifact: a complete SavedModel with the contract's signatures.
    assert (model_dir / "saved_model.pb").exists()
    loaded = tf.saved_model.load(str(model_dir))
    images = loaded.signatures[contract.SEEDS_SIGNATURE](seeds=tf.constant([0, 1, 2], tf.int64))
    assert images[contract.IMAGES_OUTPUT].shape == (3, 16, 16, 1)
    assert images[contract.IMAGES_OUTPUT].dtype == tf.uint8
