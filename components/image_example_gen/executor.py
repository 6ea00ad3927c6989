"""ImageExampleGen executor: plan the input, run the Beam ingest, write the report.

The output looks like a stock ExampleGen's (Split-train/ and Split-eval/ of
GZIP tf.Example TFRecords, `split_names`, payload and file format
properties), so stock StatisticsGen and Trainer read it unchanged.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from ganpipe.components.image_example_gen import ingest, report, shape, sources
from ganpipe.components.image_example_gen.config import IngestConfig
from ganpipe.components.image_example_gen.errors import IngestInputError

EXAMPLES_KEY = "examples"
INPUT_BASE_KEY = "input_base"
DATA_FORMAT_KEY = "data_format"
CONFIG_KEY = "config"  # IngestConfig.to_dict() as JSON

# Custom properties of the Examples artifact (MLMD), mirroring the report.
ACCEPTED_PROPERTY = "ingest_accepted"
REJECTED_PROPERTY = "ingest_rejected"
TOTAL_PROPERTY = "ingest_total"
BAD_FRACTION_PROPERTY = "ingest_bad_fraction"
# The shape every stored image has (the training shape), decided here when the config says auto.
IMAGE_SIZE_PROPERTY = "image_size"
CHANNELS_PROPERTY = "channels"


class Executor(base_beam_executor.BaseBeamExecutor):
    """Ingests images into tf.Examples; see component.ImageExampleGen for the contract."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        del input_dict  # the input is a path, not an artifact
        input_base = str(exec_properties[INPUT_BASE_KEY])
        config = IngestConfig.from_dict(json.loads(exec_properties[CONFIG_KEY]))
        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])

        data_format = sources.detect_format(input_base, str(exec_properties.get(DATA_FORMAT_KEY) or "auto"))
        plan = sources.plan_inputs(input_base, data_format, config.labels_from_subfolders)
        decision = shape.decide(plan, config)
        preparation = config.preparation(decision.image_size, decision.channels)
        logging.info("ImageExampleGen: %d %s input item(s) (%d images/files) from %s; stored as %dx%dx%d (%s)",
                     len(plan.items), data_format, plan.total, input_base, decision.image_size,
                     decision.image_size, decision.channels, decision.reason)

        examples.split_names = artifact_utils.encode_split_names(list(ingest.SPLITS))
        split_uris = {split: artifact_utils.get_split_uri([examples], split) for split in ingest.SPLITS}
        report_path = os.path.join(examples.uri, report.REPORT_FILE)
        started = time.monotonic()
        with self._make_beam_pipeline() as pipeline:
            _ = pipeline | "IngestImages" >> ingest.IngestImages(
                plan.items, split_uris, report_path, preparation, config.converts, config.eval_fraction)
        seconds = time.monotonic() - started

        with tf.io.gfile.GFile(report_path) as handle:
            summary = json.load(handle)  # what the pipeline counted
        document = report.build_report(
            summary,
            input_base=input_base,
            data_format=data_format,
            total_files=plan.total,
            label_names=plan.label_names,
            hidden_files=plan.hidden_files,
            hidden_dirs=plan.hidden_dirs,
            broken_links=plan.broken_links,
            outside_links=plan.outside_links,
            seconds=seconds,
            settings=config.to_dict(),
            shape=decision.to_dict(),
        )
        ingest.write_json(document, report_path)

        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        examples.set_int_custom_property(ACCEPTED_PROPERTY, document["accepted"])
        examples.set_int_custom_property(REJECTED_PROPERTY, document["rejected_total"])
        examples.set_int_custom_property(TOTAL_PROPERTY, document["total_files"])
        examples.set_float_custom_property(BAD_FRACTION_PROPERTY, float(document["bad_fraction"]))
        examples.set_int_custom_property(IMAGE_SIZE_PROPERTY, decision.image_size)
        examples.set_int_custom_property(CHANNELS_PROPERTY, decision.channels)
        logging.info("ImageExampleGen: %d accepted (%s), rejected: %s, %.1f images/s; report: %s",
                     document["accepted"], document["splits"], report.reasons_line(document["rejected"]) or "none",
                     document["images_per_second"] or 0.0, report_path)
        if document["accepted"] == 0:
            raise IngestInputError(
                f"no decodable image in {input_base}: all {plan.total} rejected "
                f"({report.reasons_line(document['rejected'])}); see {report_path}")
