"""Run-time parameters of the Kubeflow package: declared with the config's defaults, and their values reach
the executors.

The second half runs the pipeline exactly as compiled for Kubeflow (runtime_parameters=True) under the real
LocalDagRunner, after substituting parameter values into the compiled IR the way the KFP driver hands a run's
values to each task. No KFP server runs here; the driver's rule for parameters a run leaves out is encoded
against kubeflow/pipelines backend/src/v2/driver/resolve.go (master, read 2026-11): a parameter that is not
optional and has no default fails the task ("neither value nor default value provided for non-optional
parameter"), so every declared parameter carries ``defaultValue`` and ``isOptional: true``.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from ganpipe.evaluation.config import GATE_LIMITS, EvaluateConfig
from ganpipe.kubeflow import client as kfp_client
from ganpipe.pipeline.config import load_config
from ganpipe.pipeline.pipeline import RUNTIME_PARAMETERS, runtime_parameter_defaults
from ganpipe.trainer.task import config_from_fn_args
from tests.conftest import TINY_RUN_FLAGS, write_png_folder


def _package_spec(path: str) -> dict:
    text = Path(path).read_text()
    return json.loads(text.split("\n", 1)[1].split("\n---\n")[0])


@pytest.fixture(scope="module")
def compiled_package(tmp_path_factory) -> str:
    from ganpipe.kubeflow.runner import compile_pipeline

    config = load_config(overrides={"kubeflow.pipeline_root": "gs://bucket/root", "kubeflow.image": "ganpipe:0.1.0",
                                    "train.steps": "1234", "evaluate.max_fid_over_floor": "5"})
    return compile_pipeline(config, str(tmp_path_factory.mktemp("kfp"))).package_path


def test_every_runtime_parameter_is_declared_with_the_config_default(compiled_package):
    from kfp import components

    declared = _package_spec(compiled_package)["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == set(RUNTIME_PARAMETERS)
    assert all(spec["isOptional"] is True and "defaultValue" in spec for spec in declared.values())
    # The kfp SDK reads them as a pipeline with defaults (what its UI's run form shows).
    inputs = components.load_component_from_file(compiled_package).component_spec.inputs
    assert inputs["max_fid_over_floor"].default == 5.0 and inputs["max_fid"].default == 0.0
    assert json.loads(inputs["train_args"].default) == {"numSteps": 1234, "splits": ["train"]}
    assert inputs["data_path"].default.endswith(".npz")


def test_each_parameter_feeds_its_task(compiled_package):
    tasks = _package_spec(compiled_package)["root"]["dag"]["tasks"]

    def fed(task: str) -> dict:
        return {key: value["componentInputParameter"] for key, value in tasks[task]["inputs"]["parameters"].items()
                if "componentInputParameter" in value}

    assert fed("ImageExampleGen") == {"input_base": "data_path"}
    assert fed("Trainer") == {"train_args": "train_args"}
    assert fed("DataGate") == {"max_bad_fraction": "max_bad_fraction"}
    assert fed("GanEvaluator") == {name: name for name in GATE_LIMITS}


@pytest.mark.parametrize("param, message", [
    ("max_fid=-1", "max_fid"),
    ("max_fid_over_floor=0.5", "below 1"),
    ("min_coverage=nan", "finite"),
    ("min_recall=lots", "expected a number"),
    ("train_args={\"num_steps\": -1}", "num_steps"),
    ("train_args=600", "TrainArgs JSON"),
    ("data_path=relative/folder", "object storage"),
    ("stepz=3", "declares no such parameter"),
    ("no-equals", "NAME=VALUE"),
])
def test_bad_params_are_refused_before_anything_is_sent(compiled_package, param, message):
    with pytest.raises(kfp_client.SubmitError, match=message):
        kfp_client.validate_params(compiled_package, [param])


def test_good_params_are_typed_as_the_package_declares_them(compiled_package):
    assert kfp_client.validate_params(compiled_package, [
        "max_fid_over_floor=4", "data_path=gs://bucket/images", 'train_args={"num_steps": 50}',
    ]) == {"max_fid_over_floor": 4.0, "data_path": "gs://bucket/images", "train_args": '{"num_steps": 50}'}
    # 0: TFX hands it on as "not given", so the package's train.steps holds (auto unless compiled with --steps)
    assert kfp_client.validate_params(compiled_package, ['train_args={"num_steps": 0}']) == {
        "train_args": '{"num_steps": 0}'}
    # Without a remote Beam runner, a path on the pipeline-root volume is a run's input too.
    assert kfp_client.validate_params(compiled_package, ["data_path=/mnt/pipeline/images"]) == {
        "data_path": "/mnt/pipeline/images"}


def test_limits_and_steps_given_on_their_own_win_over_the_config():
    limits = EvaluateConfig(max_fid_over_floor=8.0).with_limits({"max_fid_over_floor": 3.0, "max_fid": None})
    assert (limits.max_fid_over_floor, limits.max_fid) == (3.0, 0.0)
    with pytest.raises(ValueError, match="max_kid"):
        EvaluateConfig().with_limits({"max_kid": -1.0})
    fn_args = types.SimpleNamespace(custom_config={"trainer": {"steps": 600}}, train_steps=7)
    assert config_from_fn_args(fn_args).steps == 7
    fn_args = types.SimpleNamespace(custom_config={"trainer": {"steps": 0}}, train_steps=None)  # both auto
    assert config_from_fn_args(fn_args).steps == 0
    # the run form shows the step count at auto too, where a zero would vanish from proto3 JSON
    assert runtime_parameter_defaults(load_config(None), "x")["train_args"] == '{"numSteps": 0, "splits": ["train"]}'


def test_parameter_values_reach_the_executors_in_a_real_run(tmp_path):
    """The package's pipeline, with a run's values put in as KFP's driver does: another data folder, 3 steps,
    and a max_fid no generator meets. The run ingests that folder, trains 3 steps, and pushes nothing."""
    from tfx import v1 as tfx
    from tfx.dsl.compiler import compiler
    from tfx.orchestration.portable import runtime_parameter_utils

    from ganpipe.pipeline.pipeline import create_pipeline, runtime_parameter_defaults

    compiled_for, given = tmp_path / "compiled_for", tmp_path / "given"
    write_png_folder(compiled_for, 20, seed=1)
    write_png_folder(given, 40, seed=2)
    overrides: dict[str, str] = {}
    for flag, value in zip(TINY_RUN_FLAGS[::2], TINY_RUN_FLAGS[1::2]):
        key, _, text = (value.partition("=") if flag == "--set" else ("train.steps", "", value))
        overrides[key] = text
    overrides["output_dir"] = str(tmp_path / "out")
    config = load_config(overrides=overrides)
    pipeline = create_pipeline(config, str(compiled_for), "folder", runtime_parameters=True)
    ir = compiler.Compiler().compile(pipeline)
    # What KFP's driver hands the tasks: the run's values, the package's defaults for the rest.
    runtime_parameter_utils.substitute_runtime_parameter(ir, {
        **runtime_parameter_defaults(config, str(compiled_for)),
        "data_path": str(given), "train_args": '{"splits": ["train"], "num_steps": 3}', "max_fid": 1e-9})
    tfx.orchestration.LocalDagRunner().run_with_ir(ir)

    root = tmp_path / "out" / "pipeline_root"
    (report,) = root.glob("ImageExampleGen/examples/*/ingest_report.json")
    assert json.loads(report.read_text())["input_base"] == str(given)
    (trained,) = root.glob("Trainer/model_run/*/checkpoints/*/trainer_config.json")
    assert json.loads(trained.read_text())["steps"] == 3
    (metrics,) = root.glob("GanEvaluator/evaluation/*/metrics.json")
    verdict = json.loads(metrics.read_text())
    assert verdict["blessed"] is False and any("max_fid" in reason for reason in verdict["reasons"]), verdict
    assert not list((tmp_path / "out" / "serving").glob("*/[0-9]*"))


def test_the_gate_figures_reach_kfp_as_artifact_metadata(tmp_path):
    """What the KFP UI can show of the gate with TFX 1.16: TFX's KFP entrypoint turns each output artifact's
    custom properties into the ExecutorOutput's artifact metadata
    (tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py -> translate_executor_output, TFX
    1.16.0), which the KFP launcher stores in MLMD and the UI lists on the artifact. The evaluation page
    itself cannot be a UI visualization: TFX's KFP compiler types outputs only as tfx.* (compiler_utils.
    get_artifact_title), never system.HTML or system.Metrics."""
    import numpy as np
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
    from tfx.types import standard_artifacts

    from ganpipe.components.gan_evaluator import report as evaluation_report

    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "evaluation")
    (tmp_path / "evaluation").mkdir()
    scores = {"fid": 3.5, "kid": 0.02, "recall": 0.4, "coverage": 0.5}
    document = {"extractor": "random-conv-v1", "blessed": False, "reasons": ["candidate FID 3.5 > max_fid 1"],
                "candidate": scores, "baseline": None, "real_floor": dict(scores, fid=0.9), "notes": [],
                "num_samples": 32, "num_real_eval": 32, "seed": 1234, "settings": {}}
    empty = np.zeros((0, 8, 8, 1), np.uint8)
    evaluation_report.write_evaluation(evaluation, document, empty, empty, empty)
    (translated,) = kubeflow_v2_entrypoint_utils.translate_executor_output({"evaluation": [evaluation]}, {}).values()
    metadata = dict(translated.artifacts[0].metadata)
    assert metadata["candidate_fid"] == 3.5 and metadata["real_floor_fid"] == 0.9 and metadata["blessed"] == 0
    assert metadata["extractor"] == "random-conv-v1"
