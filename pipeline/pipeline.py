"""create_pipeline(): the one place that wires ganpipe's components together.

    ImageExampleGen | ImportExampleGen (existing TFRecords)
      -> StatisticsGen (image-domain stats) -> ExampleValidator <- ImportSchemaGen (curated)
      -> DataGate (hard stop)  -> Trainer (run_fn in trainer/)
      -> GanEvaluator (vs. eval split and the generator serving now) -> Pusher
      -> SyntheticExampleGen (export.synthetic_count > 0, only when the Pusher pushed)
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx.components import ImportExampleGen

from ganpipe.components.data_gate.component import DataGate
from ganpipe.components.gan_evaluator.component import GanEvaluator
from ganpipe.components.image_example_gen import filesystem, sources
from ganpipe.components.image_example_gen.component import ImageExampleGen
from ganpipe.components.image_example_gen.config import IngestConfig
from ganpipe.components.serving_pusher.component import ServingPusher
from ganpipe.components.synthetic_example_gen.component import SyntheticExampleGen
from ganpipe.components.synthetic_example_gen.executor import PUSHED_PROPERTY
from ganpipe.evaluation.config import GATE_LIMITS
from ganpipe import contract
from ganpipe.pipeline import schema as curated_schema
from ganpipe.pipeline.config import PipelineConfig

TRAINER_RUN_FN = "ganpipe.trainer.task.run_fn"
# Under the pipeline root: GanEvaluator's domain classifiers, cached by dataset so nightly runs share them.
CLASSIFIER_CACHE_DIR = "domain_classifiers"


def create_pipeline(
    config: PipelineConfig,
    data_path: str,
    data_format: str,
    *,
    pipeline_root: str | None = None,
    schema_file: str | None = None,
    on_cluster: bool | None = None,
    ingest: IngestConfig | None = None,
    runtime_parameters: bool = False,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline for an already resolved input (see ganpipe.pipeline.inputs).

    `pipeline_root` and `schema_file` override the local defaults when the
    pipeline is compiled for Kubeflow (kubeflow/runner.py).
    `on_cluster` (default: inside a Kubernetes pod) lets a Trainer with
    train.workers > 1 run its workers as a TFJob (kubeflow.tfjob).
    `ingest` overrides what ImageExampleGen gets (default: ``config.ingest_config()``).
    `runtime_parameters` (Kubeflow): the data path, the steps and the gate's
    limits become pipeline parameters (``RUNTIME_PARAMETERS``) whose defaults
    are this config's, so a recurring run or the KFP UI changes them without
    recompiling. LocalDagRunner runs take the config's values directly.
    """
    pipeline_root = pipeline_root or config.pipeline_root
    parameters = _runtime_parameters(config, data_path) if runtime_parameters else {}
    input_base = parameters.get("data_path", data_path)
    if data_format == "tfrecord":
        example_gen = _import_example_gen(input_base, data_path, config.data.eval_fraction)
    else:
        # A path given at run time may hold another format than the one compiled against: detect it there.
        example_gen = ImageExampleGen(input_base=input_base, data_format="auto" if parameters else data_format,
                                      config=ingest or config.ingest_config())
    examples = example_gen.outputs["examples"]

    statistics_gen = tfx.components.StatisticsGen(
        examples=examples, stats_options=tfdv.StatsOptions(enable_semantic_domain_stats=True)
    )
    schema_file = schema_file or curated_schema.write_schema(
        curated_schema.build_schema(config.train.channels, config.data.convert_channels), pipeline_root
    )
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    data_gate = DataGate(
        examples=examples,
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        max_bad_fraction=parameters.get("max_bad_fraction", config.data.max_bad_fraction),
        min_images=config.data.min_images,
        min_eval_images=config.evaluate.min_eval_images(),
    )
    trainer = tfx.components.Trainer(
        run_fn=TRAINER_RUN_FN,
        examples=examples,
        schema=data_gate.outputs["validated_schema"],
        train_args=parameters.get("train_args", _train_args(config)),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=0),
        custom_config={"trainer": config.train.to_dict(), **_tfjob_custom_config(config, on_cluster)},
        custom_executor_spec=_trainer_executor_spec(config, on_cluster),
    )
    evaluator = GanEvaluator(
        examples=examples,
        model=trainer.outputs["model"],
        serving_base=config.serving_base,
        config=config.evaluate,
        image_size=config.train.image_size,
        channels=config.train.channels,
        limits={name: parameters[name] for name in GATE_LIMITS if name in parameters},
        classifier_cache=os.path.join(pipeline_root, CLASSIFIER_CACHE_DIR),
    )
    # The stock Pusher with an executor that numbers versions 1, 2, 3... and
    # publishes each by atomic rename (components/serving_pusher).
    pusher = ServingPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        serving_base=config.serving_base,
        keep_versions=config.push.keep_versions,
    ).with_id("Pusher")
    components = [example_gen, statistics_gen, schema_gen, example_validator, data_gate, trainer, evaluator, pusher]
    if config.export.synthetic_count:
        components.append(_synthetic_example_gen(pusher, config.export.synthetic_count))
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path
        ),
        enable_cache=False,
        # beam.pipeline_args: TFX prepends them to the args of every component with a BeamExecutorSpec
        # (ImageExampleGen or ImportExampleGen, StatisticsGen); empty keeps Beam's in-process DirectRunner.
        beam_pipeline_args=list(config.beam.pipeline_args),
    )


