"""`ganpipe compile`: the KFP pipeline TFX's KubeflowV2DagRunner writes for a cluster.

Compiled for real (TFX 1.16's runner, the real components); only submitting
it needs a Kubeflow Pipelines server, which docs/deploy.md covers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from kfp.client.client import _extract_pipeline_yaml

from ganpipe.pipeline.config import PipelineConfig, load_config
from tests.conftest import run_cli

IMAGE = "registry.example.com/ganpipe:0.1.0"
ROOT = "gs://ganpipe-test-bucket/pipeline-root"
TFJOB_EXECUTOR = "ganpipe.components.tfjob_trainer.executor.Executor"


def compile_config(**overrides: str) -> PipelineConfig:
    return load_config(None, {"kubeflow.image": IMAGE, "kubeflow.pipeline_root": ROOT, **overrides})


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    from ganpipe.kubeflow.runner import compile_pipeline

    out = tmp_path_factory.mktemp("kfp")
    result = compile_pipeline(compile_config(), str(out / "single"))
    tfjob_result = compile_pipeline(
        compile_config(**{"train.workers": "2", "kubeflow.trainer_gpus": "2"}), str(out / "tfjob"))
    tfjob = json.loads(Path(tfjob_result.job_path).read_text())
    return {"result": result, "job": json.loads(Path(result.job_path).read_text()), "tfjob": tfjob}


def executors(job: dict) -> dict:
    return job["pipelineSpec"]["deploymentSpec"]["executors"]


def task_parameter(job: dict, task: str, name: str):
    """A constant task parameter in the 2.1 spec ({"runtimeValue": {"constant": value}})."""
    value = job["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]["runtimeValue"]
    return value["constant"]


def test_the_package_uses_the_only_schema_version_open_source_kfp_accepts(compiled):
    # kubeflow/pipelines 2.0.5 .. 2.17.0, backend/src/apiserver/template/v2_template.go (NewV2SpecTemplate):
    # `spec.GetSchemaVersion() != SCHEMA_VERSION_2_1_0` -> "KFP only supports schema version 2.1.0".
    assert compiled["job"]["pipelineSpec"]["schemaVersion"] == "2.1.0"
    doc = _extract_pipeline_yaml(compiled["result"].package_path)
    assert doc.pipeline_spec.schema_version == "2.1.0"
    # backend/src/apiserver/template/template.go (isPipelineSpec): a bare PipelineSpec with a name and root.
    assert doc.pipeline_spec.pipeline_info.name and doc.pipeline_spec.HasField("root")


@pytest.mark.parametrize("which", ["job", "tfjob"])
def test_no_resolver_task_is_in_the_package(compiled, which):
    # kubeflow/pipelines 2.0.5 .. 2.17.0, backend/src/v2/compiler/argocompiler/dag.go:
    # `case *pipelinespec.PipelineDeploymentConfig_ExecutorSpec_Resolver: ... "resolver executors not
    # implemented"`. The evaluator reads its baseline from the serving directory instead.
    for label, executor in executors(compiled[which]).items():
        assert set(executor) <= {"container", "importer"}, (label, sorted(executor))
    evaluator = compiled[which]["pipelineSpec"]["root"]["dag"]["tasks"]["GanEvaluator"]
    assert set(evaluator["inputs"].get("artifacts", {})) == {"examples", "model"}
    assert task_parameter(compiled[which], "GanEvaluator", "serving_base") == "/mnt/models/generator"


def test_every_component_of_the_pipeline_is_a_task(compiled):
    from ganpipe.pipeline.pipeline import create_pipeline

    local = create_pipeline(PipelineConfig(output_dir="/tmp/unused"), "/data/x.npz", "npz",
                            schema_file="/tmp/unused/schema.pbtxt")
    tasks = compiled["job"]["pipelineSpec"]["root"]["dag"]["tasks"]
    for component in local.components:
        assert any(task == component.id or task.startswith(component.id + "-") for task in tasks), component.id
    assert {"ImageExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataGate", "Trainer",
            "GanEvaluator", "Pusher"} <= set(tasks)


def test_every_container_step_runs_the_configured_image_with_resources(compiled):
    containers = {label: e["container"] for label, e in executors(compiled["job"]).items() if "container" in e}
    assert len(containers) >= 8
    for label, container in containers.items():
        assert container["image"] == IMAGE, label
        assert container["resources"]["cpuLimit"] > 0 and container["resources"]["memoryLimit"] > 0, label
    trainer = containers["Trainer_executor"]["resources"]
    assert trainer["accelerator"] == {"type": "nvidia.com/gpu", "count": "1"}
    assert (trainer["cpuLimit"], trainer["memoryLimit"]) == (4.0, 16.0)
    assert all("accelerator" not in c["resources"] for label, c in containers.items() if label != "Trainer_executor")


def test_the_pipeline_root_and_push_target_are_cluster_storage(compiled):
    job = compiled["job"]
    assert job["runtimeConfig"]["gcsOutputDirectory"] == ROOT
    push = json.loads(task_parameter(job, "Pusher", "push_destination"))
    assert push["filesystem"]["base_directory"] == "/mnt/models/generator"


def test_the_kfp_package_is_what_the_kfp_client_uploads(compiled):
    """Parsed by kfp 2.5's own loader, which create_run/create_recurring_run use."""
    doc = _extract_pipeline_yaml(compiled["result"].package_path)
    assert doc.pipeline_spec.default_pipeline_root == ROOT
    assert set(doc.pipeline_spec.deployment_spec["executors"]) == set(executors(compiled["job"]))
    platform = doc.to_dict()["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    containers = {label for label, e in executors(compiled["job"]).items() if "container" in e}
    assert set(platform) == containers
    for mounts in platform.values():
        assert {(m["constant"], m["mountPath"]) for m in mounts["pvcMount"]} == {
            ("ganpipe-pipeline-root", "/mnt/pipeline"), ("ganpipe-models", "/mnt/models")}


def test_schema_and_bundled_data_point_at_files_the_image_bakes(compiled, tmp_path):
    """The Dockerfile runs `python -m ganpipe.kubeflow.runner bake /opt/ganpipe`; same code, other directory."""
    from ganpipe.kubeflow.runner import IMAGE_ASSETS_DIR, bake

    baked = bake(str(tmp_path))
    in_image = {IMAGE_ASSETS_DIR + path[len(str(tmp_path)):] for path in baked}
    job = compiled["job"]
    assert task_parameter(job, "ImportSchemaGen", "schema_file") in in_image
    # The data path is the `data_path` run-time parameter; its default (the package's) is the baked digits.
    assert job["pipelineSpec"]["root"]["dag"]["tasks"]["ImageExampleGen"]["inputs"]["parameters"]["input_base"] == {
        "componentInputParameter": "data_path"}
    package = json.loads(Path(compiled["result"].package_path).read_text().split("\n", 1)[1].split("\n---\n")[0])
    assert package["root"]["inputDefinitions"]["parameters"]["data_path"]["defaultValue"] in in_image
    assert all(os.path.getsize(path) > 0 for path in baked)


def test_multi_worker_training_compiles_to_the_tfjob_executor(compiled):
    job = compiled["tfjob"]
    trainer = executors(job)["Trainer_executor"]["container"]
    assert trainer["args"][trainer["args"].index("--executor_class_path") + 1] == TFJOB_EXECUTOR
    # The step only launches the job: no GPU for it; the workers get theirs.
    assert "accelerator" not in trainer["resources"]
    custom_config = json.loads(task_parameter(job, "Trainer", "custom_config"))
    assert custom_config["trainer"]["workers"] == 2
    assert custom_config["tfjob"]["gpus"] == 2 and custom_config["tfjob"]["image"] == IMAGE
    assert custom_config["tfjob"]["mount_path"] == "/mnt/pipeline"
    single = executors(compiled["job"])["Trainer_executor"]["container"]
    assert TFJOB_EXECUTOR not in single["args"]


@pytest.mark.parametrize("flags, message", [
    ([], "kubeflow.pipeline_root is not set"),
    (["--pipeline-root", "bucket/path"], "must be object storage"),
    (["--pipeline-root", "/mnt/pipeline/root"], "launcher refuses other roots"),
    (["--pipeline-root", "minio://mlpipeline/v2"], "use s3:// for MinIO"),
    (["--pipeline-root", ROOT, "--image", "ganpipe:latest"], "pin it with a tag"),
    (["--pipeline-root", ROOT, "--image", "ganpipe"], "pin it with a tag"),
    (["--pipeline-root", ROOT, "--data", "images/local"], "on a cluster the input must be"),
    (["--pipeline-root", ROOT, "--data", "/home/me/images"], "on a cluster the input must be"),
    (["--pipeline-root", ROOT, "--set", "kubeflow.namespace=Team_A"], "DNS-1123"),
    (["--pipeline-root", ROOT, "--set", "kubeflow.trainer_gpus=-1"], "trainer_gpus"),
])
def test_what_a_cluster_cannot_use_is_refused_before_compiling(tmp_path, flags, message):
    result = run_cli("compile", *flags, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "ganpipe_output").exists()


def test_cluster_config_keeps_local_settings_and_fills_cluster_locations():
    from ganpipe.kubeflow.runner import cluster_config, cluster_input

    config = compile_config(**{"data.path": "gs://bucket/images", "data.format": "folder"})
    cluster = cluster_config(config)
    assert cluster.push.serving_dir == "/mnt/models" and config.push.serving_dir == ""
    assert cluster_input(cluster) == ("gs://bucket/images", "folder")
    on_volume = compile_config(**{"data.path": "/mnt/pipeline/data/faces"})
    assert cluster_input(cluster_config(on_volume)) == ("/mnt/pipeline/data/faces", "auto")
    assert dataclasses.asdict(cluster.train) == dataclasses.asdict(config.train)


def test_inside_a_pod_a_multi_worker_run_also_launches_a_tfjob(monkeypatch):
    """The CronJob route: `ganpipe run` in a pod (Kubernetes sets KUBERNETES_SERVICE_HOST)."""
    from ganpipe.pipeline.pipeline import create_pipeline, trains_as_tfjob

    config = load_config(None, {"train.workers": "2", "output_dir": "/tmp/unused"})

    def trainer_executor() -> str:
        pipeline = create_pipeline(config, "/data/x.npz", "npz", schema_file="/tmp/unused/schema.pbtxt")
        trainer = next(c for c in pipeline.components if c.id == "Trainer")
        return f"{trainer.executor_spec.executor_class.__module__}.{trainer.executor_spec.executor_class.__name__}"

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert not trains_as_tfjob(config) and trainer_executor() != TFJOB_EXECUTOR
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert trains_as_tfjob(config) and trainer_executor() == TFJOB_EXECUTOR
    config.kubeflow.tfjob = False
    assert not trains_as_tfjob(config)
