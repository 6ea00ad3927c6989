"""The TFJob the Trainer launches: its manifest, its status reading, and the launcher's wait/cleanup logic.

No cluster runs here. The manifest is checked against the Training
Operator v1.9.0 TFJob CRD's own schema (../shared/k8s, the CRD a cluster
installs), closed to unknown fields as `kubectl apply --validate=strict`
refuses them, and its name against the operator webhook's rule; status
reading is tested on status dicts shaped like the training operator's; the
launcher runs against `ScriptedCluster`, a minimal in-memory stand-in for
the API server (five calls, scripted TFJob states) that docs/deploy.md names.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from ganpipe.components.tfjob_trainer import spec
from ganpipe.components.tfjob_trainer.launcher import TFJobCancelled, TFJobFailed, TFJobTimeout, run_tfjob
from ganpipe.components.tfjob_trainer.settings import TFJobSettings
from ganpipe.components.tfjob_trainer.status import FAILED, PENDING, RUNNING, SUCCEEDED, job_state, pod_problem
from ganpipe.trainer import cluster
from ganpipe.trainer.config import TrainerConfig

REPO = Path(__file__).resolve().parents[1]


# kubeflow/training-operator v1.9.0, manifests/base/crds/kubeflow.org_tfjobs.yaml (a copy is in ../shared/k8s).
CRD = REPO.parent / "shared" / "k8s" / "kubeflow.org_tfjobs-v1.9.0.yaml"
# kubeflow/training-operator v1.9.0, pkg/webhooks/tensorflow/tfjob_webhook.go: NameIsDNS1035Label
# (k8s.io/apimachinery v0.31.3, pkg/util/validation/validation.go: dns1035LabelFmt, max 63).
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def _strict(schema: dict) -> dict:
    """Objects with listed properties refuse others, as server-side strict field validation does."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        if schema.get("x-kubernetes-int-or-string"):  # a Quantity: 1, "500m", "4Gi"
            schema.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    elif isinstance(schema, list):
        schema = [_strict(item) for item in schema]
    return schema


def tfjob_validator() -> jsonschema.Draft7Validator:
    assert CRD.exists(), f"the TFJob CRD is missing at {CRD} (the shared folder beside the checkout)"
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == spec.VERSION]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": DNS_1035_LABEL, "maxLength": 63}}}
    schema["properties"]["kind"]["enum"] = [spec.KIND]
    schema["properties"]["apiVersion"]["enum"] = [spec.API_VERSION]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def trainer_config(workers: int, **overrides) -> TrainerConfig:
    cfg = TrainerConfig(**{"batch_size": 48, **overrides})  # 48 splits over 2, 3 or 4 workers
    return dataclasses.replace(cfg, workers=workers) if hasattr(cfg, "workers") else cfg


def manifest(workers: int = 3, gpus: int = 2, **settings) -> dict:
    return spec.build_tfjob(
        name=spec.job_name("My_Pipeline", "/mnt/pipeline/run/Trainer/model/7/Format-Serving"),
        settings=TFJobSettings(image="registry.example.com/ganpipe:0.1.0", gpus=gpus, **settings),
        trainer_config=trainer_config(workers, image_size=16),
        workers=workers,
        train_files=["/mnt/pipeline/root/examples/1/Split-train/*"],
        model_dir="/mnt/pipeline/root/Trainer/model/7/Format-Serving",
        run_dir="/mnt/pipeline/root/Trainer/model_run/7",
    )


# --- the manifest ----------------------------------------------------------------------------------

def test_manifest_passes_the_tfjob_schema_with_a_strict_kubernetes_pod_template():
    validator = tfjob_validator()
    for job in (manifest(), manifest(workers=2, gpus=0, service_account="gcs-reader")):
        assert list(validator.iter_errors(job)) == []