def _synthetic_example_gen(pusher: ServingPusher, count: int) -> SyntheticExampleGen:
    """Samples of the generator just pushed, as Examples; runs only when the Pusher pushed.

    ``tfx.dsl.Cond`` on the PushedModel's `pushed` property (1 after a push, 0
    when the blessing or a newer serving version stopped it): LocalDagRunner
    skips the step, and the Kubeflow V2 compile turns it into the task's
    trigger condition, so a run that did not push writes no synthetic data.
    """
    pushed_model = pusher.outputs["pushed_model"]
    pushed = pushed_model.future()
    # TFX 1.16's OutputChannel.future() presets the placeholder key "_Pusher.pushed_model". The Kubeflow V2
    # step builder keeps that key in the trigger condition but declares the input only under the consumer's
    # own name, "pushed_model" (the component already takes the channel), so KFP's driver could not
    # evaluate the condition. Without a preset key each compiler names the input it declares.
    pushed.set_key(None)
    with tfx.dsl.Cond(pushed[0].custom_property(PUSHED_PROPERTY) == 1):
        return SyntheticExampleGen(pushed_model=pushed_model, count=count)


# name: what it sets. The names are the pipeline's input parameters in the compiled package
# (root.inputDefinitions.parameters), as the KFP UI and `ganpipe submit --param` show them.
RUNTIME_PARAMETERS = {
    "data_path": "data.path (a folder, .npz, IDX or TFRecords on object storage or the pipeline-root volume)",
    "train_args": 'the Trainer\'s TrainArgs as JSON: {"splits": ["train"], "num_steps": N} sets train.steps; '
                  '0 keeps the compiled train.steps (auto: from the image size)',
    "max_bad_fraction": "data.max_bad_fraction",
    **{name: f"evaluate.{name}" for name in GATE_LIMITS},
}


def runtime_parameter_defaults(config: PipelineConfig, data_path: str) -> dict[str, str | float]:
    """{name: default} of RUNTIME_PARAMETERS: this config's values (TFX does not write them into the
    PipelineSpec; kubeflow/runner.py does)."""
    from google.protobuf import json_format

    defaults: dict[str, str | float] = {
        "data_path": data_path,
        # num_steps 0 (auto) is shown too: the run form is where users change it.
        "train_args": json_format.MessageToJson(_train_args(config), indent=None, sort_keys=True,
                                                including_default_value_fields=True),
        "max_bad_fraction": float(config.data.max_bad_fraction),
        **{name: float(getattr(config.evaluate, name)) for name in GATE_LIMITS},
    }
    assert set(defaults) == set(RUNTIME_PARAMETERS)
    return defaults


