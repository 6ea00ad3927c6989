"""ImageExampleGen component spec.

Stock ExampleGens read CSV/TFRecord/Parquet; images arrive as folders of
files, MNIST-style IDX files or NumPy arrays, and arrive damaged often enough
that every file must be checked and every rejection accounted for. This
component does both and writes output that stock components read unchanged.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from ganpipe.components.image_example_gen import executor, sources

# TFRecord inputs go through the stock ImportExampleGen (pipeline/pipeline.py).
INPUT_FORMATS = ("auto", *(name for name in sources.FORMATS if name != sources.TFRECORD))


class ImageExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.INPUT_BASE_KEY: ExecutionParameter(type=str),
        executor.DATA_FORMAT_KEY: ExecutionParameter(type=str),
        executor.EVAL_FRACTION_KEY: ExecutionParameter(type=float),
        executor.CHANNELS_KEY: ExecutionParameter(type=int),
        executor.CONVERT_CHANNELS_KEY: ExecutionParameter(type=bool),
        executor.LABELS_FROM_SUBFOLDERS_KEY: ExecutionParameter(type=bool),
    }
    INPUTS = {}
    OUTPUTS = {executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class ImageExampleGen(base_component.BaseComponent):
    """Images (folder | IDX | npz) -> validated tf.Examples in `train` and `eval` splits.

    Output `examples` (standard Examples artifact):
      - `<uri>/Split-train/data_tfrecord-*.gz`, `<uri>/Split-eval/...`: GZIP
        TFRecords of tf.Example with the features in trainer/contract.py
        (`image` holds the file's bytes as found, PNG for array inputs).
      - `<uri>/ingest_report.json`: totals, rejections by reason, up to 1000
        rejected files with the reason and detail, split sizes, label names,
        channel counts found, time and images/s.
      - custom properties `ingest_accepted`, `ingest_rejected`, `ingest_total`
        (int) and `ingest_bad_fraction` (float: rejected / total, 0.0-1.0),
        plus `payload_format` / `file_format` as stock ExampleGen sets them.

    An image goes to `eval` iff int(sha256[:8], 16) % 10000 < eval_fraction *
    10000, so the split depends on content only and duplicates land together.
    Rejected files never fail the run (the DataGate judges the share); an
    input that is unusable as a whole (missing, empty, a damaged IDX/npz, or
    no usable image at all) raises IngestInputError.
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        input_base: str,
        data_format: str = "auto",
        eval_fraction: float = 0.1,
        channels: int = 1,
        convert_channels: bool = False,
        labels_from_subfolders: bool = True,
    ):
        """Arguments mirror the `data` section of pipeline/config.py.

        Args:
          input_base: a folder of images, an IDX images file or a folder of
            them, or an .npz file (or a folder of them).
          data_format: "auto" (detect from the path), "folder", "idx" or "npz".
            TFRecord inputs belong to stock ImportExampleGen.
          eval_fraction: share of images (by content hash) in the eval split.
          channels: 1 (grey) or 3 (colour), what the trainer decodes to.
          convert_channels: keep images of the other channel class (the
            trainer converts them) instead of rejecting them.
          labels_from_subfolders: with a folder whose files all sit in
            subfolders, label = index of the sorted first-level subfolder name.
        """
        if data_format not in INPUT_FORMATS:
            raise ValueError(f"data_format={data_format!r}: must be one of {', '.join(INPUT_FORMATS)} "
                             "(TFRecords go through ImportExampleGen)")
        if not 0.0 < eval_fraction < 1.0:
            raise ValueError(f"eval_fraction={eval_fraction}: must be in (0, 1)")
        if channels not in (1, 3):
            raise ValueError(f"channels={channels}: must be 1 or 3")
        spec = ImageExampleGenSpec(
            input_base=input_base,
            data_format=data_format,
            eval_fraction=float(eval_fraction),
            channels=int(channels),
            convert_channels=bool(convert_channels),
            labels_from_subfolders=bool(labels_from_subfolders),
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
