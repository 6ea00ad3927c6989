"""ganpipe.kubeflow.entrypoint: a compiled step run on the ExecutorInput open-source KFP 2.5 hands it.

No KFP backend runs here. The ExecutorInput is built the way kubeflow/pipelines
tag 2.5.0 builds it (the Go files are named where each rule is used), for the
compiled StatisticsGen step, and the step's container command is run as the
launcher runs it: `{{$}}` replaced by that JSON (backend/src/v2/component/
launcher_v2.go, getPlaceholders). StatisticsGen is real TFX with TFDV on Beam's
DirectRunner, over a few tf.Examples written here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ganpipe.pipeline.config import load_config

IMAGE = "registry.example.com/ganpipe:0.1.0"
ROOT = "gs://ganpipe-test-bucket/pipeline-root"
OUR_COMMAND = ["python", "-m", "ganpipe.kubeflow.entrypoint"]
TFX_COMMAND = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
STEP = "StatisticsGen"
SPLITS = ("train", "eval")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    """The PipelineSpec of the package `ganpipe compile` writes (the document KFP runs)."""
    from ganpipe.kubeflow.runner import compile_pipeline

    result = compile_pipeline(load_config(None, {"kubeflow.image": IMAGE, "kubeflow.pipeline_root": ROOT}),
                              str(tmp_path_factory.mktemp("kfp")))
    with open(result.package_path, encoding="utf-8") as handle:
        pipeline_spec, _platform_spec = yaml.safe_load_all(handle)
    return pipeline_spec


def containers(spec: dict) -> dict:
    return {label: executor["container"] for label, executor in spec["deploymentSpec"]["executors"].items()
            if "container" in executor}


def step_container(spec: dict, task: str) -> dict:
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


# --- the upstream Examples, as KFP 2.5 stores and hands them on -------------------------------------------

def write_examples(uri: Path) -> None:
    """A few GZIP tf.Example records per split, laid out as ImageExampleGen writes them."""
    import tensorflow as tf

    for split in SPLITS:
        (uri / f"Split-{split}").mkdir(parents=True)
        path = str(uri / f"Split-{split}" / "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for index in range(4):
                features = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes([index] * 16)])),
                            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 2]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def producer_metadata(uri: Path) -> dict:
    """The `metadata` of ImageExampleGen's output in its ExecutorOutput, written by TFX's own converter."""
    from tfx.components.util import examples_utils
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
    from tfx.orchestration.portable import outputs_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(uri)
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, "tfrecords_gzip")
    examples.set_int_custom_property("accepted_images", 8)  # like components/image_example_gen/executor.py
    outputs = {"examples": [examples]}
    outputs_utils.tag_output_artifacts_with_version(outputs)  # as TFX's entrypoint does after Do()
    runtime = kubeflow_v2_entrypoint_utils.translate_executor_output(outputs, {})["examples"].artifacts[0]
    return json.loads(json.dumps(dict(runtime.metadata)))  # plain JSON values (numbers as floats)


def kfp_round_trip(metadata: dict) -> dict:
    """What the consumer's driver hands on of a producer's output metadata (kubeflow/pipelines tag 2.5.0).

    The launcher records the ExecutorOutput metadata as MLMD custom properties
    (backend/src/v2/metadata/converter.go, toMLMDArtifact/StructValueToMLMDValue:
    string -> string, number -> double, bool -> int, list -> struct {"list": ...},
    struct -> struct {"struct": ...}) and adds `display_name` and
    `store_session_info` (metadata/client.go, RecordArtifact); converter.go
    toRuntimeArtifact turns them back into metadata (double/int -> number).
    """
    def value(item):
        if isinstance(item, bool):
            return float(item)
        if isinstance(item, list):
            return {"list": item}
        if isinstance(item, dict):
            return {"struct": item}
        return item

    returned = {key: value(item) for key, item in metadata.items()}
    returned.setdefault("display_name", "examples")
    returned.setdefault("store_session_info", json.dumps({"Provider": "gs", "Params": {"fromEnv": "true"}}))
    return returned


def kfp_input_artifact(uri: Path, shape: str) -> dict:
    """One input artifact of the consumer's ExecutorInput, as KFP 2.5's driver builds it.

    kubeflow/pipelines tag 2.5.0: backend/src/v2/metadata/converter.go (toRuntimeArtifact) sets only
    `name` (the MLMD id), `uri` and `metadata` -- no `type`. An input from an upstream task
    (driver.go resolveUpstreamArtifacts, the path every ganpipe step takes) then goes through
    metadata/client.go OutputArtifact.ToRuntimeArtifact, which sets `type.instanceSchema` to ""
    (`Schema: "", // TODO(Bobgy)`); protojson writes that set oneof as `{"instanceSchema": ""}`.
    An artifact handed down from a parent DAG (GetInputArtifactsByExecutionID) keeps no type at all.
    """
    artifact = {"name": "17", "uri": str(uri), "metadata": kfp_round_trip(producer_metadata(uri))}
    if shape == "empty instanceSchema":
        artifact["type"] = {"instanceSchema": ""}
    return artifact


def kfp_executor_input(spec: dict, task: str, inputs: dict, pipeline_root: Path, output_file: Path) -> dict:
    """ExecutorInput for `task` (kubeflow/pipelines 2.5.0, backend/src/v2/driver/driver.go).

    resolveInputs: the task's constant parameters become `parameterValues`; the artifacts are `inputs`.
    provisionOutputs: one artifact per output definition, typed from the component's outputDefinitions,
    under <pipeline root>/<task>/<salt>/<name>; `outputFile` is component.OutputMetadataFilepath
    (/tmp/kfp_outputs/output_metadata.json on a cluster; `output_file` here).
    """
    task_spec = spec["root"]["dag"]["tasks"][task]
    component = spec["components"][task_spec["componentRef"]["name"]]
    parameters = {name: value["runtimeValue"]["constant"]
                  for name, value in task_spec["inputs"].get("parameters", {}).items()}
    outputs = {name: {"artifacts": [{"uri": str(pipeline_root / task / "a1b2c3" / name),
                                     "type": definition["artifactType"]}]}
               for name, definition in component["outputDefinitions"]["artifacts"].items()}
    return {"inputs": {"parameterValues": parameters,
                       "artifacts": {name: {"artifacts": [artifact]} for name, artifact in inputs.items()}},
            "outputs": {"artifacts": outputs, "outputFile": str(output_file)}}


def run_container(command: list[str], args: list[str], executor_input: dict, cwd: Path):
    """The container's command and args with `{{$}}` replaced, as KFP's launcher runs them."""
    resolved = [json.dumps(executor_input) if arg == "{{$}}" else arg for arg in args]
    assert command[0] == "python"
    # TFX's entrypoint parses its whole argv with parse_known_args, so the program's own path lands in the
    # executor's Beam args (kubeflow_v2_run_executor.py, _parse_flags, v1.16.0). They are never empty, and a
    # Beam step builds TFX's ~50 MB sdist in a temp dir it never removes (dependency_utils.py): in a pod, gone
    # with the pod; here, kept under pytest's tmp_path.
    temp = cwd / "tmp"
    temp.mkdir(exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", TMPDIR=str(temp))
    return subprocess.run([sys.executable, *command[1:], *resolved], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def statistics_gen_input(spec, tmp_path):
    def build(shape: str) -> tuple[dict, Path]:
        examples_uri = tmp_path / "root" / "ImageExampleGen" / "f00d" / "examples"
        if not examples_uri.exists():
            write_examples(examples_uri)
        output_file = tmp_path / "kfp_outputs" / "output_metadata.json"
        inputs = {"examples": kfp_input_artifact(examples_uri, shape)}
        return kfp_executor_input(spec, STEP, inputs, tmp_path / "root", output_file), output_file
    return build


# --- tests ------------------------------------------------------------------------------------------------

def test_every_tfx_step_of_the_package_runs_our_entrypoint(spec):
    steps = containers(spec)
    assert len(steps) >= 8
    for label, container in steps.items():
        assert container["command"] == OUR_COMMAND, label
        # Everything else is TFX's own: its arguments, the invocation placeholder and the inputs spec.
        args = container["args"]
        assert args[args.index("--json_serialized_invocation_args") + 1] == "{{$}}", label
        assert "--json_serialized_inputs_spec_args" in args, label
    for task in spec["root"]["dag"]["tasks"].values():
        assert task["componentRef"]["name"] in spec["components"]


def test_what_tfx_fails_on_is_in_our_compiled_steps(spec):
    """Every step with an artifact input would get untyped artifacts; its inputs spec declares each type."""
    with_inputs = {task: body["inputs"]["artifacts"] for task, body in spec["root"]["dag"]["tasks"].items()
                   if body.get("inputs", {}).get("artifacts")}
    assert {"StatisticsGen", "ExampleValidator", "DataGate", "Trainer", "GanEvaluator", "Pusher"} <= set(with_inputs)
    for task, artifacts in with_inputs.items():
        args = step_container(spec, task)["args"]
        declared = json.loads(args[args.index("--json_serialized_inputs_spec_args") + 1])["artifacts"]
        assert set(declared) == set(artifacts), task
        assert all(d["artifactType"]["instanceSchema"].startswith("title: tfx.") for d in declared.values()), task


@pytest.mark.parametrize("shape", ["empty instanceSchema", "no type"])
def test_tfx_own_parsing_fails_on_kfp_inputs_and_ours_types_them(spec, statistics_gen_input, shape):
    """The exact TFX 1.16 call that fails, in process, before and after fill_input_types."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
    from tfx.types import standard_artifacts

    from ganpipe.kubeflow.entrypoint import fill_input_types

    executor_input, _ = statistics_gen_input(shape)
    invocation = json.dumps(executor_input)
    args = step_container(spec, STEP)["args"]
    inputs_spec = args[args.index("--json_serialized_inputs_spec_args") + 1]

    def parse_inputs(text: str):
        message = pipeline_spec_pb2.ExecutorInput()
        json_format.Parse(text, message, ignore_unknown_fields=True)  # kubeflow_v2_run_executor._run_executor
        return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(message.inputs.artifacts, {})

    # kubeflow_v2_entrypoint_utils._retrieve_class_path: yaml.safe_load("") is None (line 259), or no
    # type kind leaves `title` unassigned (line 261).
    expected = AttributeError if shape == "empty instanceSchema" else UnboundLocalError
    with pytest.raises(expected):
        parse_inputs(invocation)

    (examples,) = parse_inputs(fill_input_types(invocation, inputs_spec))["examples"]
    assert isinstance(examples, standard_artifacts.Examples)
    assert examples.split_names == json.dumps(list(SPLITS))
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_typed_inputs_are_passed_on_unchanged(spec, statistics_gen_input):
    """Vertex (or a KFP that types its artifacts): not even re-serialised."""
    from ganpipe.kubeflow.entrypoint import fill_input_types

    executor_input, _ = statistics_gen_input("empty instanceSchema")
    args = step_container(spec, STEP)["args"]
    inputs_spec = args[args.index("--json_serialized_inputs_spec_args") + 1]
    artifact = executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]
    for typed in ({"schemaTitle": "tfx.Examples"}, json.loads(inputs_spec)["artifacts"]["examples"]["artifactType"]):
        artifact["type"] = typed
        invocation = json.dumps(executor_input)
        assert fill_input_types(invocation, inputs_spec) is invocation
        assert fill_input_types(invocation, None) is invocation
    no_inputs = json.dumps({"outputs": executor_input["outputs"]})  # ImageExampleGen, ImportSchemaGen
    assert fill_input_types(no_inputs, None) is no_inputs


