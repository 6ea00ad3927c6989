"""`ganpipe compile`: the pipeline for Kubeflow Pipelines, through TFX's KubeflowV2DagRunner.

Writes two files into the output directory:
  <name>.json  the PipelineJob TFX's runner writes (Vertex-style wrapper)
  <name>.yaml  the package the kfp 2.x client and the KFP UI accept: the
               PipelineSpec (defaultPipelineRoot set) and a Kubernetes
               PlatformSpec that mounts the two PVCs (k8s/base/pvc.yaml)
               into every step, at the paths the `kubeflow` config names

What differs from a local run, and why:
  - the pipeline root is `kubeflow.pipeline_root` (object storage or a path
    on the pipeline-root volume), never the compiling machine's disk;
  - the curated schema and the bundled `digits` data are baked into the image
    (`python -m ganpipe.kubeflow.runner bake DIR`, run by the Dockerfile), so
    the compiled spec points at files every step can read without uploads;
  - generators are pushed to the models volume TF Serving reads;
  - each step gets CPU/memory, the Trainer its GPUs (or, with
    train.workers > 1, the TFJob's workers get them: pipeline/pipeline.py);
  - every TFX step's container runs `python -m ganpipe.kubeflow.entrypoint`
    (kubeflow/entrypoint.py) instead of TFX's `kubeflow_v2_run_executor`:
    open-source KFP hands input artifacts over without their type, so it
    fills in the type the compiled component declares, then runs TFX's own.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import tempfile
from typing import Any

from ganpipe.atomic import write_atomically
from ganpipe.pipeline.config import OBJECT_STORE_SCHEMES, ConfigError, PipelineConfig

IMAGE_ASSETS_DIR = "/opt/ganpipe"  # where the Dockerfile bakes schemas and bundled data
SCHEMAS_SUBDIR = "schemas"
DATA_SUBDIR = "data"


@dataclasses.dataclass(frozen=True)
class CompiledPipeline:
    job_path: str  # TFX's PipelineJob JSON
    package_path: str  # the KFP package (PipelineSpec + PlatformSpec YAML)
    pipeline_root: str
    image: str


def cluster_config(config: PipelineConfig) -> PipelineConfig:
    """A copy of `config` with cluster locations filled in; raises ConfigError for what a cluster cannot use."""
    if not config.kubeflow.pipeline_root:
        raise ConfigError("kubeflow.pipeline_root is not set: give object storage (e.g. "
                          "--set kubeflow.pipeline_root=gs://BUCKET/ganpipe or s3://BUCKET/ganpipe)")
    cluster = copy.deepcopy(config)
    if not cluster.push.serving_dir:
        cluster.push.serving_dir = cluster.kubeflow.models_mount
    elif not _on_cluster_storage(cluster.push.serving_dir, cluster):
        raise ConfigError(f"push.serving_dir={cluster.push.serving_dir!r}: on a cluster it must be a path under "
                          f"the models volume ({cluster.kubeflow.models_mount}); object stores cannot take an "
                          "atomic push")
    cluster.validate()
    if cluster.beam.remote_runner() and not cluster.kubeflow.pipeline_root.startswith("gs://"):
        # Dataflow workers write the Beam steps' outputs under the pipeline root themselves.
        raise ConfigError(f"kubeflow.pipeline_root={cluster.kubeflow.pipeline_root!r}: with "
                          f"--runner={cluster.beam.remote_runner()} it must be gs://, which Dataflow's workers "
                          "write")
    return cluster


def cluster_input(config: PipelineConfig) -> tuple[str, str]:
    """(path, format) of the input as the steps see it; nothing is read from it here."""
    from ganpipe.pipeline import datasets

    path, data_format = config.data.path, config.data.format
    if path == "digits":
        return f"{IMAGE_ASSETS_DIR}/{DATA_SUBDIR}/{os.path.basename(_digits_file())}", "npz"
    if datasets.is_bundled(path):
        raise ConfigError(f"data.path={path!r}: only 'digits' is baked into the image; upload {path} to object "
                          f"storage or the pipeline-root volume and pass that path")
    if not _on_cluster_storage(path, config):
        raise ConfigError(f"data.path={path!r}: on a cluster the input must be object storage "
                          f"({', '.join(OBJECT_STORE_SCHEMES)}...) or a path under the pipeline-root volume "
                          f"({config.kubeflow.pipeline_root_mount})")
    runner = config.beam.runner_that_cannot_read(path)
    if runner:
        raise ConfigError(f"data.path={path!r}: --runner={runner} reads the input on its own "
                          "workers, which reach neither the pipeline-root volume nor other stores; put the images "
                          "on gs://")
    return path, data_format


def image_schema_file(config: PipelineConfig, scratch_dir: str) -> str:
    """Where the image holds the curated schema this config needs (the same file `bake` writes)."""
    from ganpipe.pipeline import schema as curated_schema

    local = curated_schema.write_schema(
        curated_schema.build_schema(config.train.channels, config.data.convert_channels),
        os.path.join(scratch_dir, SCHEMAS_SUBDIR))
    relative = os.path.relpath(local, scratch_dir)
    return f"{IMAGE_ASSETS_DIR}/{relative}"


def bake(directory: str) -> list[str]:
    """Writes every curated schema variant and the bundled digits under `directory` (the Dockerfile runs this)."""
    from ganpipe.pipeline import datasets
    from ganpipe.pipeline import schema as curated_schema
    from ganpipe.trainer.config import SUPPORTED_CHANNELS

    written = [curated_schema.write_schema(curated_schema.build_schema(channels, convert),
                                           os.path.join(directory, SCHEMAS_SUBDIR))
               for channels in SUPPORTED_CHANNELS for convert in (False, True)]
    path, _ = datasets.materialize("digits", os.path.join(directory, DATA_SUBDIR))
    return written + [path]


def compile_pipeline(config: PipelineConfig, output_dir: str) -> CompiledPipeline:
    """Compiles `config` for Kubeflow Pipelines into output_dir; see the module docstring."""
    cluster = cluster_config(config)  # every ConfigError before TFX is imported (seconds)
    data_path, data_format = cluster_input(cluster)

    from tfx import v1 as tfx

    from ganpipe.kubeflow import entrypoint
    from ganpipe.pipeline.pipeline import create_pipeline, runtime_parameter_defaults

    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"output_dir {output_dir}: cannot create it: {error.strerror}") from None
    with tempfile.TemporaryDirectory() as scratch:
        schema_file = image_schema_file(cluster, scratch)
    pipeline = create_pipeline(cluster, data_path, data_format, pipeline_root=cluster.kubeflow.pipeline_root,
                               schema_file=schema_file, on_cluster=True, runtime_parameters=True)
    for component in pipeline.components:
        resources = step_resources(cluster, component.id)
        if resources is not None and hasattr(component, "with_platform_config"):
            component.with_platform_config(resources)
    job_file = f"{cluster.pipeline_name}.json"
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        # Schema 2.1.0: the only version open-source KFP accepts (kubeflow/pipelines 2.0.5 to 2.17.0,
        # backend/src/apiserver/template/v2_template.go); TFX 1.16 writes 2.0.0 unless asked.
        # default_commands: the container command of every TFX executor (TFX's own is
        # kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD). Templated container components and the
        # FileBasedExampleGen driver hook keep their own commands; importers have no container.
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=cluster.kubeflow.image, default_commands=list(entrypoint.COMMAND),
            use_pipeline_spec_2_1=True),
        output_dir=output_dir, output_filename=job_file)
    runner.run(pipeline)
    job_path = os.path.join(output_dir, job_file)
    package_path = os.path.join(output_dir, f"{cluster.pipeline_name}.yaml")
    write_kfp_package(job_path, package_path, cluster, runtime_parameter_defaults(cluster, data_path))
    return CompiledPipeline(job_path, package_path, cluster.kubeflow.pipeline_root, cluster.kubeflow.image)


def step_resources(config: PipelineConfig, component_id: str):
    """The ResourceSpec (CPU/memory limits and requests, accelerator) KFP gives a step's container."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    from ganpipe.pipeline.pipeline import trains_as_tfjob

    resource_spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
    cluster = config.kubeflow
    trains_here = component_id == "Trainer" and not trains_as_tfjob(config, on_cluster=True)
    cpu = cluster.trainer_cpu if trains_here else cluster.step_cpu
    memory = cluster.trainer_memory_gb if trains_here else cluster.step_memory_gb
    spec = resource_spec(cpu_limit=cpu, memory_limit=memory, cpu_request=cpu, memory_request=memory)
    if trains_here and cluster.trainer_gpus:
        spec.accelerator.type = cluster.gpu_resource
        spec.accelerator.count = cluster.trainer_gpus
    return spec


