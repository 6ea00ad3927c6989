"""What a TFJob's status says: pending, running, succeeded or failed, and why.

The training operator (kubeflow.org/v1) reports progress as conditions
(Created, Running, Restarting, Succeeded, Failed, Suspended), each with
status "True"/"False", and per-replica counts in `replicaStatuses`. Pure
functions over those dicts, so every branch is testable without a cluster.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
TERMINAL = (SUCCEEDED, FAILED)


@dataclasses.dataclass(frozen=True)
class JobState:
    phase: str
    message: str = ""
    failed_replicas: int = 0

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL


def job_state(tfjob: Mapping[str, Any] | None) -> JobState:
    """The state of a TFJob object as returned by the API (whole object or None)."""
    status = (tfjob or {}).get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    failed = sum(int((replica or {}).get("failed") or 0) for replica in (status.get("replicaStatuses") or {}).values())
    if "Failed" in conditions:
        return JobState(FAILED, _describe(conditions["Failed"]), failed)
    if "Succeeded" in conditions:
        return JobState(SUCCEEDED, _describe(conditions["Succeeded"]), failed)
    if "Running" in conditions or "Restarting" in conditions:
        return JobState(RUNNING, _describe(conditions.get("Running") or conditions["Restarting"]), failed)
    latest = _latest(status.get("conditions") or [])
    return JobState(PENDING, _describe(latest) if latest else "waiting for the training operator", failed)


def replica_summary(tfjob: Mapping[str, Any] | None) -> str:
    """e.g. "Worker: 1 active, 0 succeeded, 1 failed" (empty when the operator reported none)."""
    replicas = ((tfjob or {}).get("status") or {}).get("replicaStatuses") or {}
    parts = []
    for name, counts in sorted(replicas.items()):
        counts = counts or {}
        parts.append(f"{name}: {int(counts.get('active') or 0)} active, "
                     f"{int(counts.get('succeeded') or 0)} succeeded, {int(counts.get('failed') or 0)} failed")
    return "; ".join(parts)


def pod_problem(pod: Mapping[str, Any]) -> str:
    """Why a worker pod is not running or failed (phase, waiting/terminated reason), or "" if it is fine."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Unknown"
    reasons = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reasons.append(f"unschedulable: {condition.get('message') or condition.get('reason')}")
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "waiting" in state and (state["waiting"] or {}).get("reason") not in (None, "ContainerCreating"):
            waiting = state["waiting"]
            reasons.append(f"{waiting.get('reason')}: {waiting.get('message') or ''}".rstrip(": "))
        if "terminated" in state and (state["terminated"] or {}).get("exitCode", 0) != 0:
            terminated = state["terminated"]
            reasons.append(f"exit code {terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})")
    if phase == "Failed" and not reasons:
        reasons.append(status.get("reason") or status.get("message") or "failed")
    return f"{phase}: {'; '.join(reasons)}" if reasons else ""


def _describe(condition: Mapping[str, Any]) -> str:
    reason, message = condition.get("reason") or "", condition.get("message") or ""
    return f"{reason}: {message}" if reason and message else reason or message


def _latest(conditions: list) -> Mapping[str, Any] | None:
    return max(conditions, key=lambda c: c.get("lastTransitionTime") or "", default=None)
