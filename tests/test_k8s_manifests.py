"""k8s/: every overlay renders, validates against Kubernetes 1.32 strictly, and passes checkov.

Offline tools only (no cluster here): `kubectl kustomize` renders,
kubernetes-validate checks each object against the 1.32 OpenAPI schemas with
unknown fields rejected, checkov scans for misconfigurations. Tests that need
a tool skip with the reason when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ganpipe.pipeline.config import load_config

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
OVERLAYS = ("cpu", "gpu")
K8S_VERSION = "1.32.0"
KUBECTL = shutil.which("kubectl")
CHECKOV = next((c for c in (str(REPO / ".venv/tools-checkov/bin/checkov"), shutil.which("checkov"))
                if c and os.path.exists(c)), None)

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed (it renders the kustomizations)")
needs_checkov = pytest.mark.skipif(
    CHECKOV is None, reason="checkov not installed: it lives in its own venv (.venv/tools-checkov, "
                            "requirements/checkov.txt) because its pins conflict with the main set")


def render(path: Path) -> str:
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    if KUBECTL is None:
        pytest.skip("kubectl not installed (it renders the kustomizations)")
    return {name: [doc for doc in yaml.safe_load_all(render(K8S / "overlays" / name)) if doc]
            for name in OVERLAYS}


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_spec(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


# --- render and validate -----------------------------------------------------------------------

@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_the_whole_deployment(rendered, overlay):
    kinds = sorted({(o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "ConfigMap"
                     else o["metadata"]["name"]) for o in rendered[overlay]})
    assert ("Namespace", "ganpipe") in kinds
    for expected in [("ServiceAccount", "ganpipe-pipeline"), ("ServiceAccount", "ganpipe-serving"),
                     ("Role", "ganpipe-tfjob-launcher"), ("RoleBinding", "ganpipe-tfjob-launcher"),
                     ("PersistentVolumeClaim", "ganpipe-pipeline-root"), ("PersistentVolumeClaim", "ganpipe-models"),
                     ("Deployment", "ganpipe-serving"), ("Service", "ganpipe-serving"),
                     ("CronJob", "ganpipe-pipeline"), ("ConfigMap", "ganpipe-pipeline-config")]:
        assert expected in kinds
    for obj in rendered[overlay]:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "ganpipe", obj["metadata"]["name"]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_objects_pass_kubernetes_validate_strict(rendered, overlay):
    from kubernetes_validate import utils

    for obj in rendered[overlay]:
        assert utils.validate(obj, K8S_VERSION, strict=True) == "1.32"


@needs_kubectl
def test_strict_validation_catches_a_misspelt_field(rendered):
    from kubernetes_validate import utils

    deployment = json.loads(json.dumps(find(rendered["cpu"], "Deployment")))
    pod_spec(deployment)["containers"][0]["readinessProbes"] = {}
    with pytest.raises(utils.ValidationError):
        utils.validate(deployment, K8S_VERSION, strict=True)


@needs_kubectl
def test_the_kubernetes_validate_cli_agrees(tmp_path):
    """The same check a person runs: kubernetes-validate --strict on the rendered overlay."""
    path = tmp_path / "gpu.yaml"
    path.write_text(render(K8S / "overlays" / "gpu"))
    cli = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run([str(cli), "--strict", "-k", K8S_VERSION, "--quiet", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- checkov -------------------------------------------------------------------------------------

def checkov(path: Path, framework: str) -> dict:
    result = subprocess.run(
        # --skip-download: no call to the vendor's API (offline; doc links only).
        [CHECKOV, "-f", str(path), "--framework", framework, "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@needs_kubectl
@needs_checkov
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_no_unjustified_failure(tmp_path, overlay):
    rendered_text = render(K8S / "overlays" / overlay)
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered_text)
    report = checkov(path, "kubernetes")
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 100
    skipped = report["results"]["skipped_checks"]
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"]) > 40, check["check_id"]
    # ...and every skip is needed: without the annotations, exactly those checks fail.
    stripped = tmp_path / f"{overlay}-unskipped.yaml"
    stripped.write_text(re.sub(r"checkov\.io/skip\d+", "x-ganpipe-unskipped", rendered_text))
    unskipped = checkov(stripped, "kubernetes")
    assert sorted((c["check_id"], c["resource"]) for c in unskipped["results"]["failed_checks"]) == \
        sorted((c["check_id"], c["resource"]) for c in skipped)


@needs_checkov
def test_checkov_passes_the_dockerfile():
    report = checkov(REPO / "Dockerfile", "dockerfile")
    assert report["results"]["failed_checks"] == [] and report["summary"]["passed"] > 10


# --- what the manifests promise --------------------------------------------------------------------

@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tf_serving_is_pinned_locked_down_and_probed_on_model_status(rendered, overlay):
    model = load_config().push.model_name
    deployment = find(rendered[overlay], "Deployment", "ganpipe-serving")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    image, tag = container["image"].rsplit(":", 1)
    assert image == "tensorflow/serving" and re.fullmatch(r"2\.16\.\d+(-gpu)?", tag)
    assert f"--model_base_path=/models/{model}" in container["args"]
    assert f"--model_name={model}" in container["args"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"] is True
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in spec["volumes"]}
    assert claims["models"] == "ganpipe-models"
    # tensorflow/serving 2.16.1, http_rest_api_handler.cc / get_model_metadata_impl.cc: /metadata is
    # 404 until a version is AVAILABLE, while /v1/models/<name> is 200 for LOADING or failed versions.
    assert container["readinessProbe"]["httpGet"] == {"path": f"/v1/models/{model}/metadata", "port": "http"}
    # Liveness must not depend on a model: before the first push none exists.
    assert container["livenessProbe"] == {**container["livenessProbe"], "tcpSocket": {"port": "http"}}
    assert "httpGet" not in container["livenessProbe"] and "startupProbe" not in container
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 8500, "http": 8501}
    assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
    assert set(container["resources"]["limits"]) >= {"cpu", "memory"}
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    service = find(rendered[overlay], "Service", "ganpipe-serving")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    has_gpu = "nvidia.com/gpu" in container["resources"]["limits"]
    assert has_gpu == (overlay == "gpu") == tag.endswith("-gpu")


@needs_kubectl
def test_the_role_allows_exactly_what_the_tfjob_launcher_calls(rendered):
    role = find(rendered["cpu"], "Role", "ganpipe-tfjob-launcher")
    rules = {(group, resource, tuple(sorted(rule["verbs"])))
             for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]}
    assert rules == {("kubeflow.org", "tfjobs", ("create", "delete", "get")),
                     ("", "pods", ("list",)), ("", "pods/log", ("get",))}
    binding = find(rendered["cpu"], "RoleBinding", "ganpipe-tfjob-launcher")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == ["ganpipe-pipeline"]
    # The API adapter makes exactly these calls (and no other kind of call).
    api_source = (REPO / "components/tfjob_trainer/api.py").read_text()
    calls = set(re.findall(r"self\._(?:custom|core)\.(\w+)\(", api_source))
    assert calls == {"create_namespaced_custom_object", "get_namespaced_custom_object",
                     "delete_namespaced_custom_object", "list_namespaced_pod", "read_namespaced_pod_log"}


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_cronjob_runs_the_pipeline_on_the_volumes_its_config_names(rendered, overlay, tmp_path):
    objects = rendered[overlay]
    cronjob = find(objects, "CronJob", "ganpipe-pipeline")
    assert cronjob["spec"]["suspend"] is True and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(cronjob)
    (container,) = spec["containers"]
    assert container["command"][:2] == ["ganpipe", "run"]
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_map["data"]["config.yaml"])
    config = load_config(str(config_file))  # the CronJob's config is a valid ganpipe config
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in spec["volumes"]}
    assert claims[mounts[config.kubeflow.pipeline_root_mount]] == config.kubeflow.pipeline_root_pvc
    assert config.output_dir.startswith(config.kubeflow.pipeline_root_mount + "/")
    assert claims[mounts[config.push.serving_dir]] == "ganpipe-models"
    assert container["image"] == config.kubeflow.image  # the TFJob workers run the CronJob's image
    assert spec["serviceAccountName"] == "ganpipe-pipeline"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert ("nvidia.com/gpu" in container["resources"]["limits"]) == (overlay == "gpu") \
        == (config.kubeflow.trainer_gpus > 0)


@needs_kubectl
def test_tfjob_workers_are_the_pods_the_training_network_policy_admits(rendered):
    from ganpipe.components.tfjob_trainer import spec

    policy = find(rendered["cpu"], "NetworkPolicy", "ganpipe-training")
    job = spec.example_manifest()
    labels = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"].items() <= labels.items()
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [spec.worker_port(job)]


def test_the_dockerfile_builds_on_tfx_1_16_and_runs_as_the_manifests_user():
    from ganpipe.components.tfjob_trainer import spec
    from ganpipe.kubeflow.runner import IMAGE_ASSETS_DIR

    dockerfile = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", dockerfile, flags=re.M | re.I)
    (base, name), later = stages[0], stages[1:]
    assert re.fullmatch(r"tensorflow/tfx:1\.16\.\d+", base)
    # The beam-worker target and the default (last) target only build on that stage: same layers, same user.
    assert later and all(image == name for image, _ in later)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.M)
    assert users and users[-1] != "root" and users[-1] != "0"
    uid = int(users[-1])
    pod = spec.example_manifest()["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == uid
    assert "-c requirements/constraints.txt" in dockerfile or "-r requirements/constraints.txt" in dockerfile
    assert f"python -m ganpipe.kubeflow.runner bake {IMAGE_ASSETS_DIR}" in dockerfile
    for path in ("requirements/constraints.txt", "setup.py"):
        assert (REPO / path).exists()
