"""A run killed with SIGKILL leaves an execution RUNNING in MLMD; the next run marks it FAILED, and says so."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from ganpipe.pipeline import abandoned_runs
from tests.conftest import TINY_RUN_FLAGS, run_cli, write_png_folder


def _store(output: Path) -> metadata_store.MetadataStore:
    connection = mlmd_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(output / "metadata.sqlite")
    connection.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def _running(output: Path) -> list:
    if not (output / "metadata.sqlite").exists():
        return []
    try:
        return [execution for execution in _store(output).get_executions()
                if execution.last_known_state == mlmd_pb2.Execution.RUNNING]
    except Exception:  # noqa: BLE001 - the schema is still being created by the run
        return []


def _kill_once_running(data: Path, output: Path) -> list:
    """Starts a real run, SIGKILLs it as soon as MLMD shows a component running; returns those executions."""
    script = Path(sys.executable).with_name("ganpipe")
    process = subprocess.Popen([str(script), "run", "--data", str(data), "--output", str(output), *TINY_RUN_FLAGS],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    running: list = []
    while time.monotonic() < deadline and process.poll() is None and not running:
        running = _running(output)
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert running, "the run ended before a component was seen running"
    return running


def _hold_run_lock(output: Path) -> subprocess.Popen:
    """Another process holding the output's run lock (shared), as a live run does; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, time\n"
        f"handle = open({str(output / abandoned_runs.RUN_LOCK_FILE)!r}, 'a+b')\n"
        "fcntl.flock(handle.fileno(), fcntl.LOCK_SH)\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_the_next_run_marks_what_a_killed_run_left_running(tmp_path):
    data, output = tmp_path / "images", tmp_path / "out"
    write_png_folder(data, 48)
    killed = _kill_once_running(data, output)
    assert [execution.id for execution in _running(output)] == [execution.id for execution in killed]

    # While another run holds the output, nothing is touched: its executions are alive.
    holder = _hold_run_lock(output)
    try:
        with abandoned_runs.run_lock(str(output), when_alone=lambda: "swept") as swept:
            assert swept is None
        assert len(_running(output)) == len(killed)
    finally:
        holder.kill()
        holder.wait()

    result = run_cli("run", "--data", str(data), "--output", str(output), *TINY_RUN_FLAGS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"marked FAILED {len(killed)} execution(s) a killed run left RUNNING" in result.stdout
    store = _store(output)
    by_id = {execution.id: execution for execution in store.get_executions()}
    for execution in killed:
        marked = by_id[execution.id]
        assert marked.last_known_state == mlmd_pb2.Execution.FAILED
        assert marked.custom_properties[abandoned_runs.NOTE_PROPERTY].string_value == abandoned_runs.NOTE
        # Its output folders are gone when empty, kept when something was written (nothing is lost).
        for folder in (output / "pipeline_root").glob(f"*/*/{execution.id}"):
            assert any(files for _, _, files in os.walk(folder)), folder
    assert not _running(output)
    assert "ganpipe: the pipeline stopped" not in result.stdout + result.stderr


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    """The kernel drops a killed process's flock: a crash never blocks the sweep."""
    lock = tmp_path / abandoned_runs.RUN_LOCK_FILE
    holder = _hold_run_lock(tmp_path)
    with abandoned_runs.run_lock(str(tmp_path), when_alone=lambda: "swept") as swept:
        assert swept is None
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with abandoned_runs.run_lock(str(tmp_path), when_alone=lambda: "swept") as swept:
        assert swept == "swept"
    with open(lock, "a+b") as handle:  # released on exit
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
