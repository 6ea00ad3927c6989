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
DATAFLOW = ["--runner=DataflowRunner", "--project=my-project", "--region=europe-west4",
            "--temp_location=gs://ganpipe-test-bucket/tmp"]
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
    # (Dataflow with the options its validator requires; see the Beam checks below.)
    for runner in ("dataflow", "FlinkRunner", "sparkrunner", "apache_beam.runners.direct.direct_runner.DirectRunner"):
        args = [f"--runner={runner}", *(DATAFLOW[1:] if runner == "dataflow" else [])]
        assert load_config(None, {"beam.pipeline_args": json.dumps(args)}).beam.pipeline_args == args
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
    (error,) = _run_check_refuses_before_tfx(tmp_path, f"[--direct_num_workers=2, --runner={runner}]")
    assert error.startswith(f"ganpipe: error: beam.pipeline_args[1]='--runner={runner}': ") and message in error


def _run_check_refuses_before_tfx(tmp_path: Path, args_text: str) -> list[str]:
    """`ganpipe run --check --set beam.pipeline_args=<args_text>` in a separate process, so the test can tell
    that neither TFX nor TensorFlow was imported. Asserts exit 2 and nothing written; returns the
    `ganpipe:` lines of stderr."""
    data, output = tmp_path / "images", tmp_path / "out"
    write_png_folder(data, 12)
    script = (
        "import sys\n"
        "from ganpipe.cli import main\n"
        f"code = main.main(['run', '--check', '--data', {str(data)!r}, '--output', {str(output)!r},\n"
        f"                  '--set', {'beam.pipeline_args=' + args_text!r}])\n"
        "print('exit', code, 'tfx' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.stdout.split() == ["exit", "2", "False", "False"], (result.stdout, result.stderr)
    assert not output.exists()
    return [line for line in result.stderr.splitlines() if line.startswith("ganpipe:")]


def test_run_check_passes_with_installed_runners(tmp_path, capsys):
    from ganpipe.cli import main as cli

    data = tmp_path / "images"
    write_png_folder(data, 12)
    code = cli.main(["run", "--check", "--data", str(data), "--output", str(tmp_path / "out"),
                     "--set", f"beam.pipeline_args={ARGS_TEXT}"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "check passed" in captured.out


# --- Beam's own parser and validator, before TFX (pipeline/beam_options.py) --------------------------------

# The option sets the README and docs/deploy.md name, one per runner: Beam 2.74's parser and validator pass
# them offline (no credentials, no job server, no gs:// access).
DOCUMENTED = {
    "direct, multi-process": ARGS,
    "dataflow": [*DATAFLOW, "--sdk_container_image=europe-west4-docker.pkg.dev/my-project/ganpipe/ganpipe:0.1.0-beam"],
    "portable, job server and worker pool": [
        "--runner=PortableRunner", "--job_endpoint=beam-job-server.flink:8099", "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000", "--sdk_container_image=registry.example.com/ganpipe:0.1.0"],
    "flink": ["--runner=FlinkRunner", "--flink_master=flink-jobmanager:8081", "--parallelism=4",
              "--environment_type=DOCKER", "--sdk_container_image=registry.example.com/ganpipe:0.1.0-beam"],
    "spark": ["--runner=SparkRunner", "--spark_master_url=spark://spark-master:7077",
              "--environment_type=EXTERNAL", "--environment_config=localhost:50000"],
    # An option only a job server declares (Flink's checkpointing interval): a portable runner asks the job
    # server for its options at submission (apache_beam/runners/portability/portable_runner.py, Beam 2.74).
    "portable, an option of the job server": ["--runner=PortableRunner", "--job_endpoint=localhost:8099",
                                              "--checkpointing_interval=60000"],
}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_option_sets_pass_beams_parser_and_validator(name):
    args = DOCUMENTED[name]
    assert load_config(None, {"beam.pipeline_args": json.dumps(args)}).beam.pipeline_args == args


MISSING_TEMP = ("beam.pipeline_args: refused by Beam's checks for DataflowRunner: Missing GCS path option: "
                "temp_location. (give --temp_location=gs://BUCKET/PATH: a default bucket that Beam could create at "
                "run time cannot be checked before TFX)")


@pytest.mark.parametrize("args, message", [
    # Beam's parser: all PipelineOptions subclasses' arguments (apache_beam/options/pipeline_options.py, Beam
    # 2.74, get_all_options); its argparse error, without argparse's usage dump of every Beam option.
    ([*ARGS[:2], "--direct_num_workers=two"], "beam.pipeline_args[2]='--direct_num_workers=two': refused by Beam's "
                                              "option parser: argument --direct_num_workers: invalid int value: 'two'"),
    (["--direct_running_mode=bogus"], "beam.pipeline_args[0]='--direct_running_mode=bogus': refused by Beam's option "
                                      "parser: argument --direct_running_mode: invalid choice: 'bogus' (choose from "
                                      "'in_memory', 'multi_threading', 'multi_processing')"),
    ([DATAFLOW[0], "--project", *DATAFLOW[2:]], "beam.pipeline_args[1]='--project': refused by Beam's option parser: "
                                                "argument --project: expected one argument"),
    (["--runner=FlinkRunner", "--flink_version=1.16"],
     "beam.pipeline_args[1]='--flink_version=1.16': refused by Beam's option parser: argument --flink_version: "
     "invalid choice: '1.16' (choose from '1.17', '1.18', '1.19', '1.20', '2.0')"),
    # No options class declares it: Beam would only log "Unparseable argument" (pipeline.py, _run_internal)
    # and, here, run on one worker.
    ([*ARGS[:2], "--direct_num_worker=2"], "beam.pipeline_args[2]='--direct_num_worker=2': no installed Beam option "
                                           "is named --direct_num_worker (did you mean --direct_num_workers?); Beam "
                                           "would ignore it with only a warning"),
    ([*DATAFLOW[:3], "--temp_locaton=gs://ganpipe-test-bucket/tmp"],
     "beam.pipeline_args[3]='--temp_locaton=gs://ganpipe-test-bucket/tmp': no installed Beam option is named "
     "--temp_locaton (did you mean --temp_location?)"),
    # PipelineOptionsValidator(options, runner), as beam.Pipeline runs it (options/pipeline_options_validator.py,
    # Beam 2.74). Without --temp_location Beam also names staging_location, which it fills from temp_location.
    (DATAFLOW[:3], MISSING_TEMP),
    ([*DATAFLOW[:1], "--project=123456", *DATAFLOW[2:]],
     "beam.pipeline_args: refused by Beam's checks for DataflowRunner: Invalid Project ID (123456). Please make "
     "sure you specified the Project ID, not project number."),
    ([*DATAFLOW[:3], "--temp_location=/tmp/beam"],
     "beam.pipeline_args: refused by Beam's checks for DataflowRunner: Invalid GCS path (/tmp/beam), given for the "
     "option: temp_location."),
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099", "--environment_type=PROCESS"],
     "beam.pipeline_args: refused by Beam's checks for PortableRunner: Option process_command is required for "
     "environment type PROCESS."),
])
def test_args_beam_refuses_are_one_line_in_beams_words(args, message):
    with pytest.raises(ConfigError, match=_literal(message)) as error:
        load_config(None, {"beam.pipeline_args": json.dumps(args)})
    text = str(error.value)
    assert "\n" not in text and "usage:" not in text and "staging_location" not in text


@pytest.mark.parametrize("args, message", [
    (["--direct_num_workers=two"], "beam.pipeline_args[0]='--direct_num_workers=two': refused by Beam's option "
                                   "parser: argument --direct_num_workers: invalid int value: 'two'"),
    (["--direct_num_worker=2"], "beam.pipeline_args[0]='--direct_num_worker=2': no installed Beam option is named "
                                "--direct_num_worker (did you mean --direct_num_workers?)"),
    (DATAFLOW[:3], MISSING_TEMP),
])
def test_args_beam_refuses_are_one_line_and_exit_2_from_run_check_before_tfx(tmp_path, args, message):
    (error,) = _run_check_refuses_before_tfx(tmp_path, json.dumps(args))
    assert error.startswith(f"ganpipe: error: {message}")


def test_dataflow_in_a_local_run_is_refused_before_tfx_as_its_workers_cannot_write_the_local_output(tmp_path):
    (error,) = _run_check_refuses_before_tfx(tmp_path, json.dumps(DATAFLOW))
    assert error.startswith("ganpipe: error: beam.pipeline_args: --runner=DataflowRunner runs the Beam steps on "
                            "workers elsewhere, which cannot write this local run's output_dir")


@pytest.mark.parametrize("overrides, message", [
    ({"data.path": "/mnt/pipeline/images"}, "data.path='/mnt/pipeline/images': --runner=DataflowRunner reads the "
                                            "input on its own workers, which reach neither the pipeline-root volume"),
    ({"data.path": "s3://bucket/images"}, "data.path='s3://bucket/images': --runner=DataflowRunner reads the input"),
    ({"kubeflow.pipeline_root": "s3://bucket/root"}, "kubeflow.pipeline_root='s3://bucket/root': with "
                                                     "--runner=DataflowRunner it must be gs://"),
])
def test_dataflow_on_a_cluster_needs_its_input_and_pipeline_root_where_its_workers_reach(overrides, message):
    """Dataflow's workers read the input and write the Beam steps' outputs under the pipeline root
    themselves: a PVC path, or a store other than GCS, fails only inside the job."""
    from ganpipe.kubeflow.runner import cluster_config, cluster_input

    config = load_config(None, {"beam.pipeline_args": json.dumps(DATAFLOW), "kubeflow.image": IMAGE,
                                "kubeflow.pipeline_root": ROOT, **overrides})
    with pytest.raises(ConfigError) as raised:
        cluster_input(cluster_config(config))
    assert str(raised.value).startswith(message)
    assert cluster_input(cluster_config(load_config(None, {"beam.pipeline_args": json.dumps(DATAFLOW),
                                                           "kubeflow.image": IMAGE, "kubeflow.pipeline_root": ROOT,
                                                           "data.path": "gs://bucket/images"})))


def test_options_dataflow_hands_to_its_service_are_not_refused():
    """Dataflow passes options no Beam class declares on to the service (Beam 2.74,
    runners/dataflow/internal/apiclient.py, get_all_options(retain_unknown_options=True)); DirectRunner drops them."""
    assert load_config(None, {"beam.pipeline_args": json.dumps([*DATAFLOW, "--service_only_flag=1"])})
    with pytest.raises(ConfigError, match="--service_only_flag"):
        load_config(None, {"beam.pipeline_args": json.dumps(["--service_only_flag=1"])})


def test_a_url_output_dir_or_a_file_url_input_is_one_line_before_tfx(tmp_path, capsys):
    from ganpipe.cli import main as cli

    data = tmp_path / "images"
    write_png_folder(data, 12)
    for argv, message in (
            (["--data", str(data), "--output", "gs://bucket/out"], "output_dir gs://bucket/out: a local run writes "
                                                                   "MLMD's database and pushes on this machine"),
            (["--data", f"file://{data}", "--output", str(tmp_path / "out")], f"data.path file://{data}: give the "
                                                                              f"local path ({data})")):
        assert cli.main(["run", "--check", *argv]) == cli.EXIT_BAD_INPUT
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ganpipe:")]
        assert len(errors) == 1 and errors[0].startswith(f"ganpipe: error: {message}"), errors
    assert not (tmp_path / "out").exists()


def test_a_runner_failing_without_a_message_is_named_by_its_error_type(tmp_path, capsys):
    """Run-time refusals Beam cannot judge before TFX surface as the component's error. One has no message:
    Beam 2.74's PortableRunner raises grpc.FutureTimeoutError() when --job_endpoint does not answer within
    --job_server_timeout (portable_runner.py; seen here with localhost:1 and a 5 s timeout, ~28 s in all)."""
    import grpc

    from ganpipe.cli import main as cli

    assert cli._report_stop(grpc.FutureTimeoutError(), str(tmp_path)) == cli.EXIT_STOPPED
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "ganpipe: the pipeline stopped: grpc.FutureTimeoutError (no message)"
    assert "FutureTimeoutError" in (tmp_path / "last_error.txt").read_text()


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
    executor's Context; the executor's own `_make_beam_pipeline` then builds (not runs) its Beam pipeline.
    The executors are made inside the run's temp folder, as `ganpipe run` makes them: each builds TFX's sdist."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
    from tfx.dsl.compiler import compiler
    from tfx.dsl.components.base import base_beam_executor
    from tfx.orchestration.portable import beam_executor_operator
    from tfx.proto.orchestration import executable_spec_pb2, pipeline_pb2
    from tfx.utils import import_utils

    from ganpipe.pipeline.local_runner import temp_dir_of_this_run

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
        with temp_dir_of_this_run():
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


def test_a_runs_data_path_is_held_to_the_packages_beam_runner(tmp_path):
    """`submit --param data_path=...` replaces the compiled data.path, so compile's rule for Dataflow
    (gs:// only) must hold for the run's value too, before anything is sent."""
    from ganpipe.kubeflow import client as kfp_client
    from ganpipe.kubeflow.runner import compile_pipeline

    config = load_config(None, {"beam.pipeline_args": json.dumps(DATAFLOW), "kubeflow.image": IMAGE,
                                "kubeflow.pipeline_root": ROOT, "data.path": "gs://bucket/images"})
    package = compile_pipeline(config, str(tmp_path)).package_path
    for local in ("/mnt/pipeline/images", "s3://bucket/images"):
        with pytest.raises(kfp_client.SubmitError, match="the package runs its Beam steps on --runner=DataflowRunner"):
            kfp_client.validate_params(package, [f"data_path={local}"])
    assert kfp_client.validate_params(package, ["data_path=gs://bucket/other"]) == {
        "data_path": "gs://bucket/other"}


def _executor_path(step: str) -> str:
    return {"ImageExampleGen": "ganpipe.components.image_example_gen.executor.Executor",
            "StatisticsGen": "tfx.components.statistics_gen.executor.Executor"}[step]


def _literal(text: str) -> str:
    return re.escape(text)
