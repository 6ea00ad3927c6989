"""Distributed training for real: worker processes on loopback under MultiWorkerMirroredStrategy.

- The launcher: TF_CONFIG per worker, prefixed logs, fail-fast, no orphans
  (with a stand-in worker executable, so the supervision itself is timed
  without TensorFlow start-up).
- Exactness: 2 workers with B/2 rows each train the same weights as 1
  worker with B rows (to float summation order); 2 local replicas under
  MirroredStrategy likewise.
- Fault tolerance: a worker SIGKILLed mid-run stops the run; the same
  command then resumes from the last checkpoint and exports a valid model.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.conftest import identity_checkpoints  # noqa: E402
from tests.test_trainer import TINY, _blobs, _write_split, summarize_exports_in_clean_process  # noqa: E402
from ganpipe.trainer import cluster  # noqa: E402
from ganpipe.trainer.config import TrainerConfig  # noqa: E402
from ganpipe.trainer.local_workers import launch  # noqa: E402
from ganpipe.trainer.task import run_fn  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
GANPIPE = Path(sys.executable).with_name("ganpipe")


@pytest.fixture(scope="module")
def pattern(tmp_path_factory) -> str:
    uri = tmp_path_factory.mktemp("examples")
    _write_split(uri / "Split-train", _blobs(40, 16, 1, seed=1))
    return str(uri / "Split-train" / "*")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _pids(output: str) -> dict[int, int]:
    return {int(index): int(pid) for index, pid in re.findall(r"\[launcher\] worker-(\d+) pid (\d+)", output)}


def _checkpoint(directory: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(directory)))
    values = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
    return {key: np.asarray(value) for key, value in values.items() if not isinstance(value, bytes)}


# ---------------------------------------------------------------- cluster definition

def test_tf_config_names_the_cluster_and_the_task(monkeypatch):
    addresses = ["127.0.0.1:2222", "127.0.0.1:2223"]
    config = cluster.tf_config(addresses, 1)
    assert config == {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 1}}
    assert cluster.cluster_size(config) == 2
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert cluster.tf_config_from_env() == config
    monkeypatch.setenv("TF_CONFIG", "")
    assert cluster.tf_config_from_env() == {} and cluster.cluster_size({}) == 1


# ---------------------------------------------------------------- launcher supervision

STAND_IN_WORKER = textwrap.dedent("""\
    #!{python}
    # Stands in for `python -m ganpipe.trainer.task`: same argv and TF_CONFIG, behaviour chosen by STAND_IN_MODE.
    import json, os, signal, sys, time
    config = json.loads(os.environ["TF_CONFIG"])
    index = config["task"]["index"]
    print("worker", index, "argv", " ".join(sys.argv[1:3]), "cluster", ",".join(config["cluster"]["worker"]),
          flush=True)
    sys.stdout.write("bar 1/2\\rbar 2/2\\r")
    sys.stdout.flush()
    if os.environ["STAND_IN_MODE"] == "ok":
        sys.exit(0)
    if index == 1:
        time.sleep(0.5)
        sys.exit(3)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stuck in a collective and deaf to SIGTERM
    time.sleep(120)
