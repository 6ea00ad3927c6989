"""`beam.pipeline_args`: checked with the config, given to every Beam step, locally and in the compiled package.

The Beam steps are the components with a BeamExecutorSpec: ImageExampleGen (ours) or ImportExampleGen
(TFRecord input), and StatisticsGen. TFX 1.16 prepends `tfx.dsl.Pipeline(beam_pipeline_args=...)` to
each one's executor spec (tfx/orchestration/pipeline.py, add_beam_pipeline_args_to_component); the
KubeflowV2DagRunner writes a Beam step's spec args after its container args
(tfx/orchestration/kubeflow/v2/step_builder.py), which TFX's container entrypoint hands back to the
executor as its beam_pipeline_args.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ganpipe.pipeline.config import ConfigError, PipelineConfig, load_config
from tests.conftest import run_cli, write_png_folder

ARGS = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
ARGS_TEXT = json.dumps(ARGS, separators=(",", ":"))  # ["--runner=DirectRunner",...] as a user types it
BEAM_STEPS = ("ImageExampleGen", "StatisticsGen")
IMAGE = "registry.example.com/ganpipe:0.1.0"
ROOT = "gs://ganpipe-test-bucket/pipeline-root"


# --- the config key ---------------------------------------------------------------------------------------

def test_the_default_is_empty_and_a_list_comes_from_yaml_and_from_set(tmp_path):
    assert load_config().beam.pipeline_args == []
    path = tmp_path / "run.yaml"
    path.write_text("beam:\n  pipeline_args:\n" + "".join(f"    - {arg}\n" for arg in ARGS))
    assert load_config(str(path)).beam.pipeline_args == ARGS
    assert load_config(None, {"beam.pipeline_args": ARGS_TEXT}).beam.pipeline_args == ARGS
    # YAML flow style without quotes, values with ':' and '=' in them, and a bare flag.
    typed = "[--runner=PortableRunner, --job_endpoint=localhost:8099, --labels=team=gan, --save_main_session]"
    assert load_config(None, {"beam.pipeline_args": typed}).beam.pipeline_args == [
        "--runner=PortableRunner", "--job_endpoint=localhost:8099", "--labels=team=gan", "--save_main_session"]
    # Runner names resolve as Beam's create_runner resolves them: any case, "Runner" optional, or a class path.
    for runner in ("dataflow", "FlinkRunner", "sparkrunner", "apache_beam.runners.direct.direct_runner.DirectRunner"):
        assert load_config(None, {"beam.pipeline_args": f"[--runner={runner}]"}).beam.pipeline_args
    assert load_config(None, {"beam.pipeline_args": "[]"}).beam.pipeline_args == []


@pytest.mark.parametrize("text, message", [
    ("--runner=DirectRunner", 'beam.pipeline_args=\'--runner=DirectRunner\': expected a list of text'),
    ("{runner: DirectRunner}", "beam.pipeline_args={'runner': 'DirectRunner'}: expected a list of text"),
    ("null", "beam.pipeline_args=None: expected a list of text"),
    ("[--runner=DirectRunner, 2]", "beam.pipeline_args[1]=2: expected str"),
    ("[[--direct_num_workers=2]]", "beam.pipeline_args[0]=['--direct_num_workers=2']: expected str"),
    ("[direct_num_workers=2]", "beam.pipeline_args[0]='direct_num_workers=2': each element must be one Beam option"),
    ("[--runner, DirectRunner]", "beam.pipeline_args[0]='--runner': name the runner"),
    ("['--runner DirectRunner']", "beam.pipeline_args[0]='--runner DirectRunner': each element must be one Beam"),
    ("[--runner=NoSuchRunner]", "beam.pipeline_args[0]='--runner=NoSuchRunner': not a Beam runner; known: "
                                "DataflowRunner"),
    ("[--runner=no_such_module.Runner]", "runner no_such_module.Runner is not installed here (ModuleNotFoundError"),
    ("[--runner=os.path]", "os.path is not a Beam PipelineRunner class"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=_literal(message)) as from_set:
        load_config(None, {"beam.pipeline_args": text})
    path = tmp_path / "run.yaml"
    path.write_text(f"beam:\n  pipeline_args: {text}\n")
    with pytest.raises(ConfigError, match=_literal(message)) as from_yaml:
        load_config(str(path))
    assert "\n" not in str(from_set.value) and "\n" not in str(from_yaml.value)


@pytest.mark.parametrize("runner, message", [
    ("NoSuchRunner", "not a Beam runner"),
    ("no_such_module.Runner", "is not installed here"),
])
def test_a_runner_that_is_not_installed_is_one_line_and_exit_2_from_run_check_before_tfx(tmp_path, runner, message):
    """A separate process, so the test can tell that neither TFX nor TensorFlow was imported."""
    data, output = tmp_path / "images", tmp_path / "out"
    write_png_folder(data, 12)
    script = (
        "import sys\n"
        "from ganpipe.cli import main\n"
        f"code = main.main(['run', '--check', '--data', {str(data)!r}, '--output', {str(output)!r},\n"
        f"                  '--set', 'beam.pipeline_args=[--direct_num_workers=2, --runner={runner}]'])\n"
        "print('exit', code, 'tfx' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.stdout.split() == ["exit", "2", "False", "False"], (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ganpipe:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"ganpipe: error: beam.pipeline_args[1]='--runner={runner}': ") and message in errors[0]
    assert not output.exists()


def test_run_check_passes_with_installed_runners(tmp_path, capsys):
    from ganpipe.cli import main as cli

    data = tmp_path / "images"
    write_png_folder(data, 12)
    code = cli.main(["run", "--check", "--data", str(data), "--output", str(tmp_path / "out"),
                     "--set", f"beam.pipeline_args={ARGS_TEXT}"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "check passed" in captured.out


# --- local runs: the args reach the Beam executors --------------------------------------------------------

def _pipeline(config: PipelineConfig, data_format: str = "npz"):
    from ganpipe.pipeline.pipeline import create_pipeline

    return create_pipeline(config, "/data/x.npz" if data_format == "npz" else "/data/records", data_format,
                           schema_file="/tmp/unused/schema.pbtxt")


@pytest.mark.parametrize("data_format, example_gen", [("npz", "ImageExampleGen"), ("tfrecord", "ImportExampleGen")])
def test_the_args_reach_every_beam_component_and_no_other(data_format, example_gen):
    from tfx.dsl.components.base import executor_spec

    config = load_config(None, {"beam.pipeline_args": ARGS_TEXT, "output_dir": "/tmp/unused"})
    pipeline = _pipeline(config, data_format)
    assert pipeline.beam_pipeline_args == ARGS
    beam_components = {c.id: c for c in pipeline.components
                       if isinstance(c.executor_spec, executor_spec.BeamExecutorSpec)}
    assert set(beam_components) == {example_gen, "StatisticsGen"}
    for component in beam_components.values():
        assert component.executor_spec.beam_pipeline_args == ARGS, component.id


def test_empty_args_leave_the_beam_components_as_they_were():
    pipeline = _pipeline(PipelineConfig(output_dir="/tmp/unused"))
    assert pipeline.beam_pipeline_args == []
    for step in BEAM_STEPS:
        component = next(c for c in pipeline.components if c.id == step)
        assert component.executor_spec.beam_pipeline_args == [], step


def test_local_dag_runner_hands_the_args_to_the_executors_beam_pipeline():
    """What LocalDagRunner runs: the compiled IR's executor spec, through TFX's BeamExecutorOperator, into the
    executor's Context; the executor's own `_make_beam_pipeline` then builds (not runs) its Beam pipeline."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
    from tfx.dsl.compiler import compiler
    from tfx.dsl.components.base import base_beam_executor
    from tfx.orchestration.portable import beam_executor_operator
    from tfx.proto.orchestration import executable_spec_pb2, pipeline_pb2
    from tfx.utils import import_utils

    config = load_config(None, {"beam.pipeline_args": ARGS_TEXT, "output_dir": "/tmp/unused"})
    ir = compiler.Compiler().compile(_pipeline(config))
    specs = pipeline_pb2.IntermediateDeploymentConfig()
    assert ir.deployment_config.Unpack(specs)
    for step in BEAM_STEPS:
        beam_spec = executable_spec_pb2.BeamExecutableSpec()
        assert specs.executor_specs[step].Unpack(beam_spec), step
        operator = beam_executor_operator.BeamExecutorOperator(beam_spec)
        resolved = [_resolve(arg) for arg in operator.beam_pipeline_args]
        assert resolved == ARGS, step
        executor_class = import_utils.import_class_by_path(beam_spec.python_executor_spec.class_path)
        executor = executor_class(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=resolved))
        options = executor._make_beam_pipeline().options  # pylint: disable=protected-access
        assert options.view_as(StandardOptions).runner == "DirectRunner", step
        direct = options.view_as(DirectOptions)
        assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 2), step


