"""SyntheticExampleGen component spec.

After a push, the pipeline can turn the generator that now serves into a
training set (docs/design.md, "Synthetic data"). Taking the Pusher's standard
PushedModel as input and writing a standard Examples artifact keeps the
lineage in MLMD: the synthetic Examples name the pushed model they came from,
and stock components (StatisticsGen, Trainer, ImportExampleGen readers) read
them as they read ImageExampleGen's.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from ganpipe.components.synthetic_example_gen import executor, request


class SyntheticExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.COUNT_KEY: ExecutionParameter(type=int),
        executor.SEED_KEY: ExecutionParameter(type=int),
    }
    INPUTS = {
        standard_component_specs.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel),
    }
    OUTPUTS = {
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }


class SyntheticExampleGen(base_component.BaseComponent):
    """``count`` samples of the pushed generator (seeds ``seed`` .. ``seed + count - 1``) as Examples.

    Output `examples` (standard Examples artifact, split `train` only):
      - `<uri>/Split-train/data_tfrecord-SSSSS-of-NNNNN.gz`: GZIP TFRecords of
        tf.Example with the features in ganpipe/contract.py; `image` the PNG
        the generator's seeds signature encodes, `sha256` its digest, `label`
        the class a conditional generator drew (-1 otherwise), `source`
        `<serving base>#version=<N>&seed=<s>[&label=<k>]`.
      - `<uri>/export.json`: the export's manifest (model, seeds, labels, shape).
      - properties `split_names`, and `payload_format` / `file_format` as
        stock ExampleGen sets them; custom properties `synthetic_count`,
        `synthetic_model`, `synthetic_version`, `image_size`, `channels`.

    Wire it under ``tfx.dsl.Cond`` on the PushedModel's `pushed` property
    (pipeline/pipeline.py) so it runs only after a push; given a model that
    was not pushed anyway, it writes an empty `train` split and
    `synthetic_count` 0 rather than sample a generator nobody serves.
    """

    SPEC_CLASS = SyntheticExampleGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, pushed_model: types.BaseChannel, count: int, seed: int = 0):
        """
        Raises:
          ValueError: count outside [1, request.MAX_IMAGES], or seeds beyond int64.
        """
        if not 1 <= count <= request.MAX_IMAGES:
            raise ValueError(f"count={count}: must be in [1, {request.MAX_IMAGES}]")
        if not 0 <= seed <= request.SEED_LIMIT - count + 1:
            raise ValueError(f"seed={seed}: must be in [0, {request.SEED_LIMIT - count + 1}] (seeds are int64)")
        spec = SyntheticExampleGenSpec(
            pushed_model=pushed_model,
            count=int(count),
            seed=int(seed),
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
