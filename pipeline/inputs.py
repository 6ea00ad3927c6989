"""Resolves `data.path` to something ImageExampleGen can read, and checks it early.

Everything here runs before TFX is imported, so a missing folder or a folder
of junk fails in about a second with one line, not a Beam traceback minutes in.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from ganpipe.components.image_example_gen import filesystem, shape, sources
from ganpipe.components.image_example_gen.config import IngestConfig
from ganpipe.pipeline import datasets
from ganpipe.pipeline.config import ConfigError, PipelineConfig
from ganpipe.trainer.config import AUTO, resolve_steps


@dataclasses.dataclass(frozen=True)
class ResolvedInput:
    path: str
    format: str
    summary: str
    # What ImageExampleGen gets: the user's settings, `auto` left as it was, so the
    # component decides (and records why) from the same images as the preflight did.
    ingest: Optional[IngestConfig] = None


def resolve(config: PipelineConfig) -> ResolvedInput:
    """Returns an absolute path (or the URL as given) and concrete format, or raises IngestInputError/ConfigError.

    Also settles the training shape: `train.image_size` and `train.channels`
    left at auto are set on ``config`` to what ingestion will store (decided
    from the images by the same function the executor runs), and
    `train.steps` left at auto to the steps for that size.
    """
    ingest = config.ingest_config()
    if config.data.path.lower().startswith("file://"):
        # TensorFlow would read it, but past the folder reader's link and overlap checks.
        raise ConfigError(f"data.path {config.data.path}: give the local path ({config.data.path[len('file://'):]}), "
                          "not a file:// URL")
    for key, value in (("data.path", config.data.path), ("output_dir", config.output_dir)):
        if sources.display_name(value) != value:
            # Paths become MLMD properties, artifact URIs and Kubeflow parameters: all UTF-8 strings.
            raise ConfigError(f"{key} {sources.display_name(value)}: the name is not valid UTF-8; rename the "
                              "folder (file names inside the data may be anything)")
    _check_writable_paths(config)
    if datasets.is_bundled(config.data.path):
        try:
            path, data_format = datasets.materialize(
                config.data.path, os.path.join(os.path.abspath(config.output_dir), "data"))
        except datasets.DatasetNotInstalled as error:
            raise ConfigError(str(error)) from None
        found = sources.preflight(path, data_format, ingest)
        shape = _settle_shape(config, found["shape"])
        return ResolvedInput(path, data_format, f"named dataset '{config.data.path}' ({path}); {shape}", ingest)
    if filesystem.is_url(config.data.path):
        path = config.data.path  # a URL: no ~, no working directory, no links to resolve
        _check_output_outside_url(path, config.output_dir)
    else:
        path = _check_output_outside_folder(config)
    data_format = sources.detect_format(path, config.data.format)
    if data_format == "tfrecord":
        shape = _settle_shape(config, _tfrecord_shape(path, config))
        _check_tfrecord_images(path, config)
        return ResolvedInput(path, data_format, f"TFRecords of tf.Example at {path}; {shape}")
    found = sources.preflight(path, data_format, ingest)
    shape = _settle_shape(config, found["shape"])
    return ResolvedInput(path, data_format, f"{data_format} input at {path} ({_describe(found)}); {shape}", ingest)


def _check_output_outside_folder(config: PipelineConfig) -> str:
    """The absolute data path, once output_dir is known not to lie inside it; raises ConfigError."""
    path = os.path.abspath(os.path.expanduser(config.data.path))
    output = os.path.abspath(os.path.expanduser(config.output_dir))
    if os.path.islink(output) and not os.path.exists(output):
        raise ConfigError(f"output_dir {output} is a link that points nowhere: remove it or give another folder")
    # Real paths: the same folder, or one reached through a link, is caught as well as a plain prefix.
    real_data, real_output = os.path.realpath(path), os.path.realpath(output)
    if real_output == real_data or real_output.startswith(real_data.rstrip(os.sep) + os.sep):
        raise ConfigError(f"output_dir {config.output_dir} lies inside the input folder {path}: "
                          "outputs would be read back as input")
    return path


def _check_output_outside_url(path: str, output_dir: str) -> None:
    """Object stores have no links: output_dir inside the input URL is a plain prefix; raises ConfigError."""
    data, output = path.rstrip("/"), output_dir.rstrip("/")
    if output == data or output.startswith(data + "/"):
        raise ConfigError(f"output_dir {output_dir} lies inside the input {path}: outputs would be read back "
                          "as input")


def _record_pattern(path: str) -> str:
    """A glob for the TFRecords at ``path`` (a file, or every file of a folder); raises ConfigError."""
    try:
        is_folder = filesystem.isdir(path)
    except OSError as error:  # a URL whose store went away since detect_format asked it
        raise ConfigError(f"cannot read data.path {path}: {error.strerror}") from None
    return filesystem.join(path, "*") if is_folder else path


def _tfrecord_shape(path: str, config: PipelineConfig) -> dict:
    """The same rule as for image files, over the height/width/channels features of the first records.

    Records are not prepared by ImportExampleGen: the trainer resizes them to
    this size and converts their channels as it decodes.
    """
    ingest = config.ingest_config()
    if AUTO not in (ingest.image_size, ingest.channels):
        return shape.ShapeDecision(ingest.image_size, ingest.channels, "as configured").to_dict()
    from ganpipe.trainer import data  # TensorFlow: only for TFRecord input

    pattern = _record_pattern(path)
    try:
        shapes = data.record_shapes([pattern], limit=shape.MAX_SAMPLED, compression="auto")
    except (data.NoDataError, ValueError) as error:
        raise ConfigError(f"cannot read the shape of the TFRecords at {path}: {error}; set train.image_size "
                          "and train.channels") from None
    return shape.decide_from([min(h, w) for h, w, _ in shapes], [c <= 2 for _, _, c in shapes], ingest).to_dict()


def _check_writable_paths(config: PipelineConfig) -> None:
    """A checkpoint or serving directory that is a file, or cannot be created, fails in one line now,
    not at the Trainer or the Pusher after the whole run."""
    for key, path in (("output_dir", config.output_dir),
                      ("train.checkpoint_dir", config.train.checkpoint_dir),
                      ("push.serving_dir", config.serving_base)):
        if not path or "://" in path:  # object stores: checked by whoever mounts or owns them
            continue
        path = os.path.abspath(os.path.expanduser(path))
        existing = path
        while not os.path.exists(existing):  # the nearest part that exists must be a writable folder
            if os.path.islink(existing):
                raise ConfigError(f"{key}: {existing} is a link that points nowhere or loops; remove it or "
                                  "choose another folder")
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise ConfigError(f"{key}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}: {existing} is not writable by this user; choose another folder")


# Records decode-checked before TFX starts (all of them in a smaller set); a bad record past
# them stops the Trainer with TensorFlow's decode error.
TFRECORD_IMAGES_CHECKED = 1000


def _check_tfrecord_images(path: str, config: PipelineConfig) -> None:
    """The first TFRECORD_IMAGES_CHECKED records' `image` feature passes the check a folder's files pass.

    ImportExampleGen copies records unchecked, so bytes that are not an
    encoded image (raw pixels, say) would otherwise fail only in the Trainer,
    as "Unknown image file format", after statistics and validation.

    Raises:
      ConfigError: naming the record, its file, and what the feature holds.
    """
    import tensorflow as tf

    from ganpipe import contract
    from ganpipe.components.image_example_gen import pixels, validation
    from ganpipe.trainer import data

    pattern = _record_pattern(path)
    files = data.list_files([pattern])
    compression = data.compression_of(files)
    preparation = pixels.Preparation(config.train.image_size, config.train.channels)
    feature = {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
    records = tf.data.TFRecordDataset(files, compression_type=compression).take(TFRECORD_IMAGES_CHECKED)
    index = 0
    try:
        for index, record in enumerate(records):
            encoded = tf.io.parse_single_example(record, feature)[contract.IMAGE_KEY].numpy()
            check, _ = validation.validate_image(encoded, preparation, convert_channels=True)
            reason = None if check.ok else f"{check.reason}: {check.detail}"
            if reason is None:
                try:  # the trainer's own decoder: Pillow reads some images TF does not (1-bit BMP)
                    data.decode_as(tf.constant(encoded), preparation.channels)
                except tf.errors.OpError as error:
                    reason = f"TensorFlow cannot decode it: {error.message.splitlines()[0]}"
            if reason:
                raise ConfigError(f"record {index} of the TFRecords at {path}: feature '{contract.IMAGE_KEY}' "
                                  f"holds {len(encoded)} bytes that are not a usable encoded image ({reason}); it "
                                  "must hold PNG, JPEG, GIF or BMP bytes (raw pixels: encode them with "
                                  "tf.io.encode_png)")
    except tf.errors.OpError as error:  # not TFRecords, wrong compression, `image` not a bytes feature
        detail = error.message.splitlines()[0]
        raise ConfigError(f"record {index} of the TFRecords at {path}: {detail}") from None


def _settle_shape(config: PipelineConfig, decision: dict) -> str:
    """Sets the training shape, and train.steps at auto (which grows with it: trainer.config.resolve_steps),
    on ``config``; returns the line that says what they are and why."""
    config.train.image_size = decision["image_size"]
    config.train.channels = decision["channels"]
    why_steps = "as configured" if config.train.steps != AUTO else f"train.steps: auto at {decision['image_size']} px"
    config.train.steps = resolve_steps(config.train.steps, config.train.image_size)
    return (f"training shape {decision['image_size']}x{decision['image_size']}x{decision['channels']} "
            f"({decision['reason']}), {config.train.steps:,} steps ({why_steps})")


def _describe(preflight_result: dict) -> str:
    count = preflight_result.get("total_files") or preflight_result.get("num_images")
    described = f"{count} candidate images" if count else "checked"
    skipped = preflight_result.get("broken_links")
    outside = preflight_result.get("outside_links")
    if skipped:
        described += f", {skipped} link(s) that loop or point nowhere skipped"
    if outside:
        described += f", {outside} reached through links that leave the folder"
    return described
