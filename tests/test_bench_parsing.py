"""The multi-worker benchmark reads throughput from the trainer's own progress lines.

If ganpipe.trainer.train's log line changes, the benchmark must fail loudly rather than
report nothing or the wrong interval; this trains a few real steps and parses
what the chief logs, as the launcher shows it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bench.multiworker_overhead import steady_rate
from tests.test_trainer import TINY, _blobs, _write_split
from ganpipe.trainer.config import TrainerConfig
from ganpipe.trainer.train import train_run


def test_steady_rate_reads_the_chiefs_progress_lines_and_drops_the_first(tmp_path: Path, caplog):
    _write_split(tmp_path / "Split-train", _blobs(32, 16, 1, seed=0))
    cfg = TrainerConfig(**{**TINY, "steps": 6, "log_every": 2, "checkpoint_every": 0})
    with caplog.at_level(logging.INFO, logger="ganpipe.trainer.train"):
        train_run(cfg, [str(tmp_path / "Split-train" / "*")], str(tmp_path / "run"))
    worker_format = logging.Formatter("%(asctime)s %(name)s: %(message)s")  # ganpipe.trainer.task's
    lines = [f"[worker-0] {worker_format.format(record)}" for record in caplog.records if "steps/s" in record.message]
    assert len(lines) == 3  # steps 2, 4, 6

    rates = [float(line.rsplit(" ", 2)[-2]) for line in lines]
    log = "\n".join(["[launcher] starting 1 worker(s)", *lines, "[worker-1] step 9/9 x=1 99.00 steps/s"])
    assert steady_rate(log) == pytest.approx(4 / (2 / rates[1] + 2 / rates[2]))


def test_steady_rate_refuses_a_log_without_progress_lines():
    with pytest.raises(RuntimeError, match="no progress lines"):
        steady_rate("[worker-0] something else\n")
    with pytest.raises(RuntimeError, match="only one logged interval"):
        steady_rate("[worker-0] 2026 ganpipe.trainer.train: step 10/10 g_loss=1 3.00 steps/s\n")
