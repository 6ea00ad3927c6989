"""One definition of a training cluster: TF_CONFIG and the worker command.

The local multi-worker launcher (processes on loopback) and the Kubernetes
TFJob builder both take their TF_CONFIG and worker command lines from here,
so what the tests run on one machine is what the cluster runs.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

from ganpipe.trainer.config import TrainerConfig

WORKER_MODULE = "ganpipe.trainer.task"
WORKER_TASK_TYPE = "worker"
TF_CONFIG_ENV = "TF_CONFIG"


def tf_config_from_env() -> dict[str, Any]:
    """This process's parsed TF_CONFIG, or {} when unset or empty (no TensorFlow import)."""
    raw = os.environ.get(TF_CONFIG_ENV, "").strip()
    return json.loads(raw) if raw else {}


def cluster_size(config: dict[str, Any]) -> int:
    """Training tasks (chief + workers) a TF_CONFIG names; 1 for an empty one."""
    tasks = config.get("cluster", {})
    return max(1, len(tasks.get("chief", [])) + len(tasks.get(WORKER_TASK_TYPE, [])))


def tf_config(worker_addresses: Sequence[str], index: int) -> dict:
    """TF_CONFIG for worker `index` of a cluster of `worker_addresses` ("host:port").

    Worker 0 is the chief (MultiWorkerMirroredStrategy's convention when no
    separate "chief" task is listed): it alone exports and writes summaries.
    """
    if not worker_addresses:
        raise ValueError("a cluster needs at least one worker address")
    if not 0 <= index < len(worker_addresses):
        raise ValueError(f"worker index {index} outside a cluster of {len(worker_addresses)}")
    return {
        "cluster": {WORKER_TASK_TYPE: list(worker_addresses)},
        "task": {"type": WORKER_TASK_TYPE, "index": index},
    }


def worker_args(
    train_files: Sequence[str],
    model_dir: str,
    run_dir: str,
    config: TrainerConfig,
) -> list[str]:
    """Arguments after `python -m ganpipe.trainer.task`, identical for every worker."""
    return [
        "--train-files", *train_files,
        "--model-dir", model_dir,
        "--run-dir", run_dir,
        "--config-json", json.dumps(config.to_dict(), sort_keys=True),
    ]


def worker_command(
    train_files: Sequence[str],
    model_dir: str,
    run_dir: str,
    config: TrainerConfig,
    python: str | None = None,
) -> list[str]:
    """The full command a worker process (or TFJob container) runs."""
    return [python or sys.executable, "-m", WORKER_MODULE, *worker_args(train_files, model_dir, run_dir, config)]