@pytest.mark.parametrize("breakage, expected", [
    (lambda m: m["spec"]["tfReplicaSpecs"]["Worker"].update(replicas="three"), "is not of type 'integer'"),
    (lambda m: m["metadata"].update(name="7-train-abc"), "does not match"),
    (lambda m: m["metadata"].update(name="x" * 64), "is too long"),
    (lambda m: m["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].update(imagePullPolcy="x"),
     "Additional properties"),
    (lambda m: m["spec"].update(tfReplicaSpec={}), "Additional properties"),
])
def test_the_schema_rejects_what_the_operator_or_the_api_server_would(breakage, expected):
    job = manifest()
    breakage(job)
    messages = " | ".join(error.message for error in tfjob_validator().iter_errors(job))
    assert expected in messages


def test_workers_run_the_shared_worker_command_with_gpu_limits_and_the_shared_volume():
    job = manifest(workers=3, gpus=2)
    container = spec.worker_container(job)
    cfg = trainer_config(3, image_size=16)
    assert container["command"] == cluster.worker_command(
        ["/mnt/pipeline/root/examples/1/Split-train/*"], "/mnt/pipeline/root/Trainer/model/7/Format-Serving",
        "/mnt/pipeline/root/Trainer/model_run/7", cfg, python="python")
    assert spec.worker_replicas(job) == 3
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["image"] == "registry.example.com/ganpipe:0.1.0"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[spec.DATA_VOLUME] == "/mnt/pipeline"
    pod = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert claims[spec.DATA_VOLUME] == "ganpipe-pipeline-root"
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "nvidia.com/gpu" not in spec.worker_container(manifest(gpus=0))["resources"]["limits"]


def test_the_job_ends_on_its_own_if_the_launcher_dies():
    job = manifest(timeout_s=900)
    assert job["spec"]["runPolicy"]["activeDeadlineSeconds"] == 900
    assert job["spec"]["tfReplicaSpecs"]["Worker"]["restartPolicy"] == "Never"
    assert job["spec"]["runPolicy"]["backoffLimit"] == 0


def test_tf_config_the_operator_injects_is_the_shared_cluster_shape():
    job = manifest(workers=3)
    name, namespace, port = job["metadata"]["name"], job["metadata"]["namespace"], spec.worker_port(job)
    assert port == 2222
    for index in range(3):
        expected = spec.expected_tf_config(name, namespace, 3, index, port)
        assert expected == cluster.tf_config(
            [f"{name}-worker-{i}.{namespace}.svc:{port}" for i in range(3)], index)
        assert expected["task"] == {"type": "worker", "index": index}


def test_the_worker_container_is_named_as_the_operator_requires():
    # kubeflow/training-operator v1.9.0, tfjob_webhook.go: one container must be named "tensorflow".
    assert spec.worker_container(manifest())["name"] == "tensorflow"


def test_job_names_are_valid_unique_and_leave_room_for_pod_names():
    names = {spec.job_name("A_Very_Long_Pipeline_Name_" * 4, f"/root/Trainer/model/{i}") for i in range(50)}
    names |= {spec.job_name(prefix, "/root/Trainer/model/1") for prefix in ("2024-faces", "_x", "9", "---")}
    assert len(names) == 54
    validator = tfjob_validator()
    for name in names:
        assert len(f"{name}-worker-99") <= 63
        assert validator.is_valid({**manifest(), "metadata": {"name": name, "namespace": "ganpipe"}})


def test_a_trainer_config_that_disagrees_on_the_worker_count_is_refused():
    with pytest.raises(ValueError, match="worker"):
        spec.build_tfjob("j", TFJobSettings(image="x:1"), trainer_config(2), 3, ["f"], "m", "r")


def test_the_committed_template_is_what_the_builder_writes():
    """k8s/templates/tfjob.yaml is regenerated by `python -m ganpipe.components.tfjob_trainer.spec`."""
    committed = yaml.safe_load((REPO / "k8s/templates/tfjob.yaml").read_text())
    current = spec.example_manifest()
    committed_command, current_command = (spec.worker_container(m).pop("command") for m in (committed, current))
    assert committed == current
    # The trainer's settings grow over time; the template's must still load as a TrainerConfig.
    assert committed_command[:-1] == current_command[:-1]
    TrainerConfig.from_dict(json.loads(committed_command[-1]))
    assert tfjob_validator().is_valid(yaml.safe_load((REPO / "k8s/templates/tfjob.yaml").read_text()))


def test_settings_travel_through_custom_config_and_reject_unknown_keys():
    settings = TFJobSettings(image="x:1", gpus=4, namespace="team-a")
    custom_config = json.loads(json.dumps({"trainer": {}, "tfjob": settings.to_dict()}))
    assert TFJobSettings.from_custom_config(custom_config) == settings
    with pytest.raises(ValueError, match="unknown TFJob setting"):
        TFJobSettings.from_custom_config({"tfjob": {**settings.to_dict(), "gpu": 1}})
    with pytest.raises(ValueError, match="compiled for a cluster"):
        TFJobSettings.from_custom_config({"trainer": {}})


# --- status dicts, shaped like training-operator v1's -----------------------------------------------

def condition(kind: str, status: str = "True", reason: str = "", message: str = "", at: str = "2026-01-01T00:00:00Z"):
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": at}


def tfjob_with(*conditions, replicas=None, name="j", namespace="ganpipe") -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "status": {"conditions": list(conditions), "replicaStatuses": replicas or {}}}


