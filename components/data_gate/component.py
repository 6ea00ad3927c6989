"""DataGate component spec.

ExampleValidator only records anomalies; a nightly run must instead stop
before training on bad data. DataGate turns the validation results into a
hard stop: it fails (so nothing downstream runs) or re-emits the schema as
the "validated schema" the Trainer consumes. Making the Trainer depend on
that output is what orders it after the gate, through data rather than a
task-only dependency, so MLMD lineage shows which validation a model passed.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from ganpipe.components.data_gate import executor


class DataGateSpec(types.ComponentSpec):
    PARAMETERS = {
        "max_bad_fraction": ExecutionParameter(type=float),
        "min_images": ExecutionParameter(type=int),
        # The fewest eval images the evaluator's limits can be scored on (EvaluateConfig.min_eval_images).
        "min_eval_images": ExecutionParameter(type=int),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies),
    }
    OUTPUTS = {
        "validated_schema": ChannelParameter(type=standard_artifacts.Schema),
    }


class DataGate(base_component.BaseComponent):
    """Fails the run on anomalies, too many rejected files, or too few images."""

    SPEC_CLASS = DataGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        statistics: types.BaseChannel,
        schema: types.BaseChannel,
        anomalies: types.BaseChannel,
        max_bad_fraction: float = 0.05,
        min_images: int = 16,
        min_eval_images: int = 2,
    ):
        spec = DataGateSpec(
            examples=examples,
            statistics=statistics,
            schema=schema,
            anomalies=anomalies,
            max_bad_fraction=max_bad_fraction,
            min_images=min_images,
            min_eval_images=min_eval_images,
            validated_schema=types.Channel(type=standard_artifacts.Schema),
        )
        super().__init__(spec=spec)
