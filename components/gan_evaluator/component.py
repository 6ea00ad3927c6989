"""GanEvaluator component spec.

The stock Evaluator (TFMA) scores models on labelled examples; a generator has
no labels to score, its quality is how close its samples are to real images.
GanEvaluator measures that (FID, KID, precision/recall, density/coverage in a
named feature space) and writes the same ModelBlessing the stock Evaluator
writes, so the Pusher and the LatestBlessedModelStrategy resolver that feeds
``baseline_model`` work unchanged: the pipeline only ships a generator that
is sane, within the absolute limits, and not worse than the one already
serving.
"""

from __future__ import annotations

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from ganpipe.components.gan_evaluator import executor


class GanEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.EXTRACTOR_KEY: ExecutionParameter(type=str),
        executor.NUM_SAMPLES_KEY: ExecutionParameter(type=int),
        executor.SEED_KEY: ExecutionParameter(type=int),
        executor.MAX_FID_KEY: ExecutionParameter(type=float),
        executor.MAX_KID_KEY: ExecutionParameter(type=float),
        executor.MIN_RECALL_KEY: ExecutionParameter(type=float),
        executor.MIN_COVERAGE_KEY: ExecutionParameter(type=float),
        executor.MIN_IMPROVEMENT_KEY: ExecutionParameter(type=float),
        # 0/1: MLMD stores execution properties as int, float or string.
        executor.IGNORE_UNUSABLE_BASELINE_KEY: ExecutionParameter(type=int),
        executor.IMAGE_SIZE_KEY: ExecutionParameter(type=int),
        executor.CHANNELS_KEY: ExecutionParameter(type=int),
    }
    INPUTS = {
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        standard_component_specs.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        standard_component_specs.BASELINE_MODEL_KEY: ChannelParameter(
            type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        standard_component_specs.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        standard_component_specs.EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
    }


class GanEvaluator(base_component.BaseComponent):
    """Blesses a generator whose samples are sane and whose scores pass the thresholds.

    ``baseline_model`` is normally a Resolver's output with
    LatestBlessedModelStrategy; on the first run it resolves to nothing and
    only the absolute rules apply. Limits set to 0 are off.
    ``min_improvement`` is the fraction by which the candidate's FID must be
    below the baseline's (0 = not worse). A baseline that cannot be loaded or
    scored refuses the candidate unless ``ignore_unusable_baseline``. Every
    parameter after ``baseline_model`` is keyword-only, so a call reads like
    the config.
    """

    SPEC_CLASS = GanEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        baseline_model: Optional[types.BaseChannel] = None,
        *,
        image_size: int,
        channels: int,
        extractor: str = "random-conv",
        num_samples: int = 512,
        seed: int = 1234,
        max_fid: float = 0.0,
        max_kid: float = 0.0,
        min_recall: float = 0.0,
        min_coverage: float = 0.0,
        min_improvement: float = 0.0,
        ignore_unusable_baseline: bool = False,
    ):
        spec = GanEvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            extractor=extractor,
            num_samples=num_samples,
            seed=seed,
            max_fid=float(max_fid),
            max_kid=float(max_kid),
            min_recall=float(min_recall),
            min_coverage=float(min_coverage),
            min_improvement=float(min_improvement),
            ignore_unusable_baseline=int(bool(ignore_unusable_baseline)),
            image_size=image_size,
            channels=channels,
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        )
        super().__init__(spec=spec)