""")


@pytest.fixture
def stand_in(tmp_path: Path) -> str:
    path = tmp_path / "stand_in_worker"
    path.write_text(STAND_IN_WORKER.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def test_launcher_gives_each_worker_its_tf_config_and_prefixes_its_lines(monkeypatch, stand_in: str, tmp_path: Path):
    monkeypatch.setenv("STAND_IN_MODE", "ok")
    out = io.StringIO()
    code = launch(["files/*"], "model", str(tmp_path / "run"), TrainerConfig(workers=2), python=stand_in, output=out)
    text = out.getvalue()
    assert code == 0, text
    clusters = set(re.findall(r"cluster (\S+)", text))
    assert len(clusters) == 1  # both workers got the same cluster ...
    addresses = clusters.pop().split(",")
    assert len(set(addresses)) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
    for index in (0, 1):  # ... and their own index, and the worker command's argv
        assert f"[worker-{index}] worker {index} argv -m ganpipe.trainer.task cluster" in text
        assert f"[worker-{index}] bar 2/2\n" in text  # a progress-bar refresh (\r) becomes a line
    assert "[launcher] all workers finished" in text


def test_launcher_fails_fast_and_leaves_no_orphans(monkeypatch, stand_in: str, tmp_path: Path):
    monkeypatch.setenv("STAND_IN_MODE", "fail")
    out = io.StringIO()
    code = launch(["files/*"], "model", str(tmp_path / "run"), TrainerConfig(workers=2), python=stand_in, output=out,
                  grace_seconds=1.0)
    text = out.getvalue()
    assert code == 3, text  # the failed worker's code
    assert "[launcher] worker-1 exited with code 3; stopping the other workers" in text
    assert "ignored SIGTERM" in text  # the deaf survivor was SIGKILLed after the grace period
    pids = _pids(text)
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids.values())


# ---------------------------------------------------------------- exactness

EXACT = dict(TINY, steps=4, log_every=1, sample_every=4, checkpoint_every=4, deterministic=True)


def test_two_workers_train_the_weights_one_worker_trains(tmp_path: Path, pattern: str, capfd):
    """Same seed: 2 workers x 4 rows == 1 worker x 8 rows, every variable (G, D, Adam slots) to ~1e-7.

    Bitwise equality is impossible: the gradient (and BatchNorm) sums over 8 rows are added up in
    another order when they are two all-reduced sums over 4 rows. Everything else -- rows, noise,
    dropout masks, BatchNorm statistics -- is the same by construction (docs/design.md).
    """
    one = tmp_path / "one"
    config = json.dumps(EXACT)
    done = subprocess.run(
        [sys.executable, "-m", "ganpipe.trainer.task", "--train-files", pattern, "--model-dir", str(one / "model"),
         "--run-dir", str(one / "run"), "--config-json", config],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    # Two workers through TFX's entry point: run_fn honours train.workers by starting the local launcher.
    two = tmp_path / "two"
    run_fn(types.SimpleNamespace(train_files=[pattern], serving_model_dir=str(two / "model"),
                                 model_run_dir=str(two / "run"),
                                 custom_config={"trainer": {**EXACT, "workers": 2}}))
    logs = capfd.readouterr().out
    assert "[worker-1]" in logs and "strategy MultiWorkerMirroredStrategy: 2 replica(s)" in logs, logs[-3000:]

    single_dir = identity_checkpoints(one / "run" / "checkpoints")
    double_dir = identity_checkpoints(two / "run" / "checkpoints")
    assert single_dir.name == double_dir.name  # train.workers is not part of the run identity
    single, double = _checkpoint(single_dir), _checkpoint(double_dir)
    assert single.keys() == double.keys()
    assert int(double["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    assert int(double["generator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    moments = [value for key, value in single.items() if "optimizer/_variables" in key and value.ndim]
    assert moments and max(np.abs(value).max() for value in moments) > 0  # it did train
    for key, value in single.items():
        np.testing.assert_allclose(double[key], value, rtol=1e-5, atol=2e-6, err_msg=key)
    assert (two / "model" / "saved_model.pb").exists()
    # Non-chief workers write nothing next to the chief's files.
    assert sorted(p.name for p in double_dir.iterdir()) == sorted(p.name for p in single_dir.iterdir())


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from ganpipe.trainer.config import TrainerConfig
    from ganpipe.trainer.train import train_run
    cfg = TrainerConfig.from_dict(json.loads(sys.argv[2]))
    one = train_run(cfg, [sys.argv[1]], sys.argv[3] + "/one").generator.get_weights()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two = train_run(cfg, [sys.argv[1]], sys.argv[3] + "/two", mirrored).generator.get_weights()
    print("RESULT", json.dumps({"replicas": mirrored.num_replicas_in_sync,
                                "max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(one, two))}))
""")


def compare_mirrored_with_one_replica(pattern: str, settings: dict, tmp_path: Path) -> dict:
    """Runs MIRRORED_SCRIPT in a fresh process (two logical CPUs); its RESULT: replicas, max_abs_diff."""
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, pattern, json.dumps(settings), str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])


def test_two_local_replicas_train_the_weights_one_replica_trains(tmp_path: Path, pattern: str):
    """MirroredStrategy (several GPUs on one worker; two logical CPUs here): one input pipeline feeds
    consecutive per-replica batches, which must be the same rows of the global batch."""
    result = compare_mirrored_with_one_replica(pattern, {**EXACT, "checkpoint_every": 0}, tmp_path)
    assert result["replicas"] == 2
    assert result["max_abs_diff"] < 2e-6, result


# ---------------------------------------------------------------- fault tolerance

