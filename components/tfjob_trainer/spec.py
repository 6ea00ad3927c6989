"""The TFJob manifest (kubeflow.org/v1) for N workers of `python -m ganpipe.trainer.task`.

Pure functions, no Kubernetes client: what the cluster will run is decided
here and can be checked offline. The worker command and the TF_CONFIG shape
come from trainer/cluster.py, the same code the local multi-worker launcher
uses; the training operator injects each pod's TF_CONFIG itself, in the shape
`expected_tf_config` reproduces (task type "worker", worker 0 the chief,
`<job>-worker-<i>.<namespace>.svc:<port>`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import sys
from typing import Any, Sequence

from ganpipe.components.tfjob_trainer.settings import TFJobSettings
from ganpipe.trainer import cluster
from ganpipe.trainer.config import TrainerConfig

GROUP = "kubeflow.org"
VERSION = "v1"
PLURAL = "tfjobs"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TFJob"
REPLICA_TYPE = "Worker"  # pods get TF_CONFIG task type "worker" (cluster.WORKER_TASK_TYPE)
CONTAINER_NAME = "tensorflow"  # the container the training operator injects TF_CONFIG into
PORT_NAME = "tfjob-port"  # the port the operator puts into TF_CONFIG
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
FINISHED_TTL_S = 24 * 3600  # a finished job (and its pods' logs) stays a day for inspection
MAX_JOB_NAME = 40  # pods are named <job>-worker-<i>; Kubernetes names stop at 63 characters
TMP_VOLUME = "tmp"
DATA_VOLUME = "pipeline-root"


def job_name(prefix: str, unique: str) -> str:
    """A DNS-1035 label from a readable prefix and a hash of something unique to the execution.

    DNS-1035, not 1123: the training operator's webhook refuses a TFJob name
    that does not start with a letter (kubeflow/training-operator v1.9.0,
    pkg/webhooks/tensorflow/tfjob_webhook.go: NameIsDNS1035Label).
    """
    digest = hashlib.sha256(unique.encode("utf-8")).hexdigest()[:10]
    base = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-") or "ganpipe"
    if not base[0].isalpha():  # a pipeline_name such as "2024-faces"
        base = f"gp-{base}"
    base = base[: MAX_JOB_NAME - len("-train-") - len(digest)].rstrip("-")
    return f"{base}-train-{digest}"


def worker_addresses(name: str, namespace: str, workers: int, port: int) -> list[str]:
    """The worker endpoints the training operator lists in TF_CONFIG for this job."""
    kind = REPLICA_TYPE.lower()
    return [f"{name}-{kind}-{index}.{namespace}.svc:{port}" for index in range(workers)]


def expected_tf_config(name: str, namespace: str, workers: int, index: int, port: int) -> dict:
    """The TF_CONFIG worker `index` of this job gets: ganpipe.trainer.cluster.tf_config over the job's addresses."""
    return cluster.tf_config(worker_addresses(name, namespace, workers, port), index)


