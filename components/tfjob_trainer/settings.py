"""TFJob settings: plain values that travel in the Trainer's custom_config.

The pipeline (pipeline/config.py `kubeflow` section) fills them; the executor
reads them back in the Trainer's pod. Plain JSON types only, so they survive
TFX's custom_config serialization unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

CUSTOM_CONFIG_KEY = "tfjob"  # custom_config = {"trainer": {...}, "tfjob": TFJobSettings.to_dict()}
DEFAULT_PORT = 2222  # the training operator's default "tfjob-port"


@dataclasses.dataclass
class TFJobSettings:
    """Where and how a TFJob's workers run; `workers` comes from the trainer config."""

    image: str
    namespace: str = "ganpipe"
    job_prefix: str = "ganpipe"
    gpus: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    cpu: float = 4.0
    memory_gb: float = 16.0
    # The RWX volume that holds data, run dirs and (on a volume pipeline root)
    # the exported model; mounted at the same path in every worker as in the
    # pod that launched the job, so artifact paths mean the same thing there.
    pvc: str = "ganpipe-pipeline-root"
    mount_path: str = "/mnt/pipeline"
    # Workers need no Kubernetes API; a service account is only for cloud
    # storage credentials (e.g. GKE Workload Identity). Empty: namespace default.
    service_account: str = ""
    timeout_s: int = 6 * 3600
    poll_s: float = 10.0
    port: int = DEFAULT_PORT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any] | None) -> "TFJobSettings":
        """Reads the settings the pipeline put under custom_config["tfjob"]; missing is an error."""
        values = (custom_config or {}).get(CUSTOM_CONFIG_KEY)
        if not isinstance(values, Mapping):
            raise ValueError(f"the Trainer's custom_config has no {CUSTOM_CONFIG_KEY!r} section: "
                             "this executor runs only in pipelines compiled for a cluster")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TFJob setting(s): {', '.join(unknown)}")
        return cls(**dict(values))