def _train_args(config: PipelineConfig) -> tfx.proto.TrainArgs:
    """The Trainer's TrainArgs: the train split, train.steps (the `train_args` runtime parameter's default;
    num_steps 0, which TFX passes on as no steps, is auto: the trainer resolves it from the stored size)."""
    return tfx.proto.TrainArgs(splits=["train"], num_steps=config.train.steps)


def _runtime_parameters(config: PipelineConfig, data_path: str) -> dict:
    """RUNTIME_PARAMETERS as TFX RuntimeParameters, defaulting to this config's values."""
    return {name: tfx.dsl.experimental.RuntimeParameter(name=name, ptype=type(default), default=default)
            for name, default in runtime_parameter_defaults(config, data_path).items()}


def trains_as_tfjob(config: PipelineConfig, on_cluster: bool | None = None) -> bool:
    """True when the Trainer launches a TFJob: on a cluster, with train.workers > 1 and kubeflow.tfjob."""
    if on_cluster is None:
        on_cluster = "KUBERNETES_SERVICE_HOST" in os.environ  # set by Kubernetes in every pod
    return on_cluster and config.kubeflow.tfjob and getattr(config.train, "workers", 1) > 1


def _tfjob_custom_config(config: PipelineConfig, on_cluster: bool | None) -> dict:
    if not trains_as_tfjob(config, on_cluster):
        return {}
    from ganpipe.components.tfjob_trainer.settings import CUSTOM_CONFIG_KEY, TFJobSettings

    cluster = config.kubeflow
    settings = TFJobSettings(
        image=cluster.image, namespace=cluster.namespace, job_prefix=config.pipeline_name,
        gpus=cluster.trainer_gpus, gpu_resource=cluster.gpu_resource,
        cpu=cluster.trainer_cpu, memory_gb=cluster.trainer_memory_gb,
        pvc=cluster.pipeline_root_pvc, mount_path=cluster.pipeline_root_mount,
        service_account=cluster.service_account,
        timeout_s=cluster.tfjob_timeout_s, poll_s=cluster.tfjob_poll_s,
    )
    return {CUSTOM_CONFIG_KEY: settings.to_dict()}


def _trainer_executor_spec(config: PipelineConfig, on_cluster: bool | None):
    """None keeps the stock in-process Trainer executor."""
    if not trains_as_tfjob(config, on_cluster):
        return None
    from tfx.dsl.components.base import executor_spec

    from ganpipe.components.tfjob_trainer.executor import Executor as TFJobTrainerExecutor

    return executor_spec.ExecutorClassSpec(TFJobTrainerExecutor)


def _is_record_folder(data_path: str) -> bool:
    """A folder of TFRecords rather than one file. A URL is judged by its name: building (or compiling)
    the pipeline asks no store anything, as the machine that compiles may not reach it."""
    if filesystem.is_url(data_path):
        return not data_path.lower().endswith(sources.TFRECORD_SUFFIXES)
    return os.path.isdir(data_path)


def _import_example_gen(input_base: Any, data_path: str, eval_fraction: float) -> ImportExampleGen:
    """Existing tf.Example TFRecords go through the stock component, split by content.

    ``input_base``: ``data_path``, or the ``data_path`` runtime parameter.

    Buckets come from the hash of the `sha256` feature (the contract's content
    digest), not of the serialized record, so duplicates land in the same
    split as they do in ImageExampleGen.
    """
    eval_buckets = max(1, round(eval_fraction * 100))
    if isinstance(input_base, str) and not _is_record_folder(data_path):  # one file: its folder, its name
        input_base, pattern = os.path.split(data_path)
    else:  # a folder, or a runtime parameter (documented to name a folder of TFRecords)
        pattern = "*"
    return ImportExampleGen(
        input_base=input_base,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=pattern)]),
        output_config=tfx.proto.Output(
            split_config=tfx.proto.SplitConfig(
                partition_feature_name=contract.SHA256_KEY,
                splits=[
                    tfx.proto.SplitConfig.Split(name="train", hash_buckets=100 - eval_buckets),
                    tfx.proto.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
                ]
            )
        ),
    )