def build_tfjob(
    name: str,
    settings: TFJobSettings,
    trainer_config: TrainerConfig,
    workers: int,
    train_files: Sequence[str],
    model_dir: str,
    run_dir: str,
    python: str = "python",
) -> dict[str, Any]:
    """The TFJob that trains `trainer_config` on `workers` pods; worker 0 (the chief) exports to model_dir."""
    if workers < 1:
        raise ValueError(f"a TFJob needs at least one worker, got {workers}")
    configured = getattr(trainer_config, "workers", workers)
    if configured != workers:
        raise ValueError(f"the trainer config says {configured} worker(s), the TFJob would run {workers}")
    labels = {"app.kubernetes.io/name": "ganpipe", "app.kubernetes.io/component": "trainer"}
    command = cluster.worker_command(train_files, model_dir, run_dir, trainer_config, python=python)
    pod_spec: dict[str, Any] = {
        # Workers never call the Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": CONTAINER_NAME,
            "image": settings.image,
            "imagePullPolicy": "IfNotPresent",
            "command": command,
            "env": [
                {"name": "HOME", "value": "/tmp"},
                {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "1"},
            ],
            "ports": [{"name": PORT_NAME, "containerPort": settings.port, "protocol": "TCP"}],
            "resources": _resources(settings),
            "volumeMounts": [
                {"name": DATA_VOLUME, "mountPath": settings.mount_path},
                {"name": TMP_VOLUME, "mountPath": "/tmp"},
            ],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }],
        "volumes": [
            {"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": settings.pvc}},
            {"name": TMP_VOLUME, "emptyDir": {}},
        ],
    }
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": settings.namespace, "labels": dict(labels)},
        "spec": {
            "runPolicy": {
                # Pods stay after the end so their logs can be read; a
                # failed job is deleted by the launcher after reading them.
                "cleanPodPolicy": "None",
                "backoffLimit": 0,
                "activeDeadlineSeconds": settings.timeout_s,
                "ttlSecondsAfterFinished": FINISHED_TTL_S,
            },
            # Done when every worker is done, not when worker 0 is.
            "successPolicy": "AllWorkers",
            "tfReplicaSpecs": {
                REPLICA_TYPE: {
                    "replicas": workers,
                    # A restarted worker cannot rejoin a running collective:
                    # any worker failure fails the job, and the launcher says why.
                    "restartPolicy": "Never",
                    "template": {
                        # Istio sidecars break the workers' gRPC ring (Kubeflow enables them per namespace).
                        "metadata": {"labels": dict(labels),
                                     "annotations": {"sidecar.istio.io/inject": "false"}},
                        "spec": pod_spec,
                    },
                }
            },
        },
    }


def worker_replicas(manifest: dict[str, Any]) -> int:
    return int(manifest["spec"]["tfReplicaSpecs"][REPLICA_TYPE]["replicas"])


def worker_container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers = manifest["spec"]["tfReplicaSpecs"][REPLICA_TYPE]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == CONTAINER_NAME)


def worker_port(manifest: dict[str, Any]) -> int:
    return int(next(p["containerPort"] for p in worker_container(manifest)["ports"] if p["name"] == PORT_NAME))


def _resources(settings: TFJobSettings) -> dict[str, dict[str, str]]:
    cpu, memory = _cpu_quantity(settings.cpu), f"{int(round(settings.memory_gb * 1024))}Mi"
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}
    if settings.gpus:
        resources["limits"][settings.gpu_resource] = str(settings.gpus)
    return resources


def _cpu_quantity(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{int(round(cpu * 1000))}m"


def example_manifest() -> dict[str, Any]:
    """The manifest k8s/templates/tfjob.yaml holds (regenerate: python -m ganpipe.components.tfjob_trainer.spec)."""
    settings = TFJobSettings(image="ganpipe:0.1.0", gpus=1)
    trainer_config = TrainerConfig()
    if hasattr(trainer_config, "workers"):
        trainer_config = dataclasses.replace(trainer_config, workers=2)
    root = f"{settings.mount_path}/ganpipe_output/pipeline_root"
    return build_tfjob(
        name="ganpipe-train-example",
        settings=settings,
        trainer_config=trainer_config,
        workers=2,
        train_files=[f"{root}/ImageExampleGen/examples/1/Split-train/*"],
        model_dir=f"{root}/Trainer/model/6/Format-Serving",
        run_dir=f"{root}/Trainer/model_run/6",
    )


if __name__ == "__main__":
    import yaml

    sys.stdout.write("# Generated by `python -m ganpipe.components.tfjob_trainer.spec`; tests check it is current.\n"
                     "# The TFJob the Trainer launches for train.workers=2 (paths from a CronJob-route run).\n")
    yaml.safe_dump(example_manifest(), sys.stdout, sort_keys=False, width=120)