def write_kfp_package(job_path: str, package_path: str, config: PipelineConfig,
                      parameter_defaults: dict[str, Any] | None = None) -> None:
    """PipelineJob JSON -> the two-document YAML the kfp client uploads (JSON is valid YAML).

    ``parameter_defaults``: {runtime parameter: default}. TFX 1.16 declares the
    pipeline's parameters without defaults (and leaves the PipelineJob's
    runtimeConfig empty), so a run that does not set each one would fail
    ("neither value nor default value provided for non-optional parameter",
    kubeflow/pipelines backend/src/v2/driver/resolve.go). They are written as
    the kfp SDK writes a parameter with a default: ``defaultValue`` and
    ``isOptional: true``.
    """
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    pipeline_spec = job["pipelineSpec"]
    pipeline_spec["defaultPipelineRoot"] = config.kubeflow.pipeline_root
    declared = pipeline_spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, default in (parameter_defaults or {}).items():
        declared[name].update(defaultValue=default, isOptional=True)
    mounts = [
        {"constant": config.kubeflow.pipeline_root_pvc, "mountPath": config.kubeflow.pipeline_root_mount},
        {"constant": config.kubeflow.models_pvc, "mountPath": config.kubeflow.models_mount},
    ]
    executors = {label: {"pvcMount": copy.deepcopy(mounts)}
                 for label, executor in pipeline_spec["deploymentSpec"]["executors"].items() if "container" in executor}
    platform_spec = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}
    write_atomically(package_path, "".join([
        "# Kubeflow Pipelines package written by `ganpipe compile` (PipelineSpec, then PlatformSpec).\n",
        json.dumps(pipeline_spec, indent=1, sort_keys=True),
        "\n---\n",
        json.dumps(platform_spec, indent=1, sort_keys=True),
        "\n",
    ]))


def _on_cluster_storage(path: str, config: PipelineConfig) -> bool:
    if path.startswith(OBJECT_STORE_SCHEMES):
        return True
    mounts = (config.kubeflow.pipeline_root_mount, config.kubeflow.models_mount)
    return os.path.isabs(path) and any(os.path.normpath(path).startswith(m.rstrip("/") + "/") for m in mounts)


def _digits_file() -> str:
    """The file name `bake` gives the bundled digits (asked of ganpipe.pipeline.datasets, not repeated here)."""
    from ganpipe.pipeline import datasets

    with tempfile.TemporaryDirectory() as scratch:
        path, _ = datasets.materialize("digits", scratch)
    return os.path.basename(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganpipe.kubeflow.runner")
    commands = parser.add_subparsers(dest="command", required=True)
    bake_command = commands.add_parser("bake", help="write the image's schemas and bundled data (Dockerfile)")
    bake_command.add_argument("directory", nargs="?", default=IMAGE_ASSETS_DIR)
    args = parser.parse_args(argv)
    for path in bake(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
