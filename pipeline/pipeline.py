"""create_pipeline(): the one place that wires ganpipe's components together.

    ImageExampleGen | ImportExampleGen (existing TFRecords)
      -> StatisticsGen (image-domain stats) -> ExampleValidator <- ImportSchemaGen (curated)
      -> DataGate (hard stop)  -> Trainer (run_fn in trainer/)
      -> GanEvaluator (vs. eval split and the latest blessed generator) -> Pusher
"""

from __future__ import annotations

import os

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx.components import ImportExampleGen

from components.data_gate.component import DataGate
from components.gan_evaluator.component import GanEvaluator
from components.image_example_gen.component import ImageExampleGen
from pipeline import schema as curated_schema
from pipeline.config import PipelineConfig

TRAINER_RUN_FN = "trainer.task.run_fn"


def create_pipeline(config: PipelineConfig, data_path: str, data_format: str) -> tfx.dsl.Pipeline:
    """Builds the pipeline for an already resolved input (see pipeline.inputs)."""
    if data_format == "tfrecord":
        example_gen = _import_example_gen(data_path, config.data.eval_fraction)
    else:
        example_gen = ImageExampleGen(
            input_base=data_path,
            data_format=data_format,
            eval_fraction=config.data.eval_fraction,
            channels=config.train.channels,
            convert_channels=config.data.convert_channels,
            labels_from_subfolders=config.data.labels_from_subfolders,
        )
    examples = example_gen.outputs["examples"]

    statistics_gen = tfx.components.StatisticsGen(
        examples=examples, stats_options=tfdv.StatsOptions(enable_semantic_domain_stats=True)
    )
    schema_file = curated_schema.write_schema(
        curated_schema.build_schema(config.train.channels, config.data.convert_channels), config.pipeline_root
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
        max_bad_fraction=config.data.max_bad_fraction,
        min_images=config.data.min_images,
    )
    trainer = tfx.components.Trainer(
        run_fn=TRAINER_RUN_FN,
        examples=examples,
        schema=data_gate.outputs["validated_schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train.steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=0),
        custom_config={"trainer": config.train.to_dict()},
    )
    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = GanEvaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        extractor=config.evaluate.extractor,
        num_samples=config.evaluate.num_samples,
        seed=config.evaluate.seed,
        max_fid=config.evaluate.max_fid,
        min_improvement=config.evaluate.min_improvement,
        image_size=config.train.image_size,
        channels=config.train.channels,
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_base)
        ),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[
            example_gen, statistics_gen, schema_gen, example_validator, data_gate,
            trainer, baseline_resolver, evaluator, pusher,
        ],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path
        ),
        enable_cache=False,
    )


def _import_example_gen(data_path: str, eval_fraction: float) -> ImportExampleGen:
    """Existing tf.Example TFRecords go through the stock component, split by hash."""
    eval_buckets = max(1, round(eval_fraction * 100))
    input_base, pattern = (data_path, "*") if os.path.isdir(data_path) else os.path.split(data_path)
    return ImportExampleGen(
        input_base=input_base,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=pattern)]),
        output_config=tfx.proto.Output(
            split_config=tfx.proto.SplitConfig(
                splits=[
                    tfx.proto.SplitConfig.Split(name="train", hash_buckets=100 - eval_buckets),
                    tfx.proto.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
                ]
            )
        ),
    )
