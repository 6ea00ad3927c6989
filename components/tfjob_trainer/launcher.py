"""Create a TFJob, wait for it, and never leave one behind that nobody waits for.

On success the job is kept (its TTL cleans it up) so its pods' logs can be
read. On failure, timeout or cancellation (KFP stops a run with SIGTERM) the
launcher first collects why (conditions, pod states, the failed workers'
last log lines), then deletes the job so its workers stop holding GPUs, and
raises with that report.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any, Callable, Iterator

from ganpipe.components.tfjob_trainer import spec
from ganpipe.components.tfjob_trainer.api import TFJobApi
from ganpipe.components.tfjob_trainer.status import FAILED, SUCCEEDED, JobState, job_state, pod_problem, replica_summary

LOG_TAIL_LINES = 30


class TFJobFailed(RuntimeError):
    """The TFJob failed; the message holds the operator's reason and the workers' last log lines."""


class TFJobTimeout(TFJobFailed):
    """The TFJob did not finish within the timeout; it was deleted."""


class TFJobCancelled(BaseException):
    """The launcher was asked to stop (SIGTERM); like KeyboardInterrupt, not an Exception."""


def run_tfjob(
    api: TFJobApi,
    manifest: dict[str, Any],
    timeout_s: float,
    poll_s: float,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobState:
    """Creates the job and returns its final state when it succeeded; raises otherwise (job deleted)."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    label = f"TFJob {namespace}/{name}"
    api.create(manifest)
    echo(f"{label}: created ({spec.worker_replicas(manifest)} workers, timeout {timeout_s:.0f}s)")
    deadline = clock() + timeout_s
    last_phase = ""
    try:
        while True:
            job = api.get(namespace, name)
            if job is None:
                raise TFJobFailed(f"{label} disappeared while running (deleted from outside?)")
            state = job_state(job)
            if state.phase != last_phase:
                echo(f"{label}: {state.phase}" + (f" ({state.message})" if state.message else ""))
                last_phase = state.phase
            if state.phase == SUCCEEDED:
                return state
            if state.phase == FAILED:
                raise TFJobFailed(f"{label} failed: {state.message or 'no reason given'}\n"
                                  + failure_report(api, job))
            if clock() >= deadline:
                raise TFJobTimeout(f"{label} did not finish within {timeout_s:.0f}s (still {state.phase}); "
                                   f"deleted it.\n" + failure_report(api, job))
            sleep(poll_s)
    except BaseException:
        _delete_quietly(api, namespace, name, echo)
        raise


def failure_report(api: TFJobApi, job: dict[str, Any]) -> str:
    """Replica counts, every troubled pod's state, and the failed (else all) workers' last log lines."""
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    lines = []
    summary = replica_summary(job)
    if summary:
        lines.append(f"replicas: {summary}")
    try:
        pods = sorted(api.worker_pods(namespace, name), key=lambda pod: pod["metadata"]["name"])
    except Exception as error:  # the report must not hide the failure it reports
        return "\n".join(lines + [f"(could not list the worker pods: {error})"])
    if not pods:
        lines.append("no worker pod was created (check the training operator and the namespace's quotas)")
    troubled = [pod for pod in pods if pod_problem(pod)]
    for pod in troubled:
        lines.append(f"pod {pod['metadata']['name']}: {pod_problem(pod)}")
    for pod in troubled or pods:
        pod_name = pod["metadata"]["name"]
        if (pod.get("status") or {}).get("phase") == "Pending":
            continue
        try:
            log = api.pod_log(namespace, pod_name, LOG_TAIL_LINES)
        except Exception as error:
            lines.append(f"--- {pod_name}: no log ({error})")
            continue
        lines.append(f"--- last {LOG_TAIL_LINES} log lines of {pod_name}:")
        lines.extend(log.rstrip("\n").splitlines()[-LOG_TAIL_LINES:])
    return "\n".join(lines)


@contextlib.contextmanager
def cancel_on_sigterm() -> Iterator[None]:
    """Turns SIGTERM into TFJobCancelled, so `run_tfjob` deletes its job before the pod dies."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def _raise(signum, frame):
        raise TFJobCancelled(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _delete_quietly(api: TFJobApi, namespace: str, name: str, echo: Callable[[str], None]) -> None:
    try:
        api.delete(namespace, name)
        echo(f"TFJob {namespace}/{name}: deleted")
    except Exception as error:  # keep the original error; say what is left behind
        echo(f"TFJob {namespace}/{name}: could not delete it ({error}); "
             f"delete it by hand: kubectl -n {namespace} delete tfjob {name}")