def test_job_state_reads_the_operators_conditions():
    assert job_state(None).phase == PENDING
    assert job_state({"status": {}}).phase == PENDING
    created = tfjob_with(condition("Created", reason="TFJobCreated", message="TFJob j is created."))
    assert job_state(created) == job_state(created) and job_state(created).phase == PENDING
    assert "created" in job_state(created).message
    running = tfjob_with(condition("Created"), condition("Running", reason="TFJobRunning"))
    assert job_state(running).phase == RUNNING
    done = tfjob_with(condition("Created"), condition("Running", status="False"),
                      condition("Succeeded", reason="TFJobSucceeded", message="TFJob j successfully completed."))
    assert job_state(done).phase == SUCCEEDED and job_state(done).finished
    failed = tfjob_with(condition("Running", status="False"),
                        condition("Failed", reason="TFJobFailed", message="TFJob j has failed because 1 Worker replica(s) failed."),
                        replicas={"Worker": {"active": 1, "failed": 1}})
    state = job_state(failed)
    assert state.phase == FAILED and state.failed_replicas == 1 and "1 Worker replica(s) failed" in state.message


def test_pod_problem_names_unschedulable_image_and_crash_reasons():
    assert pod_problem({"status": {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}}) == ""
    unschedulable = {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}}
    assert "Insufficient nvidia.com/gpu" in pod_problem(unschedulable)
    pull = {"status": {"phase": "Pending", "containerStatuses": [
        {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}}
    assert "ImagePullBackOff" in pod_problem(pull)
    crashed = {"status": {"phase": "Failed", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}
    assert pod_problem(crashed) == "Failed: exit code 137 (OOMKilled)"


# --- the launcher against a minimal stand-in API server -------------------------------------------------

class ScriptedCluster:
    """In-memory TFJobApi: returns the scripted TFJob states in order, records every call.

    The stand-in for the Kubernetes API server, the only one in the tests:
    it holds no logic beyond replaying states, so what is tested is the
    launcher's reading and reacting.
    """

    def __init__(self, states: list[dict | None], pods: list[dict] | None = None, logs: dict | None = None,
                 interrupt_after: int | None = None):
        self.states, self.pods, self.logs = list(states), pods or [], logs or {}
        self.interrupt_after = interrupt_after
        self.calls: list[tuple] = []
        self.created: dict | None = None

    def create(self, manifest: dict) -> dict:
        self.calls.append(("create", manifest["metadata"]["name"]))
        self.created = manifest
        return manifest

    def get(self, namespace: str, name: str) -> dict | None:
        self.calls.append(("get", name))
        gets = sum(1 for call in self.calls if call[0] == "get")
        if self.interrupt_after is not None and gets > self.interrupt_after:
            raise TFJobCancelled("signal 15")
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return None if state is None else {**state, "metadata": self.created["metadata"]}

    def delete(self, namespace: str, name: str) -> None:
        self.calls.append(("delete", name))

    def worker_pods(self, namespace: str, name: str) -> list[dict]:
        self.calls.append(("pods", name))
        return self.pods

    def pod_log(self, namespace: str, pod: str, tail_lines: int) -> str:
        self.calls.append(("log", pod))
        return self.logs.get(pod, "")


def failed_pod(name: str) -> dict:
    return {"metadata": {"name": name}, "status": {"phase": "Failed", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}


def run(api: ScriptedCluster, timeout_s: float = 60.0) -> tuple[object, list[str]]:
    messages: list[str] = []
    ticks = iter(range(10_000))
    state = run_tfjob(api, manifest(workers=2), timeout_s=timeout_s, poll_s=5.0, echo=messages.append,
                      sleep=lambda seconds: None, clock=lambda: next(ticks) * 5.0)
    return state, messages


def test_success_waits_through_pending_and_running_and_keeps_the_job():
    api = ScriptedCluster([tfjob_with(), tfjob_with(condition("Created")), tfjob_with(condition("Running")),
                           tfjob_with(condition("Succeeded", reason="TFJobSucceeded"))])
    state, messages = run(api)
    assert state.phase == SUCCEEDED
    assert ("delete", api.created["metadata"]["name"]) not in api.calls
    assert [m.split(": ")[1].split(" ")[0] for m in messages[1:]] == ["pending", "running", "succeeded"]


def test_a_failed_worker_is_reported_with_its_log_and_the_job_is_deleted():
    name = manifest()["metadata"]["name"]
    pods = [failed_pod(f"{name}-worker-1"), {"metadata": {"name": f"{name}-worker-0"},
                                             "status": {"phase": "Running"}}]
    api = ScriptedCluster(
        [tfjob_with(condition("Running")),
         tfjob_with(condition("Failed", reason="TFJobFailed", message="1 Worker replica(s) failed."),
                    replicas={"Worker": {"active": 1, "failed": 1}})],
        pods=pods, logs={f"{name}-worker-1": "step 1\nValueError: the training data holds no examples\n"})
    with pytest.raises(TFJobFailed) as raised:
        run(api)
    report = str(raised.value)
    assert "1 Worker replica(s) failed" in report
    assert "Worker: 1 active, 0 succeeded, 1 failed" in report
    assert f"pod {name}-worker-1: Failed: exit code 1 (Error)" in report
    assert "ValueError: the training data holds no examples" in report
    assert ("log", f"{name}-worker-0") not in api.calls  # only the failed worker's log
    assert api.calls[-1] == ("delete", name)


def test_a_job_that_outlives_its_timeout_is_deleted_and_says_why_it_waited():
    name = manifest()["metadata"]["name"]
    pending = {"metadata": {"name": f"{name}-worker-0"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}]}}
    api = ScriptedCluster([tfjob_with(condition("Created"))], pods=[pending])
    with pytest.raises(TFJobTimeout) as raised:
        run(api, timeout_s=30)
    assert "did not finish within 30s (still pending)" in str(raised.value)
    assert "Insufficient nvidia.com/gpu" in str(raised.value)
    assert api.calls[-1] == ("delete", name)
    assert sum(1 for call in api.calls if call[0] == "get") == 6  # polled at t=5, 10, ... 30 s, then gave up


def test_cancellation_deletes_the_job_and_propagates():
    api = ScriptedCluster([tfjob_with(condition("Running"))], interrupt_after=2)
    with pytest.raises(TFJobCancelled):
        run(api)
    assert api.calls[-1] == ("delete", api.created["metadata"]["name"])


def test_a_job_deleted_from_outside_fails_the_step():
    api = ScriptedCluster([tfjob_with(condition("Running")), None])
    with pytest.raises(TFJobFailed, match="disappeared"):
        run(api)


def test_sigterm_becomes_cancellation_inside_the_wait_and_nowhere_else():
    import os
    import signal
    import time

    from ganpipe.components.tfjob_trainer.launcher import cancel_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TFJobCancelled):
        with cancel_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises as soon as the signal arrives
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_succeeded_job_without_the_chiefs_export_fails_the_step(tmp_path):
    from ganpipe.components.tfjob_trainer.executor import require_export

    with pytest.raises(RuntimeError, match="no SavedModel"):
        require_export(str(tmp_path))
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    require_export(str(tmp_path))
