"""ImageExampleGen component spec.

Stock ExampleGens read CSV/TFRecord/Parquet; images arrive as folders of
files, MNIST-style IDX files or NumPy arrays, and arrive damaged often enough
that every file must be checked and every rejection accounted for. This
component does both and writes output that stock components read unchanged.
"""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from ganpipe.components.image_example_gen import executor, sources
from ganpipe.components.image_example_gen.config import IngestConfig

# TFRecord inputs go through the stock ImportExampleGen (pipeline/pipeline.py).
INPUT_FORMATS = ("auto", *(name for name in sources.FORMATS if name != sources.TFRECORD))


class ImageExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.INPUT_BASE_KEY: ExecutionParameter(type=str),
        executor.DATA_FORMAT_KEY: ExecutionParameter(type=str),
        # IngestConfig as one JSON object, like the Trainer's custom_config.
        executor.CONFIG_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class ImageExampleGen(base_component.BaseComponent):
    """Images (folder | IDX | npz) -> prepared, validated tf.Examples in `train` and `eval` splits.

    Output `examples` (standard Examples artifact):
      - `<uri>/Split-train/data_tfrecord-*.gz`, `<uri>/Split-eval/...`: GZIP
        TFRecords of tf.Example with the features in ganpipe/contract.py;
        `image` is a PNG of the prepared pixels (pixels.py: orientation,
        alpha over the background, crop/pad/stretch to the training size),
        `sha256` the digest of the original file's bytes.
      - `<uri>/ingest_report.json`: totals, rejections by reason, up to 1000
        rejected files with the reason and detail, split sizes, label names,
        channel counts found, the stored shape and why, time and images/s.
      - custom properties `ingest_accepted`, `ingest_rejected`, `ingest_total`
        (int), `ingest_bad_fraction` (float: rejected / total, 0.0-1.0),
        `image_size` and `channels` (int: the stored, i.e. training, shape),
        plus `payload_format` / `file_format` as stock ExampleGen sets them.

    An image goes to `eval` iff int(sha256[:8], 16) % 10000 < eval_fraction *
    10000, so the split depends on content only and duplicates land together.
    Rejected files never fail the run (the DataGate judges the share); an
    input that is unusable as a whole (missing, empty, a damaged IDX/npz, or
    no usable image at all) raises IngestInputError.
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base: str, data_format: str = "auto", config: IngestConfig | None = None):
        """
        Args:
          input_base: a folder of images, an IDX images file or a folder of
            them, or an .npz file (or a folder of them).
          data_format: "auto" (detect from the path), "folder", "idx" or "npz".
            TFRecord inputs belong to stock ImportExampleGen.
          config: split, shape and pixel preparation (defaults: IngestConfig()).

        Raises:
          ValueError: an unknown data_format.
        """
        if data_format not in INPUT_FORMATS:
            raise ValueError(f"data_format={data_format!r}: must be one of {', '.join(INPUT_FORMATS)} "
                             "(TFRecords go through ImportExampleGen)")
        spec = ImageExampleGenSpec(
            input_base=input_base,
            data_format=data_format,
            config=json.dumps((config or IngestConfig()).to_dict(), sort_keys=True),
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