def _watch(command: list[str], on_line, timeout: float = 300) -> tuple[int, str]:
    """Runs a command, calling on_line(line) for each output line as it arrives; (exit code, output)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout] + [lines.put(None)],
                     daemon=True).start()
    seen, deadline = [], time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError("timed out:\n" + "".join(seen[-50:])) from None
        if line is None:
            break
        seen.append(line)
        on_line(line, "".join(seen))
    return process.wait(), "".join(seen)


def test_a_sigkilled_worker_run_resumes_from_its_checkpoint(tmp_path: Path, pattern: str):
    steps, every = 40, 5
    command = [str(GANPIPE), "train", "--workers", "2", "--train-files", pattern,
               "--model-dir", str(tmp_path / "model"), "--run-dir", str(tmp_path / "run"), "--steps", str(steps)]
    for key, value in {**TINY, "log_every": 1, "sample_every": 20, "checkpoint_every": every}.items():
        command += ["--set", f"train.{key}={value}"]
    killed: list[int] = []

    def kill_worker_1_after_second_checkpoint(line: str, output: str) -> None:
        if not killed and "checkpoint saved at step 10" in line:
            pid = _pids(output)[1]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    code, first = _watch(command, kill_worker_1_after_second_checkpoint)
    assert killed, first[-3000:]
    assert code == 1, first[-3000:]  # the CLI's "training failed"
    assert "[launcher] worker-1 was killed by SIGKILL; stopping the other workers" in first
    # The survivor's gRPC traceback is in the run's workers.log, not between the user and the summary.
    assert "Traceback (most recent call last)" not in first, first[-3000:]
    assert (tmp_path / "run" / "workers.log").exists()
    assert "ganpipe: training failed (exit code 137)" in first
    assert not any(_alive(pid) for pid in _pids(first).values())  # the survivor was stopped too
    assert not (tmp_path / "model" / "saved_model.pb").exists()
    trained_before = max(int(n) for n in re.findall(r"\[worker-0\].* step (\d+)/40 g_loss", first))

    code, second = _watch(command, lambda line, output: None)
    assert code == 0, second[-3000:]
    resumed = {int(index): int(step) for index, step in
               re.findall(r"\[worker-(\d)\].*resumed from checkpoint .* at step (\d+)", second)}
    assert sorted(resumed) == [0, 1] and len(set(resumed.values())) == 1, second[-3000:]
    start = resumed[0]
    assert start % every == 0 and start >= 10  # the last checkpoint before the kill ...
    assert 0 <= trained_before - start < every  # ... so no step is trained twice beyond the interval
    trained_after = sorted(int(n) for n in re.findall(r"\[worker-0\].* step (\d+)/40 g_loss", second))
    assert trained_after == list(range(start + 1, steps + 1))  # the step counter continues to the end

    state = _checkpoint(identity_checkpoints(tmp_path / "run" / "checkpoints"))
    assert int(state["step/.ATTRIBUTES/VARIABLE_VALUE"]) == steps
    assert int(state["generator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == steps  # Adam restored
    history = json.loads((identity_checkpoints(tmp_path / "run" / "checkpoints") / "history.json").read_text())
    assert history["steps"] == list(range(1, steps + 1))
    summary = summarize_exports_in_clean_process([tmp_path / "model"], tmp_path)[str(tmp_path / "model")]
    assert summary["serving"] == ["uint8", [4, 16, 16, 1]] and summary["pixel_std"] > 0


def test_worker_tracebacks_go_to_the_log_and_the_terminal_keeps_their_last_line(tmp_path: Path):
    import io
    import threading as threads

    from ganpipe.trainer import local_workers

    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"step 3/10\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                       b"    peer()\ntensorflow.python.framework.errors_impl.UnavailableError: peer vanished\n"
                       b"after\n")
    os.close(write_fd)
    terminal, log = io.StringIO(), io.StringIO()
    local_workers._stream(os.fdopen(read_fd, "rb"), "[worker-0] ", local_workers._Sink(terminal, log, threads.Lock()))
    assert terminal.getvalue().splitlines() == [
        "[worker-0] step 3/10",
        "[worker-0] tensorflow.python.framework.errors_impl.UnavailableError: peer vanished (traceback in "
        "workers.log)",
        "[worker-0] after"]
    assert "[worker-0] Traceback (most recent call last):" in log.getvalue()
    assert len(log.getvalue().splitlines()) == 6