def _resolve(expression):
    """As BeamExecutorOperator.run_executor resolves a Beam arg (an execution without inputs or properties)."""
    from tfx.dsl.compiler import placeholder_utils
    from tfx.orchestration.portable import data_types

    context = placeholder_utils.ResolutionContext(exec_info=data_types.ExecutionInfo())
    return placeholder_utils.resolve_placeholder_expression(expression, context)


# --- the compiled Kubeflow package ------------------------------------------------------------------------

def test_compile_with_set_puts_the_args_on_both_beam_steps_of_the_package(tmp_path):
    dataflow = ["--runner=DataflowRunner", "--project=my-project", "--region=europe-west4",
                "--temp_location=gs://ganpipe-test-bucket/tmp"]
    result = run_cli("compile", "--pipeline-root", ROOT, "--image", IMAGE,
                     "--set", f"beam.pipeline_args={json.dumps(dataflow)}", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    package = tmp_path / "ganpipe_output" / "kubeflow" / "ganpipe.yaml"
    spec = json.loads(package.read_text().split("\n", 1)[1].split("\n---\n")[0])
    executors = spec["deploymentSpec"]["executors"]
    for step in BEAM_STEPS:
        container = executors[f"{step}_executor"]["container"]
        args = container["args"]
        # TFX's entrypoint arguments first, then the Beam args, as its parse_known_args hands them on.
        assert args[:2] == ["--executor_class_path", _executor_path(step)], step
        assert args[-len(dataflow):] == dataflow, step
        assert container["image"] == IMAGE, step
    # TFX 1.16's runner appends the pipeline's Beam args to the other steps too (step_builder.py); its
    # entrypoint hands them to a non-Beam executor as `extra_flags`, which no executor in this pipeline reads.
    assert executors["Trainer_executor"]["container"]["args"][-len(dataflow):] == dataflow
    # The kfp SDK's own loader reads the same args from the package it uploads.
    from kfp.client.client import _extract_pipeline_yaml

    loaded = _extract_pipeline_yaml(str(package)).pipeline_spec.deployment_spec["executors"]
    for step in BEAM_STEPS:
        assert list(loaded[f"{step}_executor"]["container"]["args"])[-len(dataflow):] == dataflow, step


def _executor_path(step: str) -> str:
    return {"ImageExampleGen": "ganpipe.components.image_example_gen.executor.Executor",
            "StatisticsGen": "tfx.components.statistics_gen.executor.Executor"}[step]


def _literal(text: str) -> str:
    return re.escape(text)
