"""GanEvaluator component spec.

The stock Evaluator (TFMA) scores models on labelled examples; a generator has
no labels to score, its quality is how close its samples are to real images.
GanEvaluator measures that (FID, KID, precision/recall, density/coverage in a
named feature space) and writes the same ModelBlessing the stock Evaluator
writes, so the Pusher works unchanged: the pipeline only ships a generator
that is sane, within the limits, and not worse than the one serving now.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from ganpipe.components.gan_evaluator import executor
from ganpipe.evaluation.config import GATE_LIMITS, EvaluateConfig


class GanEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        # EvaluateConfig as one JSON object, like the Trainer's custom_config.
        executor.CONFIG_KEY: ExecutionParameter(type=str),
        executor.IMAGE_SIZE_KEY: ExecutionParameter(type=int),
        executor.CHANNELS_KEY: ExecutionParameter(type=int),
        # TF Serving's model_base_path: the baseline is the newest version there, read at judgment time.
        executor.SERVING_BASE_KEY: ExecutionParameter(type=str),
        # Domain classifiers cached by dataset (under the pipeline root: shared by every run).
        executor.CLASSIFIER_CACHE_KEY: ExecutionParameter(type=str, optional=True),
        # Each gate limit on its own as well, so that a Kubeflow run can take it as a runtime parameter
        # (a JSON config cannot be one field at a time); when set, it wins over the same field of config.
        **{name: ExecutionParameter(type=float, optional=True) for name in GATE_LIMITS},
    }
    INPUTS = {
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        standard_component_specs.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
    }
    OUTPUTS = {
        standard_component_specs.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        standard_component_specs.EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
    }


class GanEvaluator(base_component.BaseComponent):
    """Blesses a generator whose samples are sane and whose scores pass the limits in ``config``.

    The baseline is what is serving now: the newest version under
    ``serving_base`` when the evaluator runs, whoever pushed it (this
    pipeline, another output directory sharing the serving directory, or a
    person), never an MLMD query. So one code path serves local, CronJob and
    Kubeflow runs, and open-source Kubeflow Pipelines, which runs no TFX
    Resolver, works unchanged. The blessing records the judged version
    (``baseline_version``), and ServingPusher pushes only while that is
    still the newest. With nothing serving, only the absolute and
    floor-relative rules apply. ``config`` is an
    :class:`~ganpipe.evaluation.config.EvaluateConfig`; ``image_size`` and
    ``channels`` are the shape every image is compared at (0: the stored shape).
    ``limits``: gate limits (names in ``GATE_LIMITS``) given on their own,
    floats or ``RuntimeParameter`` s; they win over ``config``'s.
    """

    SPEC_CLASS = GanEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        *,
        config: EvaluateConfig,
        image_size: int,
        channels: int,
        serving_base: str,
        limits: Mapping[str, Any] | None = None,
        classifier_cache: str = "",
    ):
        spec = GanEvaluatorSpec(
            examples=examples,
            model=model,
            serving_base=serving_base,
            classifier_cache=classifier_cache,
            config=json.dumps(config.to_dict(), sort_keys=True),
            image_size=int(image_size),
            channels=int(channels),
            **dict(limits or {}),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        )
        super().__init__(spec=spec)
