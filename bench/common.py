"""What every benchmark shares: repeats, medians with spread, and the result file.

Each benchmark compares both sides in the same process and run, reports
ratios, and records the machine and commit next to the figures, so a number
in bench/results/ can always be traced to what produced it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # benchmarks print tables, not TF's start-up chatter

# run_all points each benchmark at results/quick or results/full through this variable.
RESULTS_DIR = os.environ.get("GANPIPE_BENCH_RESULTS") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                       "results")


def machine() -> dict:
    """The facts a reader needs to compare figures across machines."""
    try:
        import tensorflow as tf

        gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
        tf_version = tf.__version__
    except ImportError:
        gpus, tf_version = [], None
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "tensorflow": tf_version,
        "gpus": gpus,
        "commit": _commit(),
    }


def _commit() -> str | None:
    """HEAD's short hash, with "-dirty" when tracked files differ from it (figures from uncommitted code)."""
    repo = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=repo, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                 text=True, cwd=repo, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if changed else head


def summarize(values: list[float]) -> dict:
    """Median and spread (min, max) of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_result(name: str, document: dict, results_dir: str = RESULTS_DIR) -> str:
    """Writes <results_dir>/<name>.json (with machine facts) and returns its path."""
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, f"{name}.json")
    document = {"benchmark": name, "machine": machine(), **document}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
    return path
