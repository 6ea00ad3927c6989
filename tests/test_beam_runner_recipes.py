"""The Beam steps on a distributed runner: the worker image and the recipes in docs/deploy.md.

Nothing here runs a job on Dataflow, Flink or Spark (no cluster, no Docker, no network). What is checked
is what an offline machine can check: the Dockerfile's Beam launcher matches the pinned Beam, and each
`beam.pipeline_args` recipe on the page is accepted by ganpipe's config, parsed in full by Beam 2.74,
left alone by TFX 1.16, turned by Beam into the intended worker environment, and compiled onto both Beam
steps of the Kubeflow package.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from ganpipe.pipeline.config import load_config

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()
SECTION_TITLE = "### Beam steps on a distributed runner"
BOOT = "/opt/apache/beam/boot"
BEAM_STEPS = ("ImageExampleGen", "StatisticsGen")


def _pinned(name: str, text: str) -> str:
    (version,) = re.findall(rf"^\s*\"?{re.escape(name)}(?:\[[^\]]*\])?==([^\s\",;]+)", text, flags=re.M)
    return version


def _section() -> str:
    text = (REPO / "docs" / "deploy.md").read_text()
    start = text.index(SECTION_TITLE)
    end = text.find("\n### ", start + len(SECTION_TITLE))
    return text[start:end if end != -1 else None]


def _recipes() -> list[list[str]]:
    recipes = [json.loads(found) for found in re.findall(r"--set 'beam\.pipeline_args=(\[[^']*\])'", _section())]
    assert len(recipes) == 3, "docs/deploy.md: one recipe each for Dataflow, Flink and Spark"
    return recipes


def _option(args: list[str], name: str) -> str | None:
    return next((arg.split("=", 1)[1] for arg in args if arg.startswith(f"--{name}=")), None)


# --- the worker image -------------------------------------------------------------------------------------

def test_the_dockerfile_beam_launcher_is_the_pinned_beam_release():
    # The SDK harness and the pipeline must be the same Beam version: Beam's boot wants apache-beam
    # installed "using same version of Beam as in the pipeline submission environment"
    # (apache/beam sdks/python/container/boot.go), and TFX copies /opt/apache/beam "from image matching
    # installed version of 'apache-beam'" (tensorflow/tfx tfx/tools/docker/Dockerfile, v1.16.0).
    import apache_beam
    from apache_beam.transforms.environments import DockerEnvironment

    (image,) = re.findall(rf"^COPY --from=(\S+) /opt/apache/beam /opt/apache/beam$", DOCKERFILE, flags=re.M)
    name, tag = image.rsplit(":", 1)
    constraints = _pinned("apache-beam", (REPO / "requirements" / "constraints.txt").read_text())
    setup = _pinned("apache-beam", (REPO / "setup.py").read_text())
    assert tag == constraints == setup == apache_beam.__version__
    # The image Beam itself names for this SDK and this Python (3.10, as in tensorflow/tfx:1.16.0).
    assert sys.version_info[:2] == (3, 10)
    assert image == DockerEnvironment.default_docker_image() == f"apache/beam_python3.10_sdk:{constraints}"
    assert name == "apache/beam_python3.10_sdk"


def test_the_pipeline_image_keeps_its_entrypoint_and_the_beam_worker_target_runs_boot():
    stages = re.split(r"^FROM\s+", DOCKERFILE, flags=re.M)[1:]
    headers = [stage.split("\n", 1)[0].split() for stage in stages]
    # The first stage is the pipeline image; the last (the default target of a plain `docker build`) is it.
    assert headers[0][-2:] == ["AS", "ganpipe"] and headers[-1] == ["ganpipe"]
    (worker,) = [stage for stage, header in zip(stages, headers) if header == ["ganpipe", "AS", "beam-worker"]]
    assert re.search(rf'^ENTRYPOINT \["{BOOT}"\]$', worker, flags=re.M)
    # Kubernetes, the compiled KFP steps and the TFJob set their own command; `docker run` shows the help.
    assert re.search(r"^ENTRYPOINT \[\]$", stages[0], flags=re.M)
    assert 'CMD ["ganpipe", "--help"]' in stages[0]
    # boot would otherwise create /opt/apache/beam-venv/..., which the non-root user cannot write.
    assert re.search(r"^ENV RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1$", stages[0], flags=re.M)


# --- the recipes on the page ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recipes() -> list[list[str]]:
    return _recipes()


def test_the_recipes_are_dataflow_flink_and_spark(recipes):
    runners = [_option(args, "runner") for args in recipes]
    assert runners == ["DataflowRunner", "PortableRunner", "PortableRunner"]
    assert "beam-job-server.flink" in _option(recipes[1], "job_endpoint")
    assert "beam-job-server.spark" in _option(recipes[2], "job_endpoint")
    assert _option(recipes[0], "temp_location").startswith("gs://")
    assert _option(recipes[0], "sdk_container_image").endswith("-beam")  # the boot-ENTRYPOINT target


def test_ganpipe_accepts_each_recipe(recipes):
    for args in recipes:
        assert load_config(None, {"beam.pipeline_args": json.dumps(args)}).beam.pipeline_args == args


def test_beam_knows_every_option_of_each_recipe(recipes):
    from apache_beam.options.pipeline_options import PipelineOptions

    for args in recipes:
        options = PipelineOptions(args)
        unknown = set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())
        assert not unknown, (args, unknown)


def test_tfx_adds_no_package_of_itself_to_the_recipes(recipes):
    # tfx/utils/dependency_utils.py (v1.16.0) make_beam_dependency_flags: without --sdk_container_image (or
    # --extra_packages, --setup_file, --requirements_file) it builds an sdist of TFX and adds --extra_package.
    from tfx.utils import dependency_utils

    for args in recipes:
        assert dependency_utils.make_beam_dependency_flags(list(args)) == args


def test_beam_builds_the_intended_worker_environment(recipes):
    from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
    from apache_beam.runners.dataflow.internal import apiclient
    from apache_beam.transforms import environments

    dataflow, *portable = recipes
    assert apiclient.get_container_image_from_options(PipelineOptions(dataflow)) == _option(
        dataflow, "sdk_container_image")
    for args in portable:
        environment = environments.Environment.from_options(PipelineOptions(args).view_as(PortableOptions))
        assert isinstance(environment, environments.ExternalEnvironment)
        assert environment.url == "localhost:50000" == _option(args, "environment_config")


def test_the_worker_pool_sidecar_on_the_page_is_a_valid_container_on_the_recipes_port(recipes):
    from kubernetes_validate import utils

    (snippet,) = re.findall(r"```yaml\n(.*?)```", _section(), flags=re.S)
    (container,) = yaml.safe_load(re.sub(r"^  ", "", snippet, flags=re.M))
    # boot --worker_pool starts worker_pool_main --service_port=50000 (apache/beam boot.go).
    assert container["command"] == [BOOT] and container["args"] == ["--worker_pool"]
    assert [p["containerPort"] for p in container["ports"]] == [50000]
    for args in recipes[1:]:
        assert _option(args, "environment_config") == "localhost:50000"
        assert container["image"] == _option(args, "sdk_container_image")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "taskmanager"},
           "spec": {"containers": [{"name": "flink-main-container", "image": "flink:1.20"}, container]}}
    assert utils.validate(pod, "1.32.0", strict=True) == "1.32"


def test_compile_puts_each_recipe_on_both_beam_steps(recipes, tmp_path):
    from ganpipe.kubeflow.runner import compile_pipeline

    for index, args in enumerate(recipes):
        config = load_config(None, {"beam.pipeline_args": json.dumps(args),
                                    "kubeflow.pipeline_root": "gs://BUCKET/ganpipe",
                                    "kubeflow.image": "registry.example.com/ganpipe:0.1.0"})
        compiled = compile_pipeline(config, str(tmp_path / str(index)))
        text = Path(compiled.package_path).read_text()
        spec = json.loads(text.split("\n", 1)[1].split("\n---\n")[0])
        executors = spec["deploymentSpec"]["executors"]
        for step in BEAM_STEPS:
            assert executors[f"{step}_executor"]["container"]["args"][-len(args):] == args, (step, args)