def test_an_untyped_input_the_spec_does_not_declare_is_refused_with_a_reason(statistics_gen_input):
    from ganpipe.kubeflow.entrypoint import fill_input_types

    executor_input, _ = statistics_gen_input("no type")
    with pytest.raises(ValueError, match="'examples'.*arrived without a type.*use_pipeline_spec_2_1=True"):
        fill_input_types(json.dumps(executor_input), None)
    with pytest.raises(ValueError, match="'examples'"):
        fill_input_types(json.dumps(executor_input), json.dumps({"artifacts": {}}))


def test_the_compiled_statistics_gen_step_fails_with_tfx_entrypoint_and_runs_with_ours(
        spec, statistics_gen_input, tmp_path):
    container = step_container(spec, STEP)
    executor_input, output_file = statistics_gen_input("empty instanceSchema")

    tfx_run = run_container(TFX_COMMAND, container["args"], executor_input, tmp_path)
    assert tfx_run.returncode != 0
    assert "_retrieve_class_path" in tfx_run.stderr
    assert "AttributeError: 'NoneType' object has no attribute 'get'" in tfx_run.stderr
    assert not output_file.exists()

    ours = run_container(container["command"], container["args"], executor_input, tmp_path)
    assert ours.returncode == 0, ours.stderr[-4000:]
    assert "type taken from the component's inputs spec: tfx.Examples" in ours.stderr
    executor_output = json.loads(output_file.read_text())
    (statistics,) = executor_output["artifacts"]["statistics"]["artifacts"]
    out_uri = Path(executor_input["outputs"]["artifacts"]["statistics"]["artifacts"][0]["uri"])
    assert statistics["uri"] == str(out_uri)
    assert json.loads(statistics["metadata"]["split_names"]) == list(SPLITS)
    for split in SPLITS:
        stats_file = out_uri / f"Split-{split}" / "FeatureStats.pb"
        assert stats_file.stat().st_size > 0, stats_file


def test_the_image_installs_the_entrypoint_the_package_calls():
    dockerfile = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()
    assert "\nCOPY kubeflow kubeflow\n" in dockerfile
    copy_sources = next(line for line in dockerfile.splitlines() if line.startswith("COPY") and "setup.py" in line)
    assert "pyproject.toml" in copy_sources.split()  # the build backend setup.py's package_dir needs (PEP 660)
    (smoke,) = [line for line in dockerfile.splitlines() if 'python -c "import' in line]
    assert "ganpipe.kubeflow.entrypoint" in smoke
