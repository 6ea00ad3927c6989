"""SyntheticExampleGen executor: load the pushed generator, stream its samples into the Examples artifact."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from ganpipe import contract
# The stored shape, under ImageExampleGen's property names: a trainer or evaluator left at `auto` reads them.
from ganpipe.components.image_example_gen.executor import CHANNELS_PROPERTY, IMAGE_SIZE_PROPERTY
from ganpipe.components.synthetic_example_gen import export, request, samples

COUNT_KEY = "count"
SEED_KEY = "seed"

# Custom properties of the Examples artifact (MLMD).
COUNT_PROPERTY = contract.SYNTHETIC_COUNT_PROPERTY  # images written; 0 when the model was not pushed
MODEL_PROPERTY = "synthetic_model"  # the serving path the images' `source` names
VERSION_PROPERTY = "synthetic_version"
# Set by the Pusher on its PushedModel (the stock Pusher's properties).
PUSHED_PROPERTY = "pushed"
PUSHED_DESTINATION_PROPERTY = "pushed_destination"


class Executor(base_executor.BaseExecutor):
    """See component.SyntheticExampleGen for the contract."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        pushed = artifact_utils.get_single_instance(input_dict[standard_component_specs.PUSHED_MODEL_KEY])
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names([contract.TRAIN_SPLIT])
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))

        if not (pushed.has_custom_property(PUSHED_PROPERTY) and pushed.get_int_custom_property(PUSHED_PROPERTY)):
            # The pipeline's Cond keeps this from running; wired without it, a model nobody serves is not sampled.
            logging.warning("SyntheticExampleGen: the model was not pushed; no synthetic examples written")
            tf.io.gfile.makedirs(artifact_utils.get_split_uri([examples], contract.TRAIN_SPLIT))
            examples.set_int_custom_property(COUNT_PROPERTY, 0)
            return

        destination = pushed.get_string_custom_property(PUSHED_DESTINATION_PROPERTY) or pushed.uri
        model, version = export.model_identity(destination)
        # The PushedModel's own copy of the SavedModel (the Pusher keeps one for lineage): the same bytes as
        # the serving version, and still there if retention has since removed that version.
        loaded = tf.saved_model.load(pushed.uri)
        info = samples.describe(loaded, pushed.uri)
        summary = export.export_samples(loaded, info, examples.uri, request.TFRECORD,
                                        count=int(exec_properties[COUNT_KEY]),
                                        first_seed=int(exec_properties[SEED_KEY]), model=model, version=version)
        height, width, channels = summary.image_shape
        examples.set_int_custom_property(COUNT_PROPERTY, summary.count)
        examples.set_string_custom_property(MODEL_PROPERTY, model)
        examples.set_string_custom_property(VERSION_PROPERTY, version or "")
        examples.set_int_custom_property(IMAGE_SIZE_PROPERTY, min(height, width))
        examples.set_int_custom_property(CHANNELS_PROPERTY, channels)
        logging.info("SyntheticExampleGen: %d images of %s version %s (labels %s) in %.1fs: %s", summary.count,
                     model, version, summary.labels, summary.seconds, examples.uri)
