"""Executions a killed run left RUNNING in MLMD: marked FAILED by the next run, so lineage tells the truth.

A `ganpipe run` killed with SIGKILL (or an OOM kill, or a lost laptop
battery) cannot record how its running component ended: MLMD keeps that
execution in RUNNING forever, and TFX leaves the output folders it created
for it, empty. The next run on the same output marks such executions FAILED
with a note saying why, marks their pending output artifacts ABANDONED, and
removes output folders that are still empty (a folder with any file in it is
kept: nothing is lost).

"Is it really dead?" is answered with a run lock: every run holds a shared
flock on ``<output>/.run.lock`` for its whole life, and the sweep runs only
when an exclusive lock can be taken, that is when no other run on this output
is alive. The kernel drops a killed process's locks, so a crash never leaves
the lock held.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

RUN_LOCK_FILE = ".run.lock"
NOTE_PROPERTY = "ganpipe_note"
T = TypeVar("T")
NOTE = "the process running it ended without recording an outcome (killed?); marked FAILED by the next run"


@contextlib.contextmanager
def run_lock(output_dir: str, when_alone: Callable[[], T]) -> Iterator[T | None]:
    """Holds a shared lock on the output for the run's life.

    When no other run on this output is alive at entry, ``when_alone()`` runs
    under an exclusive lock first and its result is yielded; otherwise None.
    """
    handle = open(os.path.join(output_dir, RUN_LOCK_FILE), "a+b")  # noqa: SIM115 - held for the whole run
    try:
        result = None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another run is alive: its executions are not abandoned
        else:
            result = when_alone()
        # Downgrade, or wait for a sweeping run to downgrade: from here on, runs coexist.
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        yield result
    finally:
        handle.close()  # releases the lock


def mark_abandoned(metadata_path: str, pipeline_root: str) -> list[str]:
    """Marks every NEW or RUNNING execution FAILED; returns their type names (for one line to the user).

    Call it only while no other run uses this MLMD (as ``run_lock``'s ``when_alone``).
    Output artifacts still PENDING become ABANDONED, and each
    ``<pipeline_root>/<node>/<output>/<execution id>`` folder that holds no file is removed.
    """
    if not os.path.exists(metadata_path):
        return []
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

    connection = mlmd_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READWRITE
    store = metadata_store.MetadataStore(connection)
    unfinished = [execution for execution in store.get_executions()
                  if execution.last_known_state in (mlmd_pb2.Execution.NEW, mlmd_pb2.Execution.RUNNING)]
    if not unfinished:
        return []
    ids = [execution.id for execution in unfinished]
    pending_ids = {event.artifact_id for event in store.get_events_by_execution_ids(ids)
                   if event.type in (mlmd_pb2.Event.PENDING_OUTPUT, mlmd_pb2.Event.OUTPUT)}
    pending = [artifact for artifact in store.get_artifacts_by_id(list(pending_ids))
               if artifact.state in (mlmd_pb2.Artifact.PENDING, mlmd_pb2.Artifact.UNKNOWN)]
    for artifact in pending:
        artifact.state = mlmd_pb2.Artifact.ABANDONED
    for execution in unfinished:
        execution.last_known_state = mlmd_pb2.Execution.FAILED
        execution.custom_properties[NOTE_PROPERTY].string_value = NOTE
    store.put_executions(unfinished)
    if pending:
        store.put_artifacts(pending)
    for execution_id in ids:
        for folder in glob.glob(os.path.join(glob.escape(pipeline_root), "*", "*", str(execution_id))):
            _remove_if_no_files(folder)
    types = {kind.id: kind.name for kind in store.get_execution_types()}
    return [types.get(execution.type_id, "?").rsplit(".", 1)[-1] for execution in unfinished]


def _remove_if_no_files(folder: str) -> None:
    """Removes folder and its subfolders when not one file is in them."""
    for _, _, files in os.walk(folder):
        if files:
            return
    for parent, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        os.rmdir(parent)
